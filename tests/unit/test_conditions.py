"""Conditions keep their transition time unless their status changes, on Operations and targets alike."""

from __future__ import annotations

from bosun.engine.conditions import set_condition
from bosun.models.base import Condition, ConditionStatus

BEFORE = "2026-01-01T00:00:00Z"
NOW = "2026-01-02T00:00:00Z"


def test_a_condition_keeps_its_transition_time_while_its_status_stays() -> None:
    stored = [{"type": "Ready", "status": "True", "reason": "Succeeded", "lastTransitionTime": BEFORE}]
    same = set_condition(stored, "Ready", True, "Succeeded", "operation x succeeded", NOW)
    assert (same.status, same.last_transition_time, same.message) == (
        ConditionStatus.TRUE,
        BEFORE,
        "operation x succeeded",
    )
    flipped = set_condition(stored, "Ready", False, "OperationRunning", "running", NOW)
    assert (flipped.status, flipped.last_transition_time) == (ConditionStatus.FALSE, NOW)


def test_a_new_or_unreadable_condition_starts_now() -> None:
    assert set_condition([], "Stalled", False, "Idle", "", NOW).last_transition_time == NOW
    other = [Condition(type="Ready", status=ConditionStatus.FALSE, last_transition_time=BEFORE)]
    assert set_condition(other, "Stalled", False, "Idle", "", NOW).last_transition_time == NOW
    garbled = [{"type": "Stalled", "status": "Maybe", "lastTransitionTime": BEFORE}, "not a condition"]
    assert set_condition(garbled, "Stalled", False, "Idle", "", NOW).last_transition_time == NOW  # type: ignore[arg-type]


def _shown(phase: str, *, serving: bool, changes_target: bool, **status: object) -> dict[str, tuple[str, str]]:
    from bosun.engine.target import target_conditions
    from bosun.models.operation import Operation

    operation = Operation.of(
        {
            "metadata": {"name": "pg-backup", "namespace": "shop"},
            "spec": {"target": {"kind": "Database", "name": "pg"}, "type": "restart"},
            "status": {"phase": phase, **status},
        }
    )
    shown = target_conditions(operation, operation.status, [], NOW, serving=serving, changes_target=changes_target)
    return {c.type: (c.status.value, c.reason) for c in shown}


def test_an_operation_that_only_reads_its_target_leaves_it_ready_and_not_reconciling() -> None:
    running = _shown("Running", serving=True, changes_target=False)
    assert running["Ready"] == ("True", "ReadOnlyOperation") and running["Reconciling"][0] == "False"
    assert _shown("Running", serving=False, changes_target=False)["Ready"][0] == "False"  # not made Ready either
    assert _shown("Succeeded", serving=False, changes_target=False)["Ready"][0] == "False"
    assert _shown("Succeeded", serving=True, changes_target=False)["Ready"][0] == "True"
    failed = _shown("Failed", serving=True, changes_target=False, rollback={"state": "NotNeeded"})
    assert failed["Ready"][0] == "True" and failed["Stalled"][0] == "False"  # it changed nothing: as it was
    broken = _shown("Failed", serving=True, changes_target=False, rollback={"state": "Failed"})
    assert broken["Stalled"][0] == "True"  # what it did could not be undone: as loud as any other
    # What changes its target is not Ready while it runs, and is when it succeeded.
    assert _shown("Running", serving=True, changes_target=True)["Ready"] == ("False", "OperationRunning")
    assert _shown("Succeeded", serving=False, changes_target=True)["Ready"][0] == "True"


def test_a_table_that_stops_its_target_cannot_say_it_changes_nothing() -> None:
    import pytest

    from bosun.engine.steps import StepTable, no_side_effect

    async def nothing(_: object) -> None:
        return None

    step = no_side_effect("copy", "copy the data out", nothing)
    assert not StepTable("backup", [step], changes_target=False).stops_service
    with pytest.raises(ValueError, match="changes its target"):
        StepTable("backup", [step], downtime_steps=("copy",), changes_target=False)
