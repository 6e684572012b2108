"""Run slots: taken once, given back once, and a wait that gave up takes nothing."""

from __future__ import annotations

import asyncio

from bosun.engine.service import _Slot


async def test_a_slot_is_held_once_and_a_wait_that_gave_up_leaks_nothing() -> None:
    slots = asyncio.Semaphore(1)
    first, second, third = _Slot(slots), _Slot(slots), _Slot(slots)
    assert await first.take(0.01) and await first.take(0.01)  # taking again changes nothing
    assert not await second.take(0.01)
    assert not await third.take(0.01)
    third.give()  # gave up while waiting: took nothing
    first.give()
    first.give()  # given back once only
    assert await second.take(0.1)
    fourth = _Slot(slots)
    assert not await fourth.take(0.01)  # still waiting: its place is kept until it is given up
    second.give()
    assert await fourth.take(0.01)
    fourth.give()
    assert await _Slot(slots).take(0.01)


async def test_no_limit_means_always_a_slot() -> None:
    slot = _Slot(None)
    assert await slot.take(0)
    slot.give()
