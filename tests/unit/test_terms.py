"""The decision to start an operation under its target's terms: budgets, approval, notBefore, windows.

Windows are tested on the nights clocks change (Europe/Paris: 2026-03-29 forward, 2026-10-25 back),
where a person's "Sunday 02:30 for two hours" must still mean something.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bosun.engine import terms
from bosun.models.names import AWAITING_APPROVAL, NOT_BEFORE, WAITING_FOR_WINDOW
from bosun.models.operation import OperationSpec
from bosun.models.terms import MaintenanceWindow, OperationPolicy


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def window(days: list[str], start: str, minutes: int, zone: str = "UTC") -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(
        {"days": days, "start": start, "durationMinutes": minutes, "timeZone": zone}
    )


def facts(
    *, downtime: list[float] | None = None, durations: list[float] | None = None, stops: bool = True
) -> terms.Facts:
    from bosun.engine.dryrun import estimate

    return terms.Facts(
        stops_service=stops,
        has_downtime=stops,
        irreversible=(),
        predicted_downtime=estimate(downtime or []) if stops else None,
        predicted_duration=estimate(durations or []),
        digest="abc123",
        summary="move db to node b",
    )


def spec(**extra: object) -> OperationSpec:
    return OperationSpec.model_validate({"target": {"kind": "Database", "name": "db"}, "type": "restart", **extra})


SUNDAY_NIGHT = [window(["Sun"], "02:00", 120, "Europe/Paris")]


def test_an_open_window_lets_an_operation_start_that_fits_what_is_left() -> None:
    # Sunday 2026-12-06 02:30 Paris (01:30 UTC): 90 minutes left.
    verdict = terms.window_verdict(SUNDAY_NIGHT, at("2026-12-06T02:30:00+01:00"), needed_seconds=600)
    assert verdict.go


def test_an_operation_that_does_not_fit_what_is_left_waits_for_the_next_window() -> None:
    verdict = terms.window_verdict(SUNDAY_NIGHT, at("2026-12-06T03:55:00+01:00"), needed_seconds=600)
    assert not verdict.go and not verdict.fail
    assert verdict.reason == WAITING_FOR_WINDOW
    assert verdict.starts_at == at("2026-12-13T02:00:00+01:00")


def test_outside_a_window_it_waits_for_the_next_opening() -> None:
    verdict = terms.window_verdict(SUNDAY_NIGHT, at("2026-12-08T12:00:00+01:00"), needed_seconds=0)
    assert verdict.starts_at == at("2026-12-13T02:00:00+01:00")
    assert "2026-12-13T01:00:00Z" in verdict.message


def test_an_operation_longer_than_every_window_fails_at_once_rather_than_waiting_forever() -> None:
    verdict = terms.window_verdict(SUNDAY_NIGHT, at("2026-12-08T12:00:00+01:00"), needed_seconds=3 * 3600)
    assert verdict.fail and verdict.reason == "NoWindowFits"
    assert "120 min" in verdict.message


def test_a_window_started_yesterday_that_spans_midnight_is_open_now() -> None:
    late = [window(["Sat"], "23:00", 180)]
    assert terms.window_verdict(late, at("2026-12-06T01:00:00+00:00"), needed_seconds=60).go


def test_spring_forward_a_skipped_start_opens_when_the_clocks_jump() -> None:
    # 2026-03-29: Paris clocks go from 02:00 CET to 03:00 CEST; 02:30 does not exist that night.
    skipped = [window(["Sun"], "02:30", 60, "Europe/Paris")]
    start, end = next(terms.openings(skipped, at("2026-03-28T12:00:00+00:00")))
    assert start == at("2026-03-29T03:00:00+02:00")  # 01:00 UTC, the moment of the jump
    assert end - start == timedelta(minutes=60)  # length is elapsed time


def test_spring_forward_the_window_keeps_its_elapsed_length() -> None:
    start, end = next(terms.openings(SUNDAY_NIGHT, at("2026-03-28T12:00:00+00:00")))
    assert start == at("2026-03-29T03:00:00+02:00")  # 02:00 is the first minute the clocks skip
    assert (end - start) == timedelta(minutes=120)


def test_fall_back_a_repeated_start_opens_the_first_time() -> None:
    # 2026-10-25: Paris clocks go from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
    repeated = [window(["Sun"], "02:30", 60, "Europe/Paris")]
    start, _ = next(terms.openings(repeated, at("2026-10-24T12:00:00+00:00")))
    assert start == at("2026-10-25T02:30:00+02:00")  # 00:30 UTC, the first 02:30


def test_across_the_change_the_same_local_time_is_a_different_utc_time() -> None:
    evening = [window(["Sat", "Sun"], "20:00", 60, "Europe/Paris")]
    found = [s for s, _ in terms.openings(evening, at("2026-10-24T12:00:00+00:00"))][:2]
    assert found == [at("2026-10-24T20:00:00+02:00"), at("2026-10-25T20:00:00+01:00")]
    assert found[0].hour == 18 and found[1].hour == 19


def test_over_budget_fails_before_anything_changes_and_says_by_how_much() -> None:
    policy = OperationPolicy(max_downtime_seconds=5)
    verdict = terms.decide(
        at("2026-12-06T12:00:00+00:00"),
        spec(),
        policy,
        facts(downtime=[3, 4, 9]),
        target_kind="Database",
        approved=False,
    )
    assert verdict.fail and verdict.reason == "DowntimeBudget"
    assert "up to 9.0s" in verdict.message and "budget of 5s" in verdict.message and "3 runs" in verdict.message


def test_the_operation_budget_wins_over_the_targets() -> None:
    budget, source = terms.budget_of(spec(maxDowntimeSeconds=30), OperationPolicy(max_downtime_seconds=5), "Database")
    assert (budget, source) == (30, "Operation")
    assert terms.budget_of(spec(), OperationPolicy(max_downtime_seconds=5), "Database") == (5, "Database")
    assert terms.budget_of(spec(), None, "Database") == (None, "")


def test_no_history_no_refusal_and_a_waived_budget_runs() -> None:
    policy = OperationPolicy(max_downtime_seconds=5)
    now = at("2026-12-06T12:00:00+00:00")
    assert terms.decide(now, spec(), policy, facts(downtime=[]), target_kind="Database", approved=False).go
    waived = spec(override={"downtimeBudget": True, "reason": "incident 42"})
    assert terms.decide(now, waived, policy, facts(downtime=[60]), target_kind="Database", approved=False).go


def test_an_operation_without_downtime_is_never_held_by_budget_or_window() -> None:
    policy = OperationPolicy(max_downtime_seconds=0, maintenance_windows=SUNDAY_NIGHT, require_approval=True)
    verdict = terms.decide(
        at("2026-12-08T12:00:00+00:00"), spec(), policy, facts(stops=False), target_kind="App", approved=False
    )
    assert verdict.go


def test_approval_comes_before_the_window_so_approvers_see_it_first() -> None:
    policy = OperationPolicy(maintenance_windows=SUNDAY_NIGHT, require_approval=True)
    now = at("2026-12-08T12:00:00+00:00")
    first = terms.decide(now, spec(), policy, facts(), target_kind="Database", approved=False)
    assert first.reason == AWAITING_APPROVAL and "abc123" in first.message
    then = terms.decide(now, spec(), policy, facts(), target_kind="Database", approved=True)
    assert then.reason == WAITING_FOR_WINDOW


def test_not_before_holds_then_lets_go() -> None:
    later = spec(notBefore="2026-12-06T13:00:00Z")
    held = terms.decide(at("2026-12-06T12:00:00+00:00"), later, None, facts(), target_kind="Database", approved=False)
    assert held.reason == NOT_BEFORE and held.starts_at == at("2026-12-06T13:00:00+00:00")
    assert terms.decide(
        at("2026-12-06T13:00:01+00:00"), later, None, facts(), target_kind="Database", approved=False
    ).go


def test_an_emergency_override_starts_outside_the_window() -> None:
    policy = OperationPolicy(maintenance_windows=SUNDAY_NIGHT)
    urgent = spec(override={"maintenanceWindow": True, "reason": "disk full"})
    assert terms.decide(
        at("2026-12-08T12:00:00+00:00"), urgent, policy, facts(), target_kind="Database", approved=False
    ).go


def test_the_plan_digest_changes_with_the_plan() -> None:
    one = terms.plan_digest("database-move", '{"node":"a"}', "redeploy", {}, "uid", 3)
    assert one == terms.plan_digest("database-move", '{"node":"a"}', "redeploy", {}, "uid", 3)
    assert one != terms.plan_digest("database-move", '{"node":"b"}', "redeploy", {}, "uid", 3)
    assert one != terms.plan_digest("database-move", '{"node":"a"}', "redeploy", {}, "uid", 4)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_the_admitted_time_zones_are_the_ones_the_operator_can_load(zone: str) -> None:
    from zoneinfo import ZoneInfo

    from bosun.models.terms import time_zones

    assert zone in time_zones()
    ZoneInfo(zone)


class Held:
    """The live Operation as the hold sees it: its spec and the annotations the API server stamped."""

    def __init__(self, spec: dict[str, object], annotations: dict[str, str]) -> None:
        self.body = {"spec": spec, "metadata": {"annotations": annotations}}

    def cancel_requested(self) -> bool:
        return False

    def cancelled_by(self) -> str:
        return ""

    async def save(self, status: object) -> None:
        return None


def test_an_approval_counts_only_for_the_plan_it_names_and_only_with_the_stamped_approver() -> None:
    from bosun.engine.holds import note_terms
    from bosun.models.names import APPROVED_BY
    from bosun.models.operation import OperationStatus

    policy = OperationPolicy(require_approval=True)
    base = {"target": {"kind": "Database", "name": "db"}, "type": "restart"}
    status = OperationStatus()
    unapproved = Held(base, {})
    assert not note_terms(status, spec(), policy, facts(), unapproved, "Database")
    assert status.approval is not None and status.approval.plan == "abc123"

    other_plan = Held({**base, "approval": {"plan": "old"}}, {APPROVED_BY: "carol"})
    assert not note_terms(
        status, OperationSpec.model_validate(other_plan.body["spec"]), policy, facts(), other_plan, "Database"
    )

    unstamped = Held({**base, "approval": {"plan": "abc123"}}, {})  # the admission policy did not run
    assert not note_terms(
        status, OperationSpec.model_validate(unstamped.body["spec"]), policy, facts(), unstamped, "Database"
    )

    given = Held({**base, "approval": {"plan": "abc123"}}, {APPROVED_BY: "carol"})
    assert note_terms(status, OperationSpec.model_validate(given.body["spec"]), policy, facts(), given, "Database")
    assert status.approval.approved_by == "carol" and status.approval.approved_at

    changed = terms.Facts(**{**facts().__dict__, "digest": "def456"})  # the target changed: a new plan
    assert not note_terms(status, OperationSpec.model_validate(given.body["spec"]), policy, changed, given, "Database")
    assert status.approval.plan == "def456" and not status.approval.approved_by


def test_the_dashboard_says_why_an_operation_waits_and_what_its_terms_were() -> None:
    from bosun.cli.pages import terms_facts, waiting_words

    status = {
        "phase": "Pending",
        "reason": "WaitingForWindow",
        "startsAt": "2026-12-13T01:00:00Z",
        "downtime": {"budgetSeconds": 30, "budgetFrom": "Database", "predictedSeconds": 4.2},
        "approval": {"plan": "abc123", "approvedBy": "carol"},
        "override": {"waived": ["DowntimeBudget"], "by": "dave", "reason": "incident <42>"},
    }
    assert waiting_words(status) == "WaitingForWindow until 2026-12-13T01:00:00Z"
    shown = dict((k, v) for k, v in terms_facts(status))
    assert shown["waiting"] == "WaitingForWindow until 2026-12-13T01:00:00Z"
    assert "budget 30 s (Database)" in shown["downtime terms"] and "predicted up to 4.2 s" in shown["downtime terms"]
    assert shown["approval"] == "plan abc123: approved by carol"
    assert "incident &lt;42&gt;" in shown["override"]  # escaped
    assert waiting_words({**status, "phase": "Running"}) == ""


def test_a_not_before_that_is_no_time_fails_clearly_rather_than_breaking() -> None:
    odd = spec(notBefore="2026-12-06T25:61:00Z")
    verdict = terms.decide(at("2026-12-06T12:00:00+00:00"), odd, None, facts(), target_kind="Database", approved=False)
    assert verdict.fail and verdict.reason == "InvalidSpec" and "RFC 3339" in verdict.message


def test_a_target_whose_operation_waits_stays_ready_and_says_why_it_reconciles() -> None:
    from bosun.engine.target import target_conditions
    from bosun.models.operation import Operation

    waiting = Operation.of(
        {
            "metadata": {"name": "pg-restart", "namespace": "shop"},
            "spec": {"target": {"kind": "Database", "name": "pg"}, "type": "restart"},
            "status": {"phase": "Pending", "reason": "WaitingForWindow", "message": "waiting for the window"},
        }
    )
    shown = {c.type: c for c in target_conditions(waiting, waiting.status, [], "2026-12-06T10:00:00Z", serving=True)}
    assert (shown["Ready"].status.value, shown["Reconciling"].status.value) == ("True", "True")
    assert shown["Reconciling"].reason == "WaitingForWindow" and "has not started" in shown["Reconciling"].message
    from bosun.models.operation import Phase

    running = waiting.status.model_copy(update={"phase": Phase.RUNNING, "reason": ""})
    shown = {c.type: c for c in target_conditions(waiting, running, [], "2026-12-06T10:00:00Z", serving=True)}
    assert shown["Ready"].status.value == "False"  # once it runs, it may stop what serves


def test_the_approved_plan_does_not_change_when_only_the_targets_terms_do() -> None:
    from bosun.engine.holds import digest_of
    from bosun.engine.steps import StepTable, no_side_effect
    from bosun.models.operation import Operation

    async def nothing(_: object) -> None:
        return None

    table: StepTable[object] = StepTable("t", [no_side_effect("s", "does nothing", nothing)], downtime_steps=("s",))
    operation = Operation.of(
        {"metadata": {"name": "op"}, "spec": {"target": {"kind": "Database", "name": "pg"}, "type": "restart"}}
    )

    def target(policy: dict[str, object], version: str = "16") -> dict[str, object]:
        return {"metadata": {"uid": "u"}, "spec": {"version": version, "operationPolicy": policy}}

    def decision(policy: dict[str, object], version: str = "16") -> str:
        return '{"table": "t", "next": ' + json.dumps({"version": version, "operationPolicy": policy}) + "}"

    first = digest_of(table, decision({"requireApproval": True}), operation, target({"requireApproval": True}))
    window = {"requireApproval": True, "maintenanceWindows": [{"days": ["Sun"]}]}
    assert digest_of(table, decision(window), operation, target(window)) == first
    assert digest_of(table, decision(window, "17"), operation, target(window, "17")) != first


def test_woken_a_few_seconds_after_the_opening_an_operation_that_fits_the_whole_window_still_starts() -> None:
    exact = [window(["Sun"], "02:00", 60, "UTC")]
    assert terms.window_verdict(exact, at("2026-12-06T02:00:03+00:00"), needed_seconds=3600).go
    late = terms.window_verdict(exact, at("2026-12-06T02:05:00+00:00"), needed_seconds=3600)
    assert late.reason == WAITING_FOR_WINDOW and late.starts_at == at("2026-12-13T02:00:00+00:00")


def holds(**options: object) -> object:
    from bosun.engine.holds import Holds

    return Holds(None, None, **options)  # type: ignore[arg-type]


def test_an_approval_is_refused_when_no_admission_policy_stamps_who_gave_it() -> None:
    from bosun.models.operation import Operation, OperationStatus

    operation = Operation.of(
        {"metadata": {"name": "op", "creationTimestamp": "2026-12-06T10:00:00Z"}, "spec": spec().wire()}
    )
    awaiting = terms.Verdict(go=False, reason=AWAITING_APPROVAL, message="awaiting approval")
    bounded = holds(stamps_trusted=False)._bounded(awaiting, operation, OperationStatus(), None, facts())  # type: ignore[attr-defined]
    assert bounded.fail and bounded.reason == "ApprovalUnverifiable" and "admissionPolicies.enabled" in bounded.message
    trusted = holds()._bounded(awaiting, operation, OperationStatus(), None, facts())  # type: ignore[attr-defined]
    assert trusted is awaiting


def test_a_hold_that_would_outlast_its_limit_ends_rather_than_wedging_the_queue() -> None:
    from bosun.models.operation import Operation, OperationStatus

    operation = Operation.of(
        {
            "metadata": {"name": "op", "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": spec().wire(),
        }
    )
    far = terms.Verdict(go=False, reason=NOT_BEFORE, starts_at=datetime.now(UTC) + timedelta(days=400), message="later")
    ended = holds()._bounded(far, operation, OperationStatus(), None, facts())  # type: ignore[attr-defined]
    assert ended.fail and ended.reason == "HeldTooLong" and "nothing was changed" in ended.message
    near = terms.Verdict(go=False, reason=NOT_BEFORE, starts_at=datetime.now(UTC) + timedelta(days=3), message="soon")
    assert holds()._bounded(near, operation, OperationStatus(), None, facts()) is near  # type: ignore[attr-defined]


def test_without_the_admission_policies_an_override_is_not_honoured() -> None:
    from bosun.engine.holds import verifiable

    waived = spec(override={"maintenanceWindow": True, "reason": "mine"})
    assert verifiable(waived, stamps_trusted=True).override is not None
    assert verifiable(waived, stamps_trusted=False).override is None
    policy = OperationPolicy(maintenance_windows=SUNDAY_NIGHT)
    unverified = verifiable(waived, stamps_trusted=False)
    held = terms.decide(
        at("2026-12-08T12:00:00+00:00"), unverified, policy, facts(), target_kind="Database", approved=False
    )
    assert held.reason == WAITING_FOR_WINDOW
