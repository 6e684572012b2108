"""Turns status transitions into metrics: what changed between two saves of one operation.

Why from transitions and not from the code paths that cause them: every way an operation moves
(a step ends, a rollback, a deadline, a bug caught by the engine) goes through one status save, so
counting there cannot miss a path nor count one twice in a process.
"""

from __future__ import annotations

from dataclasses import dataclass

from bosun import metrics
from bosun.models.base import parse_time
from bosun.models.operation import Operation, OperationStatus, Phase, StepState

_ENDED_STEP = (StepState.SUCCEEDED, StepState.SKIPPED, StepState.FAILED)


@dataclass(frozen=True)
class Seen:
    """What metering remembers of the last save: enough to tell what changed."""

    phase: Phase
    steps: tuple[StepState, ...]
    started: bool

    @classmethod
    def of(cls, status: OperationStatus) -> Seen:
        return cls(status.phase, tuple(step.state for step in status.steps), bool(status.started_at))


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return max(0.0, (parse_time(end) - parse_time(start)).total_seconds())


def observe(operation: Operation, before: Seen, after: OperationStatus) -> Seen:
    """Record what changed from `before` to `after`; return what to remember for the next save."""
    kind, kind_type = operation.spec.target.kind.value, operation.spec.type.value
    if not before.started and after.started_at:
        waited = _seconds(operation.created, after.started_at)
        if waited is not None:
            metrics.QUEUE_WAIT.labels(kind, kind_type).observe(waited)
    for index, step in enumerate(after.steps):
        was = before.steps[index] if index < len(before.steps) else StepState.PENDING
        if was is StepState.RUNNING and step.state in _ENDED_STEP:
            took = _seconds(step.started_at, step.finished_at)
            if took is not None:
                metrics.STEP_DURATION.labels(kind_type, step.name, step.state.value).observe(took)
    if after.phase.finished and not before.phase.finished:
        rollback = after.rollback.state.value if after.rollback else "NotNeeded"
        metrics.OPERATIONS.labels(kind, kind_type, after.phase.value, rollback).inc()
        took = _seconds(after.started_at, after.finished_at)
        if took is not None:
            metrics.OPERATION_DURATION.labels(kind, kind_type, after.phase.value).observe(took)
    return Seen.of(after)
