"""Pure transitions of an Operation's status: the state machine, free of any I/O.

The runner calls these and persists the result; unit tests call them directly. Keeping them pure
is what lets a restarted operator trust `status.steps` alone to know where it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from bosun.engine.conditions import set_condition
from bosun.engine.steps import Reversibility, Step
from bosun.models.base import Condition
from bosun.models.operation import (
    NotUndone,
    OperationStatus,
    Phase,
    RollbackState,
    RollbackStatus,
    StepState,
    StepStatus,
)

DONE_STATES = frozenset({StepState.SUCCEEDED, StepState.SKIPPED})
# Steps whose run may have changed something: finished, failed, or interrupted mid-run/mid-undo.
TOUCHED_STATES = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.RUNNING, StepState.UNDOING})
CANCELLED_REASON = "Cancelled"


class InconsistentRecord(Exception):
    """status.steps does not match the step table (e.g. the table changed under a running operation)."""


def init_steps(status: OperationStatus, steps: Sequence[Step[object]]) -> None:
    """Lay out every step as Pending, or check the recorded steps match the table."""
    names = [s.name for s in steps]
    if not status.steps:
        status.steps = [StepStatus(name=s.name, description=s.description) for s in steps]
    elif [s.name for s in status.steps] != names:
        raise InconsistentRecord(
            f"recorded steps {[s.name for s in status.steps]} do not match this version's steps {names}"
        )
    status.progress = progress(status)


def progress(status: OperationStatus) -> str:
    done = sum(1 for s in status.steps if s.state in DONE_STATES)
    return f"{done}/{len(status.steps)}"


def start(status: OperationStatus, now: str) -> None:
    status.phase = Phase.RUNNING
    status.started_at = status.started_at or now
    status.queued_behind = ""
    status.message = "running"


def step_started(status: OperationStatus, index: int, now: str) -> None:
    step = status.steps[index]
    step.state = StepState.RUNNING
    step.started_at = step.started_at or now
    step.attempts += 1
    step.message = ""
    status.message = f"step {index + 1}/{len(status.steps)}: {step.name}"


def step_retrying(status: OperationStatus, index: int, error: str) -> None:
    step = status.steps[index]
    step.attempts += 1
    step.message = f"retrying after a transient error: {error}"


def step_succeeded(status: OperationStatus, index: int, now: str, message: str | None) -> None:
    step = status.steps[index]
    step.state = StepState.SUCCEEDED
    step.finished_at = now
    step.message = message or ""
    status.progress = progress(status)


def step_skipped(status: OperationStatus, index: int, now: str, message: str) -> None:
    step = status.steps[index]
    step.state = StepState.SKIPPED
    step.finished_at = now
    step.message = message
    status.progress = progress(status)


def step_failed(status: OperationStatus, index: int, now: str, message: str) -> None:
    step = status.steps[index]
    step.state = StepState.FAILED
    step.finished_at = now
    step.message = message


def succeed(status: OperationStatus, now: str) -> None:
    status.phase = Phase.SUCCEEDED
    status.finished_at = now
    status.reason = "Succeeded"
    status.message = f"all {len(status.steps)} steps succeeded"
    status.rollback = RollbackStatus(state=RollbackState.NOT_NEEDED, message="nothing to roll back")
    status.progress = progress(status)


def begin_rollback(status: OperationStatus, reason: str, message: str) -> None:
    status.phase = Phase.ROLLING_BACK
    status.reason = reason
    status.message = f"rolling back: {message}"
    status.rollback = status.rollback or RollbackStatus(state=RollbackState.RUNNING)
    status.rollback.state = RollbackState.RUNNING


def steps_to_undo(status: OperationStatus) -> list[int]:
    """Indexes of steps that may have changed something, newest first."""
    return [i for i in reversed(range(len(status.steps))) if status.steps[i].state in TOUCHED_STATES]


def undo_started(status: OperationStatus, index: int, now: str) -> None:
    step = status.steps[index]
    step.state = StepState.UNDOING
    step.undo_started_at = step.undo_started_at or now


def undone(status: OperationStatus, index: int, now: str) -> None:
    step = status.steps[index]
    step.state = StepState.UNDONE
    step.undo_finished_at = now
    assert status.rollback is not None
    if step.name not in status.rollback.undone:
        status.rollback.undone.append(step.name)


def not_undone(status: OperationStatus, index: int, now: str, reason: str, *, failed: bool) -> None:
    """Record a change that stays: an undo that failed, or a step that cannot be undone."""
    step = status.steps[index]
    step.state = StepState.UNDO_FAILED if failed else StepState.NOT_UNDONE
    step.undo_finished_at = now
    assert status.rollback is not None
    if all(n.step != step.name for n in status.rollback.not_undone):
        status.rollback.not_undone.append(NotUndone(step=step.name, reason=reason))


def nothing_to_undo(status: OperationStatus, index: int) -> None:
    """A step with no side effect: its run changed nothing, so the rollback passes it by."""
    step = status.steps[index]
    if step.state in (StepState.RUNNING, StepState.UNDOING):
        step.state = StepState.FAILED


def finish_rollback(status: OperationStatus, now: str, *, applicable: bool) -> None:
    assert status.rollback is not None
    rollback = status.rollback
    if not applicable:
        rollback.state = RollbackState.NOT_APPLICABLE
        rollback.message = "this operation has no side effects: nothing to roll back"
    elif rollback.not_undone:
        rollback.state = RollbackState.FAILED
        stays = ", ".join(f"{n.step} ({n.reason})" for n in rollback.not_undone)
        rollback.message = f"rollback failed: these changes stay: {stays}"
    elif not rollback.undone:  # it failed before any step that changes something ran
        rollback.state = RollbackState.NOT_NEEDED
        rollback.message = "nothing was changed: nothing to roll back"
    else:
        rollback.state = RollbackState.SUCCEEDED
        undone_steps = ", ".join(rollback.undone) or "nothing had changed"
        rollback.message = f"rollback succeeded: everything is as before (undone: {undone_steps})"
    cancelled = status.reason == CANCELLED_REASON
    status.phase = Phase.CANCELLED if cancelled else Phase.FAILED
    status.finished_at = now
    cause = status.message.removeprefix("rolling back: ")
    status.message = f"{'cancelled' if cancelled else 'failed'}: {cause}; {rollback.message}"


def end_without_running(status: OperationStatus, now: str, *, phase: Phase, reason: str, message: str) -> None:
    """End an operation that never started (cancelled or failed while Pending/Queued)."""
    status.phase = phase
    status.reason = reason
    status.message = message
    status.finished_at = now
    status.queued_behind = ""
    status.rollback = RollbackStatus(state=RollbackState.NOT_NEEDED, message="nothing was changed")


def abandon(status: OperationStatus, now: str, *, reason: str, message: str) -> None:
    """End an operation that had started but can no longer be planned (its target vanished).

    Nothing can be undone without a plan, so the rollback is Failed and every step that may have
    changed something is named: a reader is never told that nothing changed when it might have.
    """
    touched = [status.steps[i].name for i in steps_to_undo(status)]
    status.phase = Phase.FAILED
    status.reason = reason
    status.finished_at = now
    status.message = f"failed: {message}"
    status.rollback = RollbackStatus(
        state=RollbackState.FAILED,
        not_undone=[NotUndone(step=name, reason=f"cannot be undone: {message}") for name in touched],
        message=f"rollback failed: {message}",
    )


def conditions(status: OperationStatus, generation: int | None, now: str) -> list[Condition]:
    """Ready/Reconciling/Stalled in the kstatus conventions, derived from the phase alone."""
    phase = status.phase
    finished_failing = phase in (Phase.FAILED, Phase.CANCELLED)
    reason = status.reason or phase.value
    if phase is Phase.FAILED and status.rollback is not None:
        reason = {
            RollbackState.SUCCEEDED: "RolledBack",
            RollbackState.FAILED: "RollbackFailed",
        }.get(status.rollback.state, reason)
    wanted = {
        "Ready": (phase is Phase.SUCCEEDED, "Succeeded" if phase is Phase.SUCCEEDED else reason),
        "Reconciling": (not phase.finished, phase.value),
        "Stalled": (finished_failing, reason if finished_failing else ""),
    }
    return [
        set_condition(status.conditions, kind, true, why or phase.value, status.message, now, generation=generation)
        for kind, (true, why) in wanted.items()
    ]


def is_undoable(step: Step[object]) -> bool:
    return step.reversibility is Reversibility.UNDOABLE
