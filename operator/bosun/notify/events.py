"""Which events an Operation has had, and the bodies that tell a receiver about them (no I/O).

Why events are derived from the Operation's status and not queued as they happen: the status is
what survives the operator dying. An operator SIGKILLed between an operation's end and its
notification finds, on restart, an operation that has ended and an `Ended` event not in its
`status.notified`: it sends it then. Nothing else needs to be kept.

Why the payload is built when it is sent, from the Operation as it is then: a receiver that was
down for a minute gets `Started` late, but its `data` says where the operation is *now* (its phase,
rollback, downtime), never what it was a minute ago (argo-rollouts #3535's stale payloads). The
event's own `time` is when it happened. Events that are no longer true when they could be sent (a
wait for a window that is over) are not sent at all.

Delivery is at least once: each event has an id stable across retries and restarts (the
operation's uid and the event), sent as the CloudEvents `id` and as `Idempotency-Key`, so a
receiver drops what it has seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from bosun.models.names import AWAITING_APPROVAL, WAITING_FOR_WINDOW
from bosun.models.notifier import EventKind, NotifierFormat
from bosun.models.operation import Operation, Phase, RollbackState

TYPE_PREFIX = "dev.bosun.operation."


@dataclass(frozen=True)
class Event:
    kind: EventKind
    id: str  # stable: the same event has the same id in every retry and every process
    time: str  # when it happened


def events_of(operation: Operation) -> list[Event]:
    """The events the operation has had that are still worth telling, in the order they happened."""
    status = operation.status
    uid = operation.uid
    found = [Event(EventKind.CREATED, f"{uid}:created", operation.created)]
    if status.phase is Phase.PENDING and status.reason == WAITING_FOR_WINDOW:
        found.append(
            Event(EventKind.WAITING_FOR_WINDOW, f"{uid}:waiting-for-window:{status.starts_at}", operation.created)
        )
    if status.phase is Phase.PENDING and status.reason == AWAITING_APPROVAL and status.approval:
        found.append(
            Event(EventKind.AWAITING_APPROVAL, f"{uid}:awaiting-approval:{status.approval.plan}", operation.created)
        )
    if status.started_at:
        found.append(Event(EventKind.STARTED, f"{uid}:started", status.started_at))
    rollback = status.rollback
    if rollback is not None and rollback.state in (
        RollbackState.RUNNING,
        RollbackState.SUCCEEDED,
        RollbackState.FAILED,
    ):
        found.append(
            Event(EventKind.ROLLING_BACK, f"{uid}:rolling-back", status.finished_at or status.started_at or "")
        )
    if status.phase.finished:
        found.append(Event(EventKind.ENDED, f"{uid}:ended", status.finished_at or ""))
    return found


def data_of(operation: Operation) -> dict[str, Any]:
    """What a receiver learns of the operation: as it is at the moment of sending."""
    status = operation.status
    data: dict[str, Any] = {
        "namespace": operation.namespace,
        "operation": operation.name,
        "uid": operation.uid,
        "type": operation.spec.type.value,
        "target": {"kind": operation.spec.target.kind.value, "name": operation.spec.target.name},
        "phase": status.phase.value,
        "reason": status.reason,
        "message": status.message,
        "progress": status.progress,
        "initiator": status.initiator.username if status.initiator else "",
        "startedAt": status.started_at,
        "finishedAt": status.finished_at,
        "startsAt": status.starts_at,
        "rollback": status.rollback.wire() if status.rollback else None,
        "downtime": status.downtime.wire() if status.downtime else None,
        "approval": status.approval.wire() if status.approval else None,
    }
    return {k: v for k, v in data.items() if v not in (None, "")}


def cloudevent(event: Event, operation: Operation) -> dict[str, Any]:
    """The event in CloudEvents 1.0 structured mode (JSON)."""
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": f"/apis/bosun.dev/v1alpha1/namespaces/{operation.namespace}/operations/{operation.name}",
        "type": TYPE_PREFIX + _dotted(event.kind),
        "subject": f"{operation.spec.target.kind.value}/{operation.spec.target.name}",
        "time": event.time or None,
        "datacontenttype": "application/json",
        "data": data_of(operation),
    }


def _dotted(kind: EventKind) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(kind.value))


def slack_text(event: Event, operation: Operation) -> str:
    status = operation.status
    target = f"{operation.spec.target.kind.value} {operation.namespace}/{operation.spec.target.name}"
    head = f"*{operation.spec.type.value}* of {target} (`{operation.name}`)"
    words = {
        EventKind.CREATED: "created",
        EventKind.WAITING_FOR_WINDOW: f"waits for its maintenance window ({status.starts_at})",
        EventKind.AWAITING_APPROVAL: "awaits approval: `kubectl bosun approve op/" + operation.name + "`",
        EventKind.STARTED: "started",
        EventKind.ROLLING_BACK: "is rolling back",
        EventKind.ENDED: f"ended {status.phase.value}",
    }[event.kind]
    now = f" Now {status.phase.value}: {status.message}" if status.message else f" Now {status.phase.value}."
    return f"{head} {words}.{now}"


def body_and_headers(
    event: Event, operation: Operation, format_: NotifierFormat, secret: bytes | None
) -> tuple[bytes, dict[str, str]]:
    """What to POST: the body, and its headers (content type, idempotency key, signature)."""
    if format_ is NotifierFormat.SLACK:
        body = json.dumps({"text": slack_text(event, operation)}).encode()
        headers = {"Content-Type": "application/json"}
    else:
        body = json.dumps(cloudevent(event, operation), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
    headers["Idempotency-Key"] = event.id
    if secret:
        headers["X-Bosun-Signature"] = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return body, headers


def verify(body: bytes, signature: str, secret: bytes) -> bool:
    """What a receiver does with X-Bosun-Signature (and what the tests do)."""
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
