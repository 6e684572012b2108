"""May this operation start now? The target's terms (budget, windows, approval) against its plan.

Why a pure function of values: the decision is re-made every time the operation looks again (a
window opens, the target is edited, someone approves, the operator restarts), and it must come
out the same from the same facts. The engine gathers the facts (the plan, the namespace's history,
the live Operation) and acts on the verdict; nothing here reads the cluster or the clock.

The rules, in the order a person checks them:
1. **Budget.** An operation with downtime steps, predicted (the worst of the recent successful
   runs, the range `kubectl bosun plan` shows) to stop the service longer than its budget, is
   refused before it changes anything. The worst and not the median: a budget is a maximum
   promised to someone, and half the runs over it would break it half the time. No history: no
   prediction, so no refusal; the measured downtime is recorded against the budget afterwards.
2. **Approval.** Where the target requires it, an operation that stops the service or cannot be
   undone waits until its *plan* (a digest of the decision and the target's generation) is
   approved; a changed plan needs a new approval.
3. **notBefore.** The operation's own earliest start.
4. **Windows.** An operation that stops the service starts only inside a window, and only if its
   predicted duration fits what is left of it; otherwise it waits for the first window it fits.
   If it fits none, it fails at once (`NoWindowFits`) rather than waiting forever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bosun.models.names import AWAITING_APPROVAL, NOT_BEFORE, WAITING_FOR_WINDOW
from bosun.models.operation import Estimate, OperationSpec
from bosun.models.terms import WEEKDAYS, MaintenanceWindow, OperationPolicy

OPENING_GRACE = timedelta(seconds=60)  # how late after its opening a window still counts as just opened
SEARCH_DAYS = 8  # a weekly window opens within a week (a day more for one that started yesterday)


@dataclass(frozen=True)
class Facts:
    """What the plan says about the operation, and what its history predicts."""

    stops_service: bool  # downtime, or the end of service (deprovision)
    has_downtime: bool  # a temporary stop: what a budget measures
    irreversible: tuple[str, ...]
    predicted_downtime: Estimate | None
    predicted_duration: Estimate
    digest: str
    summary: str


@dataclass(frozen=True)
class Verdict:
    """Go, wait (reason, until when), or fail before anything changed (reason, message)."""

    go: bool
    reason: str = ""
    message: str = ""
    starts_at: datetime | None = None
    fail: bool = False


GO = Verdict(go=True)


def plan_digest(*parts: object) -> str:
    """A short, stable digest of a plan: what an approval approves."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def budget_of(spec: OperationSpec, policy: OperationPolicy | None, target_kind: str) -> tuple[int | None, str]:
    """The operation's downtime budget, and where it comes from."""
    if spec.max_downtime_seconds is not None:
        return spec.max_downtime_seconds, "Operation"
    if policy is not None and policy.max_downtime_seconds is not None:
        return policy.max_downtime_seconds, target_kind
    return None, ""


def predicted(estimate: Estimate | None) -> float | None:
    """The figure a budget is held against: the worst of the recent runs (None: no history)."""
    if estimate is None or not estimate.runs:
        return None
    return estimate.worst_seconds


def over_budget(budget: int | None, expected: Estimate | None, waived: bool) -> str:
    """Why the operation would break its budget ('' if it would not, or cannot be told)."""
    if budget is None or waived or expected is None:
        return ""
    worst = predicted(expected)
    if worst is None or worst <= budget:
        return ""
    runs = expected.runs
    return (
        f"predicted downtime up to {worst:.1f}s (the worst of the last {runs} runs) is over the budget of "
        f"{budget}s; nothing was changed (spec.override.downtimeBudget with a reason runs it anyway)"
    )


