"""The engine's state machine, driven through its own interfaces with in-memory steps."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY

from bosun.engine import record
from bosun.engine.runner import Runner
from bosun.engine.steps import (
    PermanentError,
    RetryPolicy,
    Step,
    StepTable,
    TransientError,
    irreversible,
    no_side_effect,
)
from bosun.models.operation import OperationStatus, Phase, RollbackState, StepState


@dataclass
class Handle:
    cancel: bool = False
    saved: list[OperationStatus] = field(default_factory=list)

    def cancel_requested(self) -> bool:
        return self.cancel

    async def save(self, status: OperationStatus) -> None:
        self.saved.append(status.model_copy(deep=True))


class Journal:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    def milestone(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.lines.append("WARNING " + message)


@dataclass
class World:
    """A fake world the steps change; records every run and undo in order."""

    events: list[str] = field(default_factory=list)
    fail_run: set[str] = field(default_factory=set)
    fail_undo: set[str] = field(default_factory=set)
    transient: dict[str, int] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)
    handle: Handle | None = None


def step(name: str, retry: RetryPolicy | None = None, **kwargs: object) -> Step[World]:
    async def run(world: World) -> str:
        if world.handle is not None:  # persist-before-act: the step is recorded Running already
            last = world.handle.saved[-1]
            assert next(s for s in last.steps if s.name == name).state is StepState.RUNNING
        world.events.append(f"run:{name}")
        if world.transient.get(name, 0) > 0:
            world.transient[name] -= 1
            raise TransientError("api said 503")
        if name in world.slow:
            await asyncio.sleep(world.slow[name])
        if name in world.fail_run:
            raise PermanentError(f"{name} broke")
        return f"{name} done"

    async def undo(world: World) -> str:
        world.events.append(f"undo:{name}")
        if name in world.fail_undo:
            raise PermanentError(f"cannot put {name} back")
        return "ok"

    retry = retry or RetryPolicy(attempts=3, initial_delay=0.01)
    return Step(name, f"does {name}", run, undo, retry=retry, **kwargs)  # type: ignore[arg-type]


TABLE = StepTable("three", [step("a"), step("b"), step("c")])


def runner(world: World, table: StepTable[World] = TABLE, **kwargs: object) -> tuple[Runner[World], Handle, Journal]:
    handle = world.handle or Handle()
    world.handle = handle
    journal = Journal()
    return Runner(table, world, handle, journal, poll_interval=0.01, **kwargs), handle, journal  # type: ignore[arg-type]


async def test_all_steps_succeed_in_order() -> None:
    world = World()
    run, handle, _ = runner(world)
    status = await run.drive(OperationStatus())
    assert world.events == ["run:a", "run:b", "run:c"]
    assert status.phase is Phase.SUCCEEDED
    assert status.progress == "3/3"
    assert status.rollback is not None and status.rollback.state is RollbackState.NOT_NEEDED
    assert [s.state for s in status.steps] == [StepState.SUCCEEDED] * 3
    assert all(s.started_at and s.finished_at and s.attempts == 1 for s in status.steps)
    progress_seen = [s.progress for s in handle.saved]
    assert progress_seen[0] == "0/3" and "1/3" in progress_seen and "2/3" in progress_seen


async def test_a_steps_end_is_written_with_the_next_steps_start() -> None:
    world = World()
    run, handle, _ = runner(world)
    await run.drive(OperationStatus())
    # started + a running, a done + b running, b done + c running, c done + succeeded
    assert len(handle.saved) == 4
    states = [[s.state for s in saved.steps] for saved in handle.saved]
    assert handle.saved[0].phase is Phase.RUNNING and handle.saved[0].started_at
    assert states[0] == [StepState.RUNNING, StepState.PENDING, StepState.PENDING]
    assert states[1] == [StepState.SUCCEEDED, StepState.RUNNING, StepState.PENDING]
    assert states[3] == [StepState.SUCCEEDED] * 3 and handle.saved[3].phase is Phase.SUCCEEDED


async def test_the_time_between_two_steps_is_measured() -> None:
    def transitions() -> float:
        return REGISTRY.get_sample_value("bosun_step_transition_seconds_count") or 0.0

    before = transitions()
    run, _, _ = runner(World())
    await run.drive(OperationStatus())
    assert transitions() - before == 2  # a -> b, b -> c


async def test_a_cancel_between_two_steps_writes_the_last_success_with_the_rollback() -> None:
    world = World()
    plain = step("a")

    async def run_then_cancel(w: World) -> str | None:
        result = await plain.run(w)
        assert w.handle is not None
        w.handle.cancel = True  # asked while a ran: seen before b starts
        return result

    table = StepTable("three", [Step("a", "does a", run_then_cancel, plain.undo), step("b"), step("c")])
    run, handle, _ = runner(world, table)
    status = await run.drive(OperationStatus())
    assert world.events == ["run:a", "undo:a"]
    first_rollback_write = next(s for s in handle.saved if s.phase is Phase.ROLLING_BACK)
    assert first_rollback_write.steps[0].state is StepState.SUCCEEDED  # a's success was not lost
    assert status.phase is Phase.CANCELLED


async def test_failure_rolls_back_in_reverse_order() -> None:
    world = World(fail_run={"c"})
    run, _, journal = runner(world)
    status = await run.drive(OperationStatus())
    assert world.events == ["run:a", "run:b", "run:c", "undo:c", "undo:b", "undo:a"]
    assert status.phase is Phase.FAILED
    assert status.reason == "StepFailed"
    assert status.rollback is not None
    assert status.rollback.state is RollbackState.SUCCEEDED
    assert status.rollback.undone == ["c", "b", "a"]
    assert [s.state for s in status.steps] == [StepState.UNDONE] * 3
    assert "c broke" in status.steps[2].message
    assert any("rollback succeeded" in line for line in journal.lines)


async def test_failed_undo_is_named_and_the_rest_still_undone() -> None:
    world = World(fail_run={"c"}, fail_undo={"b"})
    run, _, _ = runner(world)
    status = await run.drive(OperationStatus())
    assert world.events[-3:] == ["undo:c", "undo:b", "undo:a"]
    assert status.rollback is not None and status.rollback.state is RollbackState.FAILED
    assert [(n.step, n.reason) for n in status.rollback.not_undone] == [("b", "cannot put b back")]
    assert status.steps[1].state is StepState.UNDO_FAILED
    assert status.rollback.undone == ["c", "a"]


async def test_irreversible_step_makes_rollback_failed_and_says_why() -> None:
    async def migrate(world: World) -> str:
        world.events.append("run:migrate")
        return "migrated"

    table = StepTable(
        "t", [step("a"), irreversible("migrate", "runs a migration", migrate, "migrations stay"), step("c")]
    )
    world = World(fail_run={"c"})
    run, _, journal = runner(world, table)
    status = await run.drive(OperationStatus())
    assert world.events == ["run:a", "run:migrate", "run:c", "undo:c", "undo:a"]
    assert status.rollback is not None and status.rollback.state is RollbackState.FAILED
    assert [(n.step, n.reason) for n in status.rollback.not_undone] == [("migrate", "migrations stay")]
    assert status.steps[1].state is StepState.NOT_UNDONE
    assert any("cannot be undone" in line for line in journal.lines)


async def test_trivial_operation_needs_no_rollback() -> None:
    async def look(world: World) -> str:
        raise PermanentError("nothing to see")

    table = StepTable("t", [no_side_effect("look", "looks", look)])
    run, _, _ = runner(World(), table)
    status = await run.drive(OperationStatus())
    assert status.phase is Phase.FAILED
    assert status.rollback is not None and status.rollback.state is RollbackState.NOT_APPLICABLE


async def test_transient_errors_are_retried_then_succeed() -> None:
    world = World(transient={"b": 2})
    run, _, _ = runner(world)
    status = await run.drive(OperationStatus())
    assert status.phase is Phase.SUCCEEDED
    assert status.steps[1].attempts == 3
    assert world.events.count("run:b") == 3


async def test_transient_errors_exhausted_fail_the_step() -> None:
    world = World(transient={"b": 10})
    run, _, _ = runner(world)
    status = await run.drive(OperationStatus())
    assert status.phase is Phase.FAILED
    assert status.reason == "RetriesExhausted"
    assert world.events.count("run:b") == 3


async def test_by_default_transient_errors_are_retried_until_the_step_times_out_not_a_count() -> None:
    patient = RetryPolicy(initial_delay=0.001, max_delay=0.002)  # the product's default: no count
    table = StepTable("t", [step("a"), step("b", retry=patient, timeout=5)])
    world = World(transient={"b": 40})  # a busy API server: far more failures than any small count
    status = await runner(world, table)[0].drive(OperationStatus())
    assert status.phase is Phase.SUCCEEDED
    assert world.events.count("run:b") == 41


async def test_transient_errors_past_the_step_timeout_fail_it() -> None:
    table = StepTable("t", [step("a"), step("b", retry=RetryPolicy(initial_delay=0.02, max_delay=0.02), timeout=0.3)])
    world = World(transient={"b": 10_000})
    status = await runner(world, table)[0].drive(OperationStatus())
    assert (status.phase, status.reason) == (Phase.FAILED, "StepTimeout")
    assert status.rollback is not None and status.rollback.state is RollbackState.SUCCEEDED


async def test_step_timeout_fails_and_rolls_back() -> None:
    table = StepTable("t", [step("a"), step("b", timeout=0.05)])
    world = World(slow={"b": 5})
    run, _, _ = runner(world, table)
    status = await run.drive(OperationStatus())
    assert status.reason == "StepTimeout"
    assert world.events == ["run:a", "run:b", "undo:b", "undo:a"]


async def test_cancel_during_a_step_interrupts_it_and_rolls_back() -> None:
    world = World(slow={"b": 30})
    run, handle, _ = runner(world)

    async def cancel_soon() -> None:
        await asyncio.sleep(0.1)
        handle.cancel = True

    started = time.monotonic()
    status, _ = await asyncio.gather(run.drive(OperationStatus()), cancel_soon())
    assert time.monotonic() - started < 5
    assert status.phase is Phase.CANCELLED
    assert status.rollback is not None and status.rollback.state is RollbackState.SUCCEEDED
    assert world.events == ["run:a", "run:b", "undo:b", "undo:a"]
    assert "run:c" not in world.events


async def test_resume_reruns_the_step_found_running_and_nothing_before_it() -> None:
    world = World()
    run, _, _ = runner(world)
    status = OperationStatus(phase=Phase.RUNNING, started_at="2026-01-01T00:00:00Z")
    from bosun.engine import record

    record.init_steps(status, TABLE.steps)  # type: ignore[arg-type]
    status.steps[0].state = StepState.SUCCEEDED
    status.steps[1].state = StepState.RUNNING
    status.steps[1].attempts = 1
    status = await run.drive(status)
    assert world.events == ["run:b", "run:c"]
    assert status.phase is Phase.SUCCEEDED
    assert status.steps[1].attempts == 2


async def test_resume_of_a_rollback_continues_it() -> None:
    from bosun.engine import record

    world = World()
    run, _, _ = runner(world)
    status = OperationStatus(phase=Phase.RUNNING)
    record.init_steps(status, TABLE.steps)  # type: ignore[arg-type]
    status.steps[0].state = StepState.SUCCEEDED
    status.steps[1].state = StepState.UNDOING
    record.begin_rollback(status, record.CANCELLED_REASON, "cancelled by request")
    status = await run.drive(status)
    assert world.events == ["undo:b", "undo:a"]
    assert status.phase is Phase.CANCELLED
    assert status.steps[2].state is StepState.PENDING


async def test_deadline_passed_fails_before_the_next_step() -> None:
    world = World()
    run, _, _ = runner(world, deadline=time.time() - 1)
    status = await run.drive(OperationStatus())
    assert status.phase is Phase.FAILED
    assert status.reason == "DeadlineExceeded"
    assert world.events == []
    assert status.rollback is not None and status.rollback.state is RollbackState.NOT_NEEDED  # nothing ran


async def test_unexpected_exception_in_a_step_fails_the_operation_not_the_runner() -> None:
    async def buggy(world: World) -> str:
        raise KeyError("oops")

    table = StepTable("t", [Step("x", "buggy", buggy, buggy)])
    run, _, _ = runner(World(), table)
    status = await run.drive(OperationStatus())
    assert status.phase is Phase.FAILED
    assert status.reason == "InternalError"
    assert "KeyError" in status.steps[0].message


def test_table_rejects_unmarked_side_effects_and_duplicates() -> None:
    async def run(world: World) -> None:
        return None

    with pytest.raises(ValueError, match="give it an undo"):
        Step("x", "x", run)
    with pytest.raises(ValueError, match="duplicate"):
        StepTable("t", [step("a"), step("a")])


async def test_a_step_that_found_nothing_to_do_is_skipped_and_never_undone() -> None:
    from bosun.engine.steps import Skipped

    async def nothing(world: World) -> str:
        world.events.append("run:nothing")
        return Skipped("nothing to run")

    table = StepTable("t", [step("a"), irreversible("nothing", "may migrate", nothing, "migrations stay"), step("c")])
    world = World(fail_run={"c"})
    run, _, _ = runner(world, table)
    status = await run.drive(OperationStatus())
    assert status.steps[1].state is StepState.SKIPPED
    assert world.events == ["run:a", "run:nothing", "run:c", "undo:c", "undo:a"]
    assert status.rollback is not None and status.rollback.state is RollbackState.SUCCEEDED


async def test_the_last_look_before_the_downtime_can_refuse_and_undo_what_ran_before() -> None:
    world = World()
    table = StepTable("with-downtime", [step("a"), step("b"), step("c")], downtime_steps=("b", "c"))
    looked: list[str] = []

    async def over_budget(status: OperationStatus) -> str:
        looked.append(next(s.name for s in status.steps if s.state is StepState.PENDING))
        return "predicted downtime up to 9.0s is over the budget of 5s"

    run, _, _ = runner(world, table, before_downtime=over_budget)
    status = await run.drive(OperationStatus())
    assert looked == ["b"]  # once, just before the first downtime step, and never after it
    assert world.events == ["run:a", "undo:a"]  # b never ran; a is undone
    assert (status.phase, status.reason) == (Phase.FAILED, "DowntimeBudget")
    assert status.rollback is not None and status.rollback.state is RollbackState.SUCCEEDED
    assert "over the budget of 5s" in status.message


async def test_a_resumed_downtime_step_is_not_looked_at_again() -> None:
    world = World()
    table = StepTable("with-downtime", [step("a"), step("b")], downtime_steps=("b",))
    status = OperationStatus()

    record.init_steps(status, table.steps)  # type: ignore[arg-type]
    record.start(status, "2026-12-06T10:00:00Z")
    record.step_started(status, 0, "2026-12-06T10:00:00Z")
    record.step_succeeded(status, 0, "2026-12-06T10:00:01Z", "a done")
    record.step_started(status, 1, "2026-12-06T10:00:01Z")  # the stop was under way when the operator died

    async def refuse(_: OperationStatus) -> str:
        raise AssertionError("past the last safe moment: no second look")

    resumed, _, _ = runner(world, table, before_downtime=refuse)
    done = await resumed.drive(status)
    assert done.phase is Phase.SUCCEEDED and world.events == ["run:b"]


async def test_the_last_look_comes_before_an_irreversible_step_that_precedes_the_downtime() -> None:
    world = World()
    expand = irreversible("expand", "cannot shrink back", step("expand").run, "a volume cannot shrink")
    table = StepTable("resize-like", [step("check"), expand, step("restart")], downtime_steps=("restart",))

    async def over_budget(_: OperationStatus) -> str:
        return "over the budget"

    run, _, _ = runner(world, table, before_downtime=over_budget)
    status = await run.drive(OperationStatus())
    assert world.events == ["run:check", "undo:check"]  # expand never ran: nothing stays changed
    assert status.reason == "DowntimeBudget" and status.rollback is not None
    assert status.rollback.state is RollbackState.SUCCEEDED
