"""How late the operator's event loop runs what is due: the operator's own CPU as a bottleneck.

Every request, watch event and step of the operator runs on one asyncio loop. When the loop is busy
(parsing watch events, serialising status), everything else waits, and that wait shows up in every
latency the operator reports (a status write "took" 0.5 s that the API server answered in 20 ms).
A probe that sleeps a fixed interval and records how much later than asked it woke up measures
that wait directly, so a slow step transition can be put down to the API server or to the
operator. Its cost: one wake-up per interval.
"""

from __future__ import annotations

import asyncio
import time

from bosun import metrics

PROBE_SECONDS = 0.5


async def probe(interval: float = PROBE_SECONDS) -> None:
    """Observe the loop's lag every `interval` seconds, until cancelled."""
    while True:
        asked = time.monotonic()
        await asyncio.sleep(interval)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, time.monotonic() - asked - interval))
