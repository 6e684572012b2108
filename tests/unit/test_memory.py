"""Freed memory goes back to the system: RSS after a burst must not stay at the burst's peak."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

OPERATOR = Path(__file__).resolve().parents[2] / "operator"

BURST = """
import os, sys
from bosun import memory

def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

kept = [bytearray(20_000) for _ in range(15_000)]  # 300 MB from malloc, as a burst's answers are
del kept[::2]  # half freed, interleaved with what is kept: glibc keeps those pages
before = rss()
if not memory.trim():
    sys.exit(3)  # no malloc_trim in this C library (musl, macOS)
print(before, rss())
"""


def test_trimming_returns_the_pages_a_burst_freed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BURST], env={"PYTHONPATH": str(OPERATOR)}, capture_output=True, text=True
    )
    if done.returncode == 3:
        pytest.skip("this C library has no malloc_trim")
    assert done.returncode == 0, done.stderr
    before, after = (int(n) for n in done.stdout.split())
    assert after < before - 64 * 2**20, (before, after)  # most of the 150 MB freed is handed back (was: none)
