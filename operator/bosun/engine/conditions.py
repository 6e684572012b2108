"""Conditions set the way Kubernetes' `meta.SetStatusCondition` sets them.

An Operation and its target each carry Ready, Reconciling and Stalled (the kstatus conventions
that Argo CD, Flux and `kubectl wait` read); what each says is decided in `record` (the
Operation's) and `target` (the App's or Database's), but both set them here, so that a
condition's `lastTransitionTime` means the same everywhere: it changes only when its status does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from bosun.models.base import Condition, ConditionStatus


def set_condition(
    previous: Iterable[Condition | Mapping[str, Any]],
    kind: str,
    true: bool,
    reason: str,
    message: str,
    now: str,
    *,
    generation: int | None = None,
) -> Condition:
    """The condition `kind` as it is to be, keeping the transition time of `previous` when its
    status did not change."""
    value = ConditionStatus.TRUE if true else ConditionStatus.FALSE
    before = next((c for c in map(_parsed, previous) if c is not None and c.type == kind), None)
    kept = before.last_transition_time if before is not None and before.status == value else None
    return Condition(
        type=kind,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=kept or now,
        observed_generation=generation,
    )


def _parsed(condition: Condition | Mapping[str, Any]) -> Condition | None:
    """A condition as stored; one that is not a condition at all has no transition time to keep."""
    if isinstance(condition, Condition):
        return condition
    try:
        return Condition.model_validate(condition)
    except ValidationError:
        return None
