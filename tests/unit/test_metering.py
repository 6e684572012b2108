"""Metrics come from status transitions: each operation counted once when it ends, each ended step
timed once, the queue wait observed when the first step starts."""

from __future__ import annotations

from prometheus_client import REGISTRY

from bosun.engine.metering import Seen, observe
from bosun.models.operation import Operation, OperationStatus, Phase, RollbackState, StepState


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def operation(kind: str = "Database", kind_type: str = "restart") -> Operation:
    return Operation.of(
        {
            "metadata": {"name": "op", "namespace": "ns", "creationTimestamp": "2026-11-26T10:00:00Z"},
            "spec": {"target": {"kind": kind, "name": "db"}, "type": kind_type},
        }
    )


def status(phase: Phase, *steps: tuple[str, StepState, str | None, str | None], **fields: object) -> OperationStatus:
    return OperationStatus.model_validate(
        {
            "phase": phase,
            "steps": [{"name": n, "state": s, "startedAt": a, "finishedAt": b} for n, s, a, b in steps],
            **fields,
        }
    )


def test_an_operation_is_counted_once_with_its_phase_rollback_and_durations() -> None:
    op = operation(kind_type="resize")
    labels = {"kind": "Database", "type": "resize"}
    ended = {**labels, "phase": "Failed", "rollback": "Succeeded"}
    before_count = sample("bosun_operations_total", **ended)
    before_wait = sample("bosun_queue_wait_seconds_count", **labels)
    before_step = sample("bosun_step_duration_seconds_sum", type="resize", step="grow", state="Failed")

    seen = Seen.of(op.status)
    running = status(
        Phase.RUNNING, ("grow", StepState.RUNNING, "2026-11-26T10:00:03Z", None), startedAt="2026-11-26T10:00:02Z"
    )
    seen = observe(op, seen, running)
    assert sample("bosun_queue_wait_seconds_count", **labels) == before_wait + 1
    assert sample("bosun_queue_wait_seconds_sum", **labels) >= 2.0

    failed = status(
        Phase.FAILED,
        ("grow", StepState.FAILED, "2026-11-26T10:00:03Z", "2026-11-26T10:00:08Z"),
        startedAt="2026-11-26T10:00:02Z",
        finishedAt="2026-11-26T10:00:12Z",
        rollback={"state": RollbackState.SUCCEEDED},
    )
    seen = observe(op, seen, failed)
    observe(op, seen, failed)  # saved again (a mirror retry, say): not counted again
    assert sample("bosun_operations_total", **ended) == before_count + 1
    assert sample("bosun_step_duration_seconds_sum", type="resize", step="grow", state="Failed") == before_step + 5.0
    assert sample("bosun_operation_duration_seconds_sum", **labels, phase="Failed") >= 10.0


def test_an_operation_resumed_already_finished_is_not_counted_by_this_process() -> None:
    op = operation(kind_type="scale")
    done = status(Phase.SUCCEEDED, startedAt="2026-11-26T10:00:00Z", finishedAt="2026-11-26T10:00:01Z")
    before = sample("bosun_operations_total", kind="Database", type="scale", phase="Succeeded", rollback="NotNeeded")
    observe(op, Seen.of(done), done)
    assert (
        sample("bosun_operations_total", kind="Database", type="scale", phase="Succeeded", rollback="NotNeeded")
        == before
    )
