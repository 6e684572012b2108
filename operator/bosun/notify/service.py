"""Delivers each Operation's events to its namespace's Notifiers: at least once, never in its way.

How it keeps its promises:
- **Never blocks or slows an operation.** The watch of Operations hands every change to `saw`,
  which only records the body and makes sure a delivery task runs for that operation; the
  operation's own driver never waits on a receiver. Only archiving an ended operation waits for
  its last events (`settle`), so that a record does not leave the watch with an event unsent.
- **At least once.** What was delivered is recorded in the Operation's `status.notified` (only
  Bosun writes status); an event whose delivery was not recorded is sent again, with the same id.
- **Retried with backoff** (1 s doubling to a minute) while a receiver fails; a failing Notifier's
  later events wait behind its first (a receiver sees them in order), another Notifier's do not.
  After `give_up_seconds` of failing an event is given up, counted in the Notifier's status and a
  metric, and recorded so it is not retried forever.
- **Loud when failing.** The Notifier's `Delivering` condition turns False with the error on the
  first failure and True again on the next success; `bosun_notifications_total{outcome}` counts.
- **One receiver down delays, never stops, another's events**: deliveries of one operation go one
  request at a time (10 s timeout), and its retry waits apply to all its pending events.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bosun import metrics
from bosun.engine.conditions import set_condition
from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube
from bosun.kube_status import StatusWrites
from bosun.models.base import parse_time, stamp
from bosun.models.notifier import EventKind, NotifierSpec, NotifierStatus
from bosun.models.operation import Operation, RollbackState
from bosun.notify.events import Event, body_and_headers, events_of

logger = logging.getLogger(__name__)

# Events that say what is going on now: told to a Notifier made while they go on.
ONGOING = frozenset({EventKind.WAITING_FOR_WINDOW, EventKind.AWAITING_APPROVAL})  # listed only while true
GIVEN_UP = "given-up:"  # prefix of a status.notified entry for an event that was never delivered


@dataclass
class Notifier:
    name: str
    spec: NotifierSpec
    status: NotifierStatus
    created: str = ""  # its creationTimestamp: it hears of what happens from then on

    def hears_of(self, event: Event, operation_created: str, rolling_back: bool = False) -> bool:
        """Whether this Notifier is told of this event: one it asked for, and not older than itself.

        A new Notifier is not sent the namespace's history: every operation still in the watch
        (until archived) would otherwise be told to it at its next change or the operator's next
        start. Every event of an operation created since the Notifier is told (both creation times
        are the API server's, so the operator's clock cannot make it miss one); of an older
        operation, the events from the Notifier's second on (times the operator wrote). A wait or a
        rollback still going on is told whenever it began: it is news to whoever is now listening;
        a rollback that is over is not.
        """
        wanted = set(self.spec.events or [])
        if wanted and event.kind not in wanted:
            return False
        if not self.created or event.kind in ONGOING or (event.kind is EventKind.ROLLING_BACK and rolling_back):
            return True
        since = parse_time(self.created)
        if operation_created and parse_time(operation_created) >= since:
            return True
        return not event.time or parse_time(event.time) >= since


def entry(notifier: str, event: Event) -> str:
    """The status.notified entry of one event sent to one Notifier (the uid is the object's own)."""
    return f"{notifier}/{event.id.split(':', 1)[1]}"


@dataclass
class _Failing:
    since: float
    error: str = ""


@dataclass
class _Operation:
    body: Mapping[str, Any]
    failing: dict[str, _Failing] = field(default_factory=dict)  # entry -> first failure


class Notifications:
    def __init__(
        self,
        kube: Kube,
        *,
        retry_first_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
        give_up_seconds: float = 3600.0,
        request_timeout_seconds: float = 10.0,
    ) -> None:
        self.kube = kube
        self.writes = StatusWrites(kube)
        self.retry_first_seconds = retry_first_seconds
        self.retry_max_seconds = retry_max_seconds
        self.give_up_seconds = give_up_seconds
        self.request_timeout = aiohttp.ClientTimeout(total=request_timeout_seconds)
        self._operations: dict[str, _Operation] = {}
        # Per operation: what this process delivered (or gave up), kept until the operation leaves
        # the watch. The next watch event may predate the status write that records it.
        self._sent: dict[str, set[str]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        # Kopf's index of Notifiers by namespace (kept by its watch; set by the handlers): no request per look.
        self.notifiers: Mapping[str, Iterable[Mapping[str, Any]]] = {}
        self._delivering: dict[tuple[str, str], bool] = {}  # the Delivering condition as last written
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def forget(self, body: Mapping[str, Any]) -> None:
        """The operation left the watch (archived or deleted): nothing more to send for it."""
        self._sent.pop(str((body.get("metadata") or {}).get("uid") or ""), None)

    def saw(self, body: Mapping[str, Any]) -> None:
        """An Operation changed: make sure its new events get delivered (returns at once)."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid or (body.get("spec") or {}).get("dryRun"):
            return
        known = self._operations.get(uid)
        if known is None:
            self._operations[uid] = _Operation(body)
        else:
            known.body = body
        worker = self._workers.get(uid)
        if worker is None or worker.done():
            self._workers[uid] = asyncio.get_running_loop().create_task(self._work(uid))

    async def settle(self, body: Mapping[str, Any]) -> None:
        """For an ended operation: return once every event is delivered or given up."""
        self.saw(body)
        uid = str((body.get("metadata") or {}).get("uid") or "")
        worker = self._workers.get(uid)
        if worker is not None:
            await asyncio.shield(worker)

    async def _work(self, uid: str) -> None:
        delay = self.retry_first_seconds
        began = time.monotonic()
        try:
            while True:
                state = self._operations[uid]
                seen = state.body
                try:
                    failed = await self._round(state)
                except TransientError as error:
                    logger.warning("notifications of %s wait for the API server: %s", uid, error)
                    failed = True
                except Exception:  # a bug or a broken record: retried like a failed delivery, then given up
                    logger.exception("notifications of operation %s failed", uid)
                    if time.monotonic() - began >= self.give_up_seconds:
                        return
                    failed = True
                if not failed and state.body is seen:
                    return  # nothing left to send, and nothing new came meanwhile
                if failed:
                    await asyncio.sleep(delay)
                    delay = min(self.retry_max_seconds, delay * 2)
                else:
                    delay = self.retry_first_seconds
        except Exception:
            logger.exception("notifications of operation %s broke", uid)
        finally:
            self._workers.pop(uid, None)
            state_now = self._operations.get(uid)
            if state_now is not None and not self._workers.get(uid):
                del self._operations[uid]

    async def _round(self, state: _Operation) -> bool:
        """Send what is pending to each Notifier; True if some delivery failed (retry later)."""
        operation = Operation.of(state.body)
        notifiers = self._notifiers_of(operation.namespace)
        sent = self._sent.setdefault(operation.uid, set())
        done = set(operation.status.notified or []) | sent
        events = events_of(operation)
        rolling_back = (
            operation.status.rollback is not None and operation.status.rollback.state is RollbackState.RUNNING
        )
        failed = False
        recorded = False
        for notifier in notifiers:
            for event in events:
                key = entry(notifier.name, event)
                if (
                    key in done
                    or GIVEN_UP + key in done
                    or not notifier.hears_of(event, operation.created, rolling_back)
                ):
                    continue
                error = await self._deliver(notifier, event, operation)
                if error is None:
                    sent.add(key)
                    state.failing.pop(key, None)
                    recorded = True
                    metrics.NOTIFICATIONS.labels(operation.namespace, notifier.name, "delivered").inc()
                    await self._delivering_is(operation.namespace, notifier.name, True, "")
                    continue
                metrics.NOTIFICATIONS.labels(operation.namespace, notifier.name, "failed").inc()
                failing = state.failing.setdefault(key, _Failing(since=time.monotonic()))
                failing.error = error
                await self._delivering_is(operation.namespace, notifier.name, False, error)
                if time.monotonic() - failing.since >= self.give_up_seconds:
                    sent.add(GIVEN_UP + key)
                    recorded = True
                    metrics.NOTIFICATIONS.labels(operation.namespace, notifier.name, "given-up").inc()
                    await self._gave_up(operation.namespace, notifier.name, event, error)
                    continue
                failed = True
                break  # this Notifier's later events wait behind this one: a receiver sees them in order
        if recorded:
            await self._record(operation, sorted(set(operation.status.notified or []) | sent))
        return failed

    async def _deliver(self, notifier: Notifier, event: Event, operation: Operation) -> str | None:
        """POST one event; None when the receiver took it (2xx), else why not."""
        try:
            secret = await self._secret(operation.namespace, notifier)
        except (TransientError, PermanentError) as error:
            return f"signing secret not readable: {error}"
        body, headers = body_and_headers(event, operation, notifier.spec.format, secret)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.request_timeout)
        try:
            async with self._session.post(notifier.spec.url, data=body, headers=headers) as response:
                if 200 <= response.status < 300:
                    return None
                # Not its body: whoever may create a Notifier could otherwise read an internal service's answers.
                return f"{notifier.spec.url} answered HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return f"{notifier.spec.url} unreachable: {type(error).__name__}: {error}"

    async def _secret(self, namespace: str, notifier: Notifier) -> bytes | None:
        ref = notifier.spec.signing_secret
        if ref is None:
            return None
        secret = await self.kube.read(namespace, "Secret", ref.name)
        if secret is None:
            raise PermanentError(f"Secret {ref.name} does not exist")
        value = (secret.get("data") or {}).get(ref.key)
        if value is None:
            raise PermanentError(f"Secret {ref.name} has no key {ref.key}")
        return base64.b64decode(value)

    def _notifiers_of(self, namespace: str) -> list[Notifier]:
        found = []
        for body in list(self.notifiers.get(namespace, ())):
            try:
                found.append(
                    Notifier(
                        name=body["metadata"]["name"],
                        created=str(body["metadata"].get("creationTimestamp") or ""),
                        spec=NotifierSpec.model_validate(body.get("spec") or {}),
                        status=NotifierStatus.model_validate(body.get("status") or {}),
                    )
                )
            except ValueError as error:  # admission checks the schema: only an older or forged object
                logger.warning("notifier %s/%s ignored: %s", namespace, body["metadata"]["name"], error)
        return found

    async def _record(self, operation: Operation, notified: list[str]) -> None:
        try:
            await self.writes.patch_status("Operation", operation.namespace, operation.name, {"notified": notified})
        except PermanentError:  # the Operation is gone: nothing to record on
            pass
        except TransientError as error:  # kept in memory: the next round records it again
            logger.warning("delivery of %s's events not recorded yet: %s", operation.name, error)

    async def _delivering_is(self, namespace: str, name: str, ok: bool, error: str) -> None:
        """The Notifier's Delivering condition, written when it changes (and the error with it)."""
        if self._delivering.get((namespace, name)) is ok:
            return
        body = await self.kube.read(namespace, "Notifier", name)
        if body is None:
            return
        status = NotifierStatus.model_validate(body.get("status") or {})
        now = stamp()
        condition = set_condition(
            status.conditions,
            "Delivering",
            ok,
            "Delivered" if ok else "DeliveryFailing",
            "events are delivered" if ok else f"deliveries fail and are retried: {error}"[:1000],
            now,
        )
        patch: dict[str, Any] = {"conditions": [condition.wire()]}
        if ok:
            patch["lastDeliveredAt"] = now
        else:
            patch.update(lastError=error[:1000], lastErrorAt=now)
        try:
            await self.writes.patch_status("Notifier", namespace, name, patch)
            self._delivering[(namespace, name)] = ok
        except (TransientError, PermanentError) as failure:
            logger.warning("status of notifier %s/%s not written: %s", namespace, name, failure)

    async def _gave_up(self, namespace: str, name: str, event: Event, error: str) -> None:
        logger.error(
            "notifier %s/%s: gave up on event %s after %.0fs: %s",
            namespace,
            name,
            event.id,
            self.give_up_seconds,
            error,
        )
        body = await self.kube.read(namespace, "Notifier", name)
        if body is None:
            return
        count = NotifierStatus.model_validate(body.get("status") or {}).given_up + 1
        try:
            await self.writes.patch_status("Notifier", namespace, name, {"givenUp": count})
        except (TransientError, PermanentError) as failure:
            logger.warning("status of notifier %s/%s not written: %s", namespace, name, failure)
