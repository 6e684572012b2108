"""Handing memory the operator no longer uses back to the system.

After a burst (10,000 finished Operations archived at once, each with its own daemon for a while)
the operator's RSS stayed above 1.3 GB for good, although the objects were long gone: glibc's
allocator keeps freed pages in its heaps for the next allocation, and a restart was the only way
to get them back. `malloc_trim(0)` returns free pages of every heap to the system (it walks the
heaps once: milliseconds), so it runs every `trim_seconds`. Where the C library has no
`malloc_trim` (musl), nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

logger = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


def trim() -> bool:
    """Return freed heap memory to the system; whether the C library could (1: some was)."""
    malloc_trim = _malloc_trim()
    return malloc_trim is not None and bool(malloc_trim(0))
