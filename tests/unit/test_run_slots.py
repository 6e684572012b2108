"""Run slots: taken once, given back once, and a wait that gave up takes nothing."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from bosun.engine.service import OperationService, _both, _Slot
from bosun.errors import TransientError
from bosun.models.operation import OperationStatus


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


async def test_a_slot_given_back_by_a_held_operation_is_taken_again_not_assumed() -> None:
    slots = asyncio.Semaphore(1)
    held, other = _Slot(slots), _Slot(slots)
    assert await held.take(0.01)
    held.give()  # it waits for its window: the slot goes back
    assert await other.take(0.01)
    assert not await held.take(0.01)  # not still held: it waits like anyone else
    other.give()
    assert await held.take(0.1)
    held.give()


async def test_no_limit_means_always_a_slot() -> None:
    slot = _Slot(None)
    assert await slot.take(0)
    slot.give()


class Handle:
    def __init__(self) -> None:
        self.saved: list[tuple[str, str, str]] = []

    def cancel_requested(self) -> bool:
        return False

    async def save(self, status: OperationStatus) -> None:
        self.saved.append((status.phase.value, status.queued_behind, status.message))


class Journal:
    def info(self, message: str) -> None:
        pass


async def test_waiting_for_a_slot_no_longer_names_the_operation_it_waited_behind() -> None:
    """Its target's turn came (the operation ahead ended); a status still saying 'queued behind'
    that ended one would send whoever reads it after the wrong operation."""
    service = OperationService.__new__(OperationService)
    service.queue_poll_seconds, service.max_running = 0.01, 1
    slots = asyncio.Semaphore(1)
    held = _Slot(slots)
    assert await held.take(0.01)  # every slot is taken
    status = OperationStatus.model_validate({"phase": "Queued", "queuedBehind": "web-deploy-1"})
    handle = Handle()
    waiting = asyncio.ensure_future(service._wait_for_slot(status, handle, Journal(), _Slot(slots)))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    waits_before = REGISTRY.get_sample_value("bosun_run_slot_wait_seconds_count") or 0.0
    waited_before = REGISTRY.get_sample_value("bosun_run_slot_wait_seconds_sum") or 0.0
    held.give()
    assert await waiting
    assert REGISTRY.get_sample_value("bosun_run_slot_wait_seconds_count") == waits_before + 1
    assert (REGISTRY.get_sample_value("bosun_run_slot_wait_seconds_sum") or 0.0) - waited_before >= 0.05
    assert len(handle.saved) == 1
    phase, behind, message = handle.saved[0]
    assert (phase, behind) == ("Queued", "") and message.startswith("waiting for a run slot")


async def test_two_reads_at_once_give_both_answers_or_the_first_error_once_both_ended() -> None:
    ended: list[str] = []

    async def read(name: str, delay: float, error: Exception | None = None) -> str:
        await asyncio.sleep(delay)
        ended.append(name)
        if error is not None:
            raise error
        return name

    assert await _both(read("target", 0.02), read("operations", 0.01)) == ("target", "operations")
    ended.clear()
    try:
        await _both(read("target", 0.0, TransientError("busy")), read("operations", 0.02))
    except TransientError as error:
        assert str(error) == "busy"
    else:
        raise AssertionError("the error was not raised")
    assert ended == ["target", "operations"]  # the other read was not left running
