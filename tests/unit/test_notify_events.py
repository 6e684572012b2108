"""Which events an Operation has had, and what a receiver is sent about them (pure)."""

from __future__ import annotations

import json
from typing import Any

from bosun.models.notifier import EventKind, NotifierFormat, NotifierSpec, NotifierStatus
from bosun.models.operation import Operation
from bosun.notify.events import body_and_headers, events_of, verify
from bosun.notify.service import Notifier, entry


def operation(**status: Any) -> Operation:
    return Operation.of(
        {
            "metadata": {
                "name": "pg-restart",
                "namespace": "shop",
                "uid": "u-1",
                "creationTimestamp": "2026-12-06T10:00:00Z",
            },
            "spec": {"target": {"kind": "Database", "name": "pg"}, "type": "restart"},
            "status": status,
        }
    )


def kinds(op: Operation) -> list[EventKind]:
    return [e.kind for e in events_of(op)]


def test_events_follow_the_operation_and_waits_are_told_only_while_true() -> None:
    assert kinds(operation()) == [EventKind.CREATED]
    waiting = operation(phase="Pending", reason="WaitingForWindow", startsAt="2026-12-13T01:00:00Z")
    assert kinds(waiting) == [EventKind.CREATED, EventKind.WAITING_FOR_WINDOW]
    approval = operation(phase="Pending", reason="AwaitingApproval", approval={"plan": "abc"})
    assert kinds(approval) == [EventKind.CREATED, EventKind.AWAITING_APPROVAL]
    ended = operation(
        phase="Failed",
        startedAt="2026-12-06T10:00:01Z",
        finishedAt="2026-12-06T10:00:09Z",
        rollback={"state": "Succeeded", "undone": ["stop"]},
    )
    # The wait is over: no stale "waiting" event for an operation that has since ended.
    assert kinds(ended) == [EventKind.CREATED, EventKind.STARTED, EventKind.ROLLING_BACK, EventKind.ENDED]
    refused = operation(phase="Failed", finishedAt="2026-12-06T10:00:01Z", rollback={"state": "NotNeeded"})
    assert kinds(refused) == [EventKind.CREATED, EventKind.ENDED]  # nothing was changed: nothing rolled back


def test_an_events_id_is_the_same_in_every_retry_and_a_new_wait_is_a_new_event() -> None:
    first = operation(phase="Pending", reason="WaitingForWindow", startsAt="2026-12-13T01:00:00Z")
    again = operation(phase="Pending", reason="WaitingForWindow", startsAt="2026-12-13T01:00:00Z")
    moved = operation(phase="Pending", reason="WaitingForWindow", startsAt="2026-12-20T01:00:00Z")
    assert [e.id for e in events_of(first)] == [e.id for e in events_of(again)]
    assert events_of(first)[1].id != events_of(moved)[1].id
    assert entry("ops", events_of(first)[0]) == "ops/created"


def notifier(created: str, events: list[str] | None = None) -> Notifier:
    spec = NotifierSpec.model_validate({"url": "http://hooks.example/x", **({"events": events} if events else {})})
    return Notifier("ops", spec, NotifierStatus(), created=created)


