"""Carries one Operation object from creation to a finished phase.

This is the body of the per-Operation daemon: it decides when the operation may start (the
target exists; nothing ahead of it in the target's queue), asks the planner for the step table of
its type, and hands both to the runner. It is called again from scratch after a restart and
works out where it is from the object alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol

from bosun.engine import record
from bosun.engine.journal import KubeJournal
from bosun.engine.oplog import OperationLog, log_key
from bosun.engine.queue import QueueEntry, blocker
from bosun.engine.runner import Runner, utc_now
from bosun.engine.status import StatusWriter
from bosun.engine.steps import Ctx, StepTable
from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube
from bosun.models.base import Condition, ConditionStatus, LastOperation, parse_time
from bosun.models.operation import Initiator, Operation, OperationStatus, Phase
from bosun.store import Store

INITIATOR_SOURCE = "bosun.dev/initiator-source"
INITIATOR_USER = "bosun.dev/initiator"  # for operations Bosun made: who edited the target's spec
CREATED_BY = "bosun.dev/created-by"  # stamped by the API server's admission policy on every create

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan(Generic[Ctx]):
    table: StepTable[Ctx]
    ctx: Ctx


class Planner(Protocol):
    """Gives the step table (and its context) for an operation's type. The engine knows none."""

    async def plan(self, kube: Kube, operation: Operation, target: dict[str, Any]) -> Plan[Any]: ...


class _LiveHandle:
    """The runner's view of the Operation: the live cancel flag and the status writer.

    Each phase change is mirrored to the target's `status.lastOperation`, so `kubectl get apps`
    and `kubectl get databases` show the newest operation at a glance.
    """

    def __init__(self, body: Mapping[str, Any], writer: StatusWriter, operation: Operation) -> None:
        self.body = body
        self.writer = writer
        self.operation = operation
        self.mirrored: Phase | None = None

    def cancel_requested(self) -> bool:
        return bool((self.body.get("spec") or {}).get("cancel"))

    async def save(self, status: OperationStatus) -> None:
        await self.writer.save(status)
        if status.phase is not self.mirrored:
            await self._mirror(status)

    async def _mirror(self, status: OperationStatus) -> None:
        target = self.operation.spec.target
        last = LastOperation(name=self.operation.name, type=self.operation.spec.type.value, phase=status.phase.value)
        patch: dict[str, Any] = {
            "lastOperation": last.wire(),
            "conditions": [c.wire() for c in target_conditions(self.operation, status)],
        }
        generation = self.operation.annotations.get("bosun.dev/target-generation")
        if generation:
            patch["observedGeneration"] = int(generation)
        try:
            await self.writer.kube.patch_status(target.kind.value, self.operation.namespace, target.name, patch)
            self.mirrored = status.phase
        except (PermanentError, TransientError) as error:  # gone, or busy: the Operation is the record
            logger.info("could not mirror %s to %s %s: %s", self.operation.name, target.kind.value, target.name, error)


