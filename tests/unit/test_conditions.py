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