def test_a_new_notifier_hears_of_what_happens_from_its_creation_and_of_waits_still_going_on() -> None:
    ended = operation(phase="Succeeded", startedAt="2026-12-06T10:00:01Z", finishedAt="2026-12-06T10:00:09Z")
    created = ended.created  # 10:00:00, the API server's clock

    def told(op: Operation, since: str, events: list[str] | None = None) -> set[EventKind]:
        now = op.status.rollback is not None and op.status.rollback.state.value == "Running"
        return {e.kind for e in events_of(op) if notifier(since, events).hears_of(e, created, now)}

    assert told(ended, "2026-12-06T10:00:05Z") == {EventKind.ENDED}  # not its creation or start: before it existed
    assert told(ended, "2026-12-06T10:00:00Z") == set(kinds(ended))  # made in the Notifier's second: all of it
    assert not told(ended, "2026-12-06T11:00:00Z")  # no history flood
    # An operation created after the Notifier is told whole, whatever the operator's clock wrote.
    skewed = operation(phase="Succeeded", startedAt="2026-12-06T09:59:58Z", finishedAt="2026-12-06T09:59:59Z")
    assert told(skewed, "2026-12-06T10:00:00Z") == set(kinds(skewed))
    waiting = operation(phase="Pending", reason="AwaitingApproval", approval={"plan": "abc"})
    assert told(waiting, "2026-12-06T11:00:00Z") == {EventKind.AWAITING_APPROVAL}  # still waiting: news now
    rolling = operation(phase="Running", startedAt="2026-12-06T10:00:01Z", rollback={"state": "Running"})
    assert told(rolling, "2026-12-06T11:00:00Z") == {EventKind.ROLLING_BACK}
    rolled = operation(
        phase="Failed",
        startedAt="2026-12-06T10:00:01Z",
        finishedAt="2026-12-06T10:00:09Z",
        rollback={"state": "Succeeded"},
    )
    assert not told(rolled, "2026-12-06T11:00:00Z")  # a rollback that is over is history: not told
    assert told(ended, "2026-12-06T10:00:00Z", ["Ended"]) == {EventKind.ENDED}


def test_a_cloudevent_is_structured_json_with_the_operation_as_it_is_now_and_signed() -> None:
    ended = operation(
        phase="Succeeded",
        message="succeeded",
        startedAt="2026-12-06T10:00:01Z",
        finishedAt="2026-12-06T10:00:09Z",
        downtime={"budgetSeconds": 30, "measuredSeconds": 4.5, "withinBudget": True},
        rollback={"state": "NotNeeded"},
    )
    started = events_of(ended)[1]
    body, headers = body_and_headers(started, ended, NotifierFormat.CLOUDEVENTS, b"s3cret")
    event: dict[str, Any] = json.loads(body)
    assert {k: event[k] for k in ("specversion", "id", "type", "time", "datacontenttype")} == {
        "specversion": "1.0",
        "id": "u-1:started",
        "type": "dev.bosun.operation.started",
        "time": "2026-12-06T10:00:01Z",
        "datacontenttype": "application/json",
    }
    assert event["source"] == "/apis/bosun.dev/v1alpha1/namespaces/shop/operations/pg-restart"
    # Sent late, "started" still says where the operation is now: never a stale payload.
    assert event["data"]["phase"] == "Succeeded" and event["data"]["downtime"]["measuredSeconds"] == 4.5
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    assert headers["Idempotency-Key"] == "u-1:started"
    assert verify(body, headers["X-Bosun-Signature"], b"s3cret")
    assert not verify(body + b" ", headers["X-Bosun-Signature"], b"s3cret")
    assert not verify(body, headers["X-Bosun-Signature"], b"other")


def test_event_types_are_dotted_lowercase() -> None:
    waiting = operation(phase="Pending", reason="WaitingForWindow", startsAt="2026-12-13T01:00:00Z")
    body, _ = body_and_headers(events_of(waiting)[1], waiting, NotifierFormat.CLOUDEVENTS, None)
    assert json.loads(body)["type"] == "dev.bosun.operation.waiting-for-window"


def test_a_slack_message_says_what_happened_and_where_it_is_now() -> None:
    approval = operation(phase="Pending", reason="AwaitingApproval", approval={"plan": "abc"}, message="awaiting")
    body, headers = body_and_headers(events_of(approval)[1], approval, NotifierFormat.SLACK, None)
    text = json.loads(body)["text"]
    assert "kubectl bosun approve op/pg-restart" in text and "Database shop/pg" in text
    assert "X-Bosun-Signature" not in headers and headers["Idempotency-Key"].endswith("awaiting-approval:abc")
