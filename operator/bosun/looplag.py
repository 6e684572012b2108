"""How late the operator's event loop runs what is due, and the garbage collector's part in it.

Every request, watch event and step of the operator runs on one asyncio loop. When the loop is busy
(parsing watch events, serialising status), everything else waits, and that wait shows up in every
latency the operator reports (a status write "took" 0.5 s that the API server answered in 20 ms).
A probe that sleeps a fixed interval and records how much later than asked it woke up measures
that wait directly, so a slow step transition can be put down to the API server or to the
operator. Its cost: one wake-up per interval.

One thing that holds the loop is Python's cyclic garbage collector: a full collection walks every
tracked object, and the operator keeps some 300,000 (modules, classes, Kopf's and Bosun's state
for thousands of objects), so each pause is timed (`bosun_gc_pause_seconds`). What was built at
start-up lives as long as the process: `settle_startup` moves it out of the collector's sight
(`gc.freeze`), so full collections walk only what came after.

The collector's callback only notes each pause; the probe moves them into the histogram. A
collection starts wherever an allocation happens, on any thread, also while the /metrics thread
holds a metric's (non-reentrant) lock: observing a metric from the callback could take that lock
again and deadlock the process.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from typing import Any

from bosun import metrics

PROBE_SECONDS = 0.5


async def probe(interval: float = PROBE_SECONDS) -> None:
    """Observe the loop's lag every `interval` seconds, until cancelled."""
    while True:
        asked = time.monotonic()
        await asyncio.sleep(interval)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, time.monotonic() - asked - interval))
        record_pauses()


_began: dict[int, float] = {}
_pauses: deque[tuple[int, float]] = deque(maxlen=10_000)  # (generation, seconds), not yet observed


def _time_collection(phase: str, info: dict[str, Any]) -> None:
    generation = int(info.get("generation", 0))
    if phase == "start":
        _began[generation] = time.perf_counter()
    elif generation in _began:
        _pauses.append((generation, time.perf_counter() - _began.pop(generation)))  # no lock taken here


def record_pauses() -> None:
    """Observe the pauses noted since the last call (outside the collector's callback)."""
    while _pauses:
        generation, seconds = _pauses.popleft()
        metrics.GC_PAUSE.labels(str(generation)).observe(seconds)


def time_collections() -> None:
    """Time every collection of the cyclic garbage collector (idempotent)."""
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)


def settle_startup() -> None:
    """Collect what start-up left behind, then keep what survives out of later collections."""
    gc.collect()
    gc.freeze()