def _start_of(window: MaintenanceWindow, day: date, zone: ZoneInfo) -> datetime:
    """When `window` opens on local `day`, in UTC: a skipped local time opens it when the clocks
    jump (the first local minute after it that exists); a repeated one, the first time."""
    hour, minute = (int(p) for p in window.start.split(":"))
    local = datetime.combine(day, time(hour, minute), tzinfo=zone)
    for _ in range(24 * 60):
        back = local.astimezone(UTC).astimezone(zone)
        if back.replace(tzinfo=None) == local.replace(tzinfo=None):
            return local.astimezone(UTC)
        local += timedelta(minutes=1)  # wall-clock arithmetic: the next local minute
    raise ValueError(f"no local time after {window.start} exists on {day} in {window.time_zone}")


def openings(windows: Sequence[MaintenanceWindow], moment: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Every window's (start, end) in UTC, from the one open at `moment` on, in start order."""
    found: list[tuple[datetime, datetime]] = []
    for window in windows:
        zone = ZoneInfo(window.time_zone)
        local_today = moment.astimezone(zone).date()
        for offset in range(-1, SEARCH_DAYS):
            day = local_today + timedelta(days=offset)
            if WEEKDAYS[day.weekday()] not in window.days:
                continue
            start = _start_of(window, day, zone)
            end = start + timedelta(minutes=window.duration_minutes)
            if end > moment:
                found.append((start, end))
    yield from sorted(found)


def window_verdict(windows: Sequence[MaintenanceWindow], moment: datetime, needed_seconds: float) -> Verdict:
    """Go if a window is open and the operation fits what is left of it; else wait for the first it fits."""
    needed = timedelta(seconds=needed_seconds)
    for start, end in openings(windows, moment):
        # Woken at the opening, an operation that fits the whole window is a few seconds late: it still fits.
        begin = start if start <= moment <= start + OPENING_GRACE else max(start, moment)
        if begin + needed <= end:
            if start <= moment:
                return GO
            return Verdict(
                go=False,
                reason=WAITING_FOR_WINDOW,
                starts_at=start,
                message=f"waiting for the maintenance window that opens at {stamp_of(start)}",
            )
    longest = max(w.duration_minutes for w in windows)
    return Verdict(
        go=False,
        fail=True,
        reason="NoWindowFits",
        message=f"its predicted duration ({needed_seconds:.0f}s, the worst of its recent runs) fits no maintenance "
        f"window (the longest is {longest} min): nothing was changed (widen a window, or "
        "spec.override.maintenanceWindow with a reason)",
    )


def stamp_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decide(
    now: datetime,
    spec: OperationSpec,
    policy: OperationPolicy | None,
    facts: Facts,
    *,
    target_kind: str,
    approved: bool,
) -> Verdict:
    """The verdict on starting now, by the rules above."""
    override = spec.override
    budget, _ = budget_of(spec, policy, target_kind)
    expected = facts.predicted_downtime if facts.has_downtime else None
    broken = over_budget(budget, expected, waived=bool(override and override.downtime_budget))
    if broken:
        return Verdict(go=False, fail=True, reason="DowntimeBudget", message=broken)
    needs_approval = bool(policy and policy.require_approval) and (facts.stops_service or bool(facts.irreversible))
    if needs_approval and not approved:
        why = "stops the service" if facts.stops_service else "cannot be undone (" + "; ".join(facts.irreversible) + ")"
        return Verdict(
            go=False,
            reason=AWAITING_APPROVAL,
            message=f"awaiting approval of plan {facts.digest}: it {why}; kubectl bosun approve op/<name>",
        )
    if spec.not_before:
        try:
            earliest = datetime.fromisoformat(spec.not_before.replace("Z", "+00:00"))
        except ValueError:
            message = f"spec.notBefore {spec.not_before!r} is no time (RFC 3339): nothing was changed"
            return Verdict(go=False, fail=True, reason="InvalidSpec", message=message)
        if now < earliest:
            return Verdict(
                go=False,
                reason=NOT_BEFORE,
                starts_at=earliest,
                message=f"waiting until {stamp_of(earliest)} (notBefore)",
            )
    windows = (policy.maintenance_windows or []) if policy else []
    if windows and facts.stops_service and not (override and override.maintenance_window):
        needed = (facts.predicted_duration.worst_seconds or 0.0) if facts.predicted_duration.runs else 0.0
        return window_verdict(windows, now, needed)
    return GO