def initiator_of(body: Mapping[str, Any]) -> Initiator:
    """Who asked, from what the admission policies stamped, and the client (field manager)."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    managers = [
        m.get("manager", "") for m in meta.get("managedFields") or [] if m.get("operation") in ("Apply", "Update")
    ]
    source = annotations.get(INITIATOR_SOURCE, "Operation")
    by_user = source == "Operation"
    return Initiator(
        username=annotations.get(CREATED_BY if by_user else INITIATOR_USER, ""),
        kind="User" if by_user else "Bosun",
        source=source,
        manager=annotations.get("bosun.dev/initiator-manager") or (managers[0] if managers else ""),
    )


def target_conditions(operation: Operation, status: OperationStatus) -> list[Condition]:
    """The App/Database conditions an operation's phase implies (kstatus and Argo CD read them).

    A failed generation stays Stalled until a new spec generation or Operation starts: Bosun does
    not retry it by itself, so a GitOps tool sees a stable Degraded state, not a loop.
    """
    now = utc_now()
    name = operation.name
    if not status.phase.finished:
        ready, reconciling, stalled = ("False", "OperationRunning"), ("True", "OperationRunning"), ("False", "")
        message = f"operation {name} ({operation.spec.type.value}) is {status.phase.value.lower()}"
    elif status.phase is Phase.SUCCEEDED:
        ready, reconciling, stalled = ("True", "Succeeded"), ("False", "Succeeded"), ("False", "")
        message = f"operation {name} ({operation.spec.type.value}) succeeded"
    else:
        rollback = status.rollback.state.value if status.rollback else ""
        why = {"Succeeded": "RolledBack", "Failed": "RollbackFailed"}.get(rollback, status.phase.value)
        ready, reconciling, stalled = ("False", why), ("False", why), ("True", why)
        message = f"operation {name} ({operation.spec.type.value}) {status.phase.value.lower()}: {status.message}"
    return [
        Condition(
            type=kind, status=ConditionStatus(value), reason=reason or "Idle", message=message, last_transition_time=now
        )
        for kind, (value, reason) in (("Ready", ready), ("Reconciling", reconciling), ("Stalled", stalled))
    ]


def _epoch(timestamp: str) -> float:
    return parse_time(timestamp).timestamp()


class OperationService:
    def __init__(
        self, kube: Kube, planner: Planner, *, queue_poll_seconds: float = 1.0, store: Store | None = None
    ) -> None:
        self.kube = kube
        self.store = store
        self.planner = planner
        self.queue_poll_seconds = queue_poll_seconds

    async def drive(self, body: Mapping[str, Any]) -> OperationStatus:
        """Drive the operation whose live body is given; return its final (or current) status."""
        operation = Operation.of(body)
        status = operation.status
        if status.phase.finished:
            return status
        writer = StatusWriter(self.kube, operation.namespace, operation.name, operation.generation)
        handle = _LiveHandle(body, writer, operation)
        if status.initiator is None:
            status.initiator = initiator_of(body)
        target = await self._wait_for_turn(operation, status, handle)
        if target is None:
            return status
        prior = status.log.total if status.log else 0
        log = OperationLog(
            self.store,
            log_key(operation.namespace, operation.name, operation.uid),
            first_line=prior,
            earlier_tail=status.log.lines if status.log else [],
        )
        writer.log = log.status
        journal = KubeJournal(self.kube, dict(body), target, log)
        try:
            try:
                plan = await self.planner.plan(self.kube, operation, target)
            except PermanentError as refused:
                if record.steps_to_undo(status):  # resuming after steps ran: say what may stay changed
                    record.abandon(status, utc_now(), reason=refused.reason, message=str(refused))
                    journal.warning(f"cannot resume or roll back: {refused}")
                else:
                    record.end_without_running(
                        status, utc_now(), phase=Phase.FAILED, reason=refused.reason, message=str(refused)
                    )
                    journal.warning(f"refused before any change: {refused}")
                await writer.save(status)
                return status
            started = _epoch(status.started_at) if status.started_at else time.time()
            runner = Runner(plan.table, plan.ctx, handle, journal, deadline=started + operation.spec.timeout_seconds)
            return await runner.drive(status)
        finally:
            await journal.flush()
            log.close()

    async def _wait_for_turn(
        self, operation: Operation, status: OperationStatus, handle: _LiveHandle
    ) -> dict[str, Any] | None:
        """Wait until the operation may run; None if it ended while waiting."""
        while True:
            if handle.cancel_requested() and status.phase in (Phase.PENDING, Phase.QUEUED):
                record.end_without_running(
                    status, utc_now(), phase=Phase.CANCELLED, reason="Cancelled", message="cancelled before it started"
                )
                await handle.save(status)
                return None
            kind, name = operation.spec.target.kind.value, operation.spec.target.name
            target = await self.kube.find(kind, operation.namespace, name)
            if target is None and status.phase in (Phase.PENDING, Phase.QUEUED):
                record.end_without_running(
                    status,
                    utc_now(),
                    phase=Phase.FAILED,
                    reason="TargetNotFound",
                    message=f"{kind} {name!r} does not exist in namespace {operation.namespace}",
                )
                await handle.save(status)
                return None
            if status.phase not in (Phase.PENDING, Phase.QUEUED):
                return target or {}  # resuming: the steps find out what is left of the target
            others = [QueueEntry.of(o) for o in await self.kube.list_objects("Operation", operation.namespace)]
            me = QueueEntry.of(
                {
                    "metadata": {"name": operation.name, "creationTimestamp": operation.created},
                    "spec": operation.spec.wire(),
                    "status": {"phase": status.phase.value},
                }
            )
            ahead = blocker(me, others)
            if ahead is None:
                return target
            if status.phase is not Phase.QUEUED or status.queued_behind != ahead:
                status.phase = Phase.QUEUED
                status.queued_behind = ahead
                status.message = f"queued behind {ahead}"
                await handle.save(status)
            await asyncio.sleep(self.queue_poll_seconds)
