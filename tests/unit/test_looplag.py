"""The event-loop probe: a loop held busy shows up as lag, an idle one as none."""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import REGISTRY

from bosun import looplag, metrics


def lag() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("bosun_event_loop_lag_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("bosun_event_loop_lag_seconds_sum") or 0.0
    return count, total


async def test_a_busy_loop_is_seen_late_and_an_idle_one_on_time() -> None:
    probe = asyncio.ensure_future(looplag.probe(0.02))
    try:
        await asyncio.sleep(0.001)  # the probe is asleep
        count, total = lag()
        time.sleep(0.2)  # the loop is held: the probe wakes late
        await asyncio.sleep(0.03)
        busy_count, busy_total = lag()
        assert busy_count >= count + 1
        assert busy_total - total >= 0.15
        await asyncio.sleep(0.2)  # idle: on time, within what a shared machine allows
        idle_count, idle_total = lag()
        assert idle_count >= busy_count + 5
        assert (idle_total - busy_total) / (idle_count - busy_count) < 0.05
    finally:
        probe.cancel()


def pauses(generation: int) -> float:
    return REGISTRY.get_sample_value("bosun_gc_pause_seconds_count", {"generation": str(generation)}) or 0.0


def test_every_collection_is_timed_once_however_often_timing_is_asked_for() -> None:
    looplag.time_collections()
    looplag.time_collections()
    looplag.record_pauses()
    before = pauses(2)
    gc.collect()
    looplag.record_pauses()
    assert pauses(2) == before + 1


def test_a_collection_while_the_pause_metric_is_locked_does_not_deadlock() -> None:
    """The /metrics thread copies the metric's children under its lock; a collection can start
    right there. Timing that collection must not take the same (non-reentrant) lock."""
    looplag.time_collections()
    looplag.record_pauses()
    before = pauses(2)
    with metrics.GC_PAUSE._lock:
        gc.collect()  # hung here when the callback observed the metric itself
    looplag.record_pauses()
    assert pauses(2) == before + 1


def test_what_start_up_built_is_kept_out_of_later_collections() -> None:
    try:
        looplag.settle_startup()
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
