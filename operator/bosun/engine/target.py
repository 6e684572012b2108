"""The one writer of an App's or Database's status.

`lastOperation`, the Ready/Reconciling/Stalled conditions (kstatus, Argo CD) and
`observedGeneration` of a target are derived from its newest operation; what runs where (phase,
node, image, releases, volume, downtime) is what the steps say changed, through `TargetFields`.
Both are written only here, the way CloudNativePG's `pkg/resources/status` does it: re-read the
target, compute the fields, skip the write when nothing changed, write only onto the version read
(a write in between is a conflict: read again), and keep a condition's `lastTransitionTime` unless
its status changed. Steps cannot write status any other way: their `Kube` has no status write
(`bosun.kube_status` has, and `operations` may not import it).

A mirror that fails transiently is retried for a while; whoever calls again later (the next phase
change, or the operator's restart, which mirrors every finished operation not yet archived)
converges the target to its newest operation's outcome.

`observedGeneration` moves to an edit's generation only once the operation carrying that edit has
finished: while it runs, a GitOps tool sees the new generation as not yet observed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from bosun.engine.conditions import set_condition
from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube
from bosun.kube_status import StatusWrites
from bosun.models.base import Condition, LastOperation, stamp
from bosun.models.operation import Operation, OperationStatus, Phase, RollbackState

logger = logging.getLogger(__name__)

CONFLICT_RETRIES = 5


def target_conditions(
    operation: Operation,
    status: OperationStatus,
    previous: list[dict[str, Any]],
    now: str,
    *,
    from_edit: bool = False,
    serving: bool = False,
    changes_target: bool = True,
) -> list[Condition]:
    """The target's conditions the operation's phase implies, keeping unchanged transition times.

    An operation that has not started leaves Ready as it was (a Database waiting for Sunday's window
    serves all week) and says Reconciling with why it waits. A failed spec edit stays Stalled until
    a new spec generation or Operation starts: Bosun does not retry it by itself, so a GitOps tool
    sees a stable Degraded state, not a loop. An Operation applied by hand that failed but left
    everything as it was (refused, or rolled back in full) leaves the target as it was: its spec is
    still what runs, so it is Ready if it serves (its status phase says Running); the Operation
    records the failure. A rollback that failed always makes the target Stalled. An operation whose
    table changes nothing of its target (`StepTable.changes_target`, a backup) leaves Ready as it
    was and Reconciling False while it runs and when it ends, unless what it did could not be undone
    (its rollback failed: Stalled, as any other).
    """

    name, type_ = operation.name, operation.spec.type.value
    rollback = status.rollback.state if status.rollback else None
    if status.phase in (Phase.PENDING, Phase.QUEUED):
        # Not started (waiting its turn, a window, an approval): what serves is untouched, maybe for days.
        why = status.reason or "OperationWaiting"
        ready, reconciling, stalled = ("True" if serving else "False", why), ("True", why), ("False", "")
        message = f"operation {name} ({type_}) has not started: {status.message or status.phase.value.lower()}"
    elif not status.phase.finished and not changes_target:
        ready, reconciling, stalled = (
            ("True" if serving else "False", "ReadOnlyOperation"),
            ("False", "ReadOnlyOperation"),
            ("False", ""),
        )
        message = f"operation {name} ({type_}) is {status.phase.value.lower()}; it changes nothing of what serves"
    elif not status.phase.finished:
        ready, reconciling, stalled = ("False", "OperationRunning"), ("True", "OperationRunning"), ("False", "")
        message = f"operation {name} ({type_}) is {status.phase.value.lower()}"
    elif not changes_target and rollback is not RollbackState.FAILED:
        # It read and changed nothing: its end, whatever it is, leaves the target as it was.
        word = status.phase.value
        ready, reconciling, stalled = ("True" if serving else "False", word), ("False", word), ("False", "")
        message = f"operation {name} ({type_}) {word.lower()}; it changed nothing of what serves"
    elif status.phase is Phase.SUCCEEDED:
        ready, reconciling, stalled = ("True", "Succeeded"), ("False", "Succeeded"), ("False", "")
        message = f"operation {name} ({type_}) succeeded"
    elif rollback in (RollbackState.NOT_NEEDED, RollbackState.SUCCEEDED) and not from_edit:
        was_ready = "True" if serving else "False"
        why = "RolledBack" if rollback is RollbackState.SUCCEEDED else "Refused"
        ready, reconciling, stalled = (was_ready, why), ("False", why), ("False", "")
        message = f"operation {name} ({type_}) {status.phase.value.lower()}, nothing stays changed: {status.message}"
    else:
        why = {RollbackState.SUCCEEDED: "RolledBack", RollbackState.FAILED: "RollbackFailed"}.get(
            rollback or RollbackState.FAILED, status.phase.value
        )
        ready, reconciling, stalled = ("False", why), ("False", why), ("True", why)
        message = f"operation {name} ({type_}) {status.phase.value.lower()}: {status.message}"
    return [
        set_condition(previous, kind, value == "True", reason or "Idle", message, now)
        for kind, (value, reason) in (("Ready", ready), ("Reconciling", reconciling), ("Stalled", stalled))
    ]


def target_patch(
    operation: Operation,
    status: OperationStatus,
    target: dict[str, Any],
    generation: int | None,
    now: str,
    *,
    from_edit: bool = False,
    changes_target: bool = True,
) -> dict[str, Any]:
    """The status fields to write, or {} when the target already says all of it."""
    current = target.get("status") or {}
    last = LastOperation(name=operation.name, type=operation.spec.type.value, phase=status.phase.value)
    mirrored = ("Ready", "Reconciling", "Stalled")
    others = [c for c in current.get("conditions") or [] if c.get("type") not in mirrored]  # e.g. BackupOverdue
    patch: dict[str, Any] = {
        "lastOperation": last.wire(),
        "conditions": [
            *(
                c.wire()
                for c in target_conditions(
                    operation,
                    status,
                    current.get("conditions") or [],
                    now,
                    from_edit=from_edit,
                    serving=current.get("phase") == "Running",
                    changes_target=changes_target,
                )
            ),
            *others,
        ],
    }
    if generation is not None and status.phase.finished and (current.get("observedGeneration") or 0) < generation:
        patch["observedGeneration"] = generation
    changed = {k: v for k, v in patch.items() if current.get(k) != v}
    return changed


class TargetStatus:
    """Mirrors operations onto their targets; see the module docstring."""

    def __init__(self, kube: Kube, *, retry_seconds: float = 30.0, writes: StatusWrites | None = None) -> None:
        self.kube = kube
        self.retry_seconds = retry_seconds
        self.writes = writes or StatusWrites(kube)

    async def change(self, kind: str, namespace: str, name: str, fields: Mapping[str, Any]) -> bool:
        """Write what a step says changed (phase, node, releases...); False if the target is gone.

        Re-reads the target and writes only the fields that differ, onto the version it read; a
        write in between (another field, the operation's own mirror) is read again and the
        change re-applied. Nothing differs: no write at all.
        """
        for _ in range(CONFLICT_RETRIES):
            body = await self.kube.read(namespace, kind, name)
            if body is None:
                return False
            current = body.get("status") or {}
            changed = {k: v for k, v in fields.items() if current.get(k) != v}
            if not changed:
                return True
            version = (body.get("metadata") or {}).get("resourceVersion", "")
            try:
                await self.writes.patch_status(kind, namespace, name, changed, version)
                return True
            except TransientError as error:  # a conflict, or a busy API server: the step's retries handle the rest
                last = error
        raise TransientError(f"status of {kind} {namespace}/{name} kept changing under this write: {last}")

    async def condition(
        self, kind: str, namespace: str, name: str, type_: str, true: bool | None, reason: str, message: str
    ) -> bool:
        """Set one condition that no operation speaks for (BackupOverdue), keeping its transition
        time unless its status changes; None removes it. False when the target is gone."""
        for _ in range(CONFLICT_RETRIES):
            body = await self.kube.read(namespace, kind, name)
            if body is None:
                return False
            current = list((body.get("status") or {}).get("conditions") or [])
            others = [c for c in current if c.get("type") != type_]
            wanted = others
            if true is not None:
                wanted = [*others, set_condition(current, type_, true, reason, message, stamp()).wire()]
            if wanted == current:
                return True
            version = (body.get("metadata") or {}).get("resourceVersion", "")
            try:
                await self.writes.patch_status(kind, namespace, name, {"conditions": wanted}, version)
                return True
            except TransientError as error:
                last = error
        raise TransientError(f"status of {kind} {namespace}/{name} kept changing under this write: {last}")

    async def mirror(
        self,
        operation: Operation,
        status: OperationStatus,
        generation: int | None,
        *,
        from_edit: bool = False,
        changes_target: bool = True,
    ) -> bool:
        """Write the operation's outcome to its target; False if the target is gone or refuses it.

        `changes_target` is its table's (known once planned): False for an operation that only reads.

        Raises TransientError when the API server stays busy past `retry_seconds`.
        """
        target = operation.spec.target
        delay, waited = 0.2, 0.0
        while True:
            try:
                body = await self.kube.read(operation.namespace, target.kind.value, target.name)
                if body is None:
                    return False
                newer = (body.get("status") or {}).get("lastOperation") or {}
                if newer.get("name") not in ("", None, operation.name) and not await self._is_older(
                    operation, newer["name"]
                ):
                    return True  # a newer operation already speaks for the target
                patch = target_patch(
                    operation, status, body, generation, stamp(), from_edit=from_edit, changes_target=changes_target
                )
                if patch:  # only onto the target as read: a newer operation's write in between is a conflict
                    version = (body.get("metadata") or {}).get("resourceVersion", "")
                    await self.writes.patch_status(target.kind.value, operation.namespace, target.name, patch, version)
                return True
            except TransientError as error:
                if waited >= self.retry_seconds:
                    logger.warning("could not mirror %s onto its target (retried later): %s", operation.name, error)
                    raise
                await asyncio.sleep(delay)
                waited += delay
                delay = min(5.0, delay * 2)
            except PermanentError as error:
                logger.info("could not mirror %s onto its target: %s", operation.name, error)
                return False

    async def observed(self, kind: str, namespace: str, name: str, generation: int) -> None:
        """A spec edit that needs no operation is in force at once: say the generation was observed."""
        body = await self.kube.read(namespace, kind, name)
        if body is not None and ((body.get("status") or {}).get("observedGeneration") or 0) < generation:
            await self.writes.patch_status(kind, namespace, name, {"observedGeneration": generation})

    async def _is_older(self, operation: Operation, other: str) -> bool:
        """True when the operation the target names is older than `operation` (or gone)."""
        body = await self.kube.read(operation.namespace, "Operation", other)
        if body is None:
            return True
        return Operation.of(body).queue_key < operation.queue_key


class TargetFields:
    """What a step may do to its target's status: say which fields change. The narrow door of
    `TargetStatus` handed to an operation's steps (they get no other way to write status)."""

    def __init__(self, funnel: TargetStatus, kind: str, namespace: str, name: str) -> None:
        self._funnel, self._kind, self._namespace, self._name = funnel, kind, namespace, name

    async def set(self, **fields: Any) -> bool:
        """Set status fields by their wire names; False when the target no longer exists."""
        return await self._funnel.change(self._kind, self._namespace, self._name, fields)

    @classmethod
    def of(cls, kube: Kube, kind: str, namespace: str, name: str) -> TargetFields:
        return cls(TargetStatus(kube), kind, namespace, name)
