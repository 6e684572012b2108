"""Carries one Operation object from creation to a finished phase, whatever happens on the way.

This is the body of the per-Operation daemon: it decides when the operation may start (the
target exists; nothing running on it, nothing ahead of it in its queue), asks the planner for the
step table of its type, stores the planner's decision in status, and hands both to the runner.
It is called again from scratch after a restart and works out where it is from the object alone.

Why every path ends:
- The deadline counts from the Operation's creation (`status.deadline`), so an operation that waits
  in the queue too long ends `Failed` too, and says it never started.
- Any error while planning, resuming or running, expected or not, ends the operation `Failed` with
  a readable reason: refused before any change (rollback `NotNeeded`), rolled back by the runner,
  or, when it cannot even be planned any more, with every step that may stay changed named.
- Deleting an unfinished Operation cancels it: the object stays (Kopf's finalizer) until the
  rollback has run and the record is archived.

What can be trusted: the plan and the archive marker live in status, which only the operator can
write (the aggregated `edit` role does not grant `operations/status`). The initiator annotations
that say an operation came from a spec edit are believed only on Operations created by the
operator's own identity; on any other, the initiator is the user the admission policy stamped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar

from pydantic import ValidationError

from bosun import metrics
from bosun.engine import dryrun, logcopy, metering, oplog, record, terms
from bosun.engine.holds import Holds, digest_of, policy_of, predicted_downtime, terms_apply
from bosun.engine.journal import KubeJournal
from bosun.engine.logcopy import ConfigMapLogCopy
from bosun.engine.oplog import OperationLog, log_key
from bosun.engine.queue import Unfinished, blocker
from bosun.engine.runner import Runner
from bosun.engine.status import StatusWriter
from bosun.engine.steps import Ctx, StepTable
from bosun.engine.target import TargetStatus
from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube
from bosun.kube_status import StatusWrites
from bosun.models.app import AppSpec
from bosun.models.base import now, parse_time, stamp
from bosun.models.database import DatabaseSpec
from bosun.models.names import (
    API_VERSION,
    AWAITING_APPROVAL,
    CANCELLED_BY,
    CREATED_BY,
    EDIT_PART,
    HOLD_REASONS,
    INITIATOR_MANAGER,
    INITIATOR_SOURCE,
    INITIATOR_USER,
    TARGET_GENERATION,
    TARGET_KIND_LABEL,
    TARGET_LABEL,
    labellable,
)
from bosun.models.operation import (
    DowntimeRecord,
    DryRunReport,
    Initiator,
    Operation,
    OperationSpec,
    OperationStatus,
    Phase,
    TargetKind,
)
from bosun.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan(Generic[Ctx]):
    """What the planner decided: the step table, the context its steps share, and the decision as
    JSON (`record`), which the engine stores in `status.plan` before the first step. On resume the
    planner finds it in `operation.status.plan` and must rebuild exactly the same plan from it."""

    table: StepTable[Ctx]
    ctx: Ctx
    record: str = ""
    summary: str = ""  # the decision in one sentence, for people (a dry run shows it)


class Planner(Protocol):
    """Gives the step table (and its context) for an operation's type. The engine knows none."""

    async def plan(self, kube: Kube, operation: Operation, target: dict[str, Any]) -> Plan[Any]: ...


def trusted(body: Mapping[str, Any], identity: str) -> bool:
    """Was this Operation created by the operator itself (so its initiator annotations are true)?"""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return bool(identity) and annotations.get(CREATED_BY) == identity


def initiator_of(body: Mapping[str, Any], identity: str) -> Initiator:
    """Who asked, from what the admission policies stamped, and the client (field manager)."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    # The client that wrote the spec (the creator's entry; Kopf's own patches touch metadata only).
    writers = sorted(
        (
            m
            for m in meta.get("managedFields") or []
            if m.get("operation") in ("Apply", "Update")
            and not m.get("subresource")
            and "f:spec" in (m.get("fieldsV1") or {})
        ),
        key=lambda m: m.get("time") or "",
    )
    managers = [str(m.get("manager", "")) for m in writers]
    if trusted(body, identity) and annotations.get(INITIATOR_SOURCE):
        generation = annotations.get(TARGET_GENERATION, "")
        return Initiator(
            username=annotations.get(INITIATOR_USER, ""),
            kind="Bosun",
            source=annotations[INITIATOR_SOURCE],
            manager=annotations.get(INITIATOR_MANAGER, ""),
            generation=int(generation) if generation.isdigit() else None,
            edit_part=annotations.get(EDIT_PART, "1/1"),
        )
    return Initiator(
        username=annotations.get(CREATED_BY, ""),
        kind="User",
        source="Operation",
        manager=managers[0] if managers else "",
    )


def target_generation(initiator: Initiator | None, phase: Phase) -> int | None:
    """The target's spec generation this operation's end lets the target report as observed.

    Only operations the operator made for a spec edit carry one (decided once, at the first status
    write, and kept in `status.initiator`). One edit may make several operations: the generation
    is observed when the last of them ends, or when any of them fails (the target is then
    Stalled, and says why).
    """
    if initiator is None or initiator.kind != "Bosun" or initiator.generation is None:
        return None
    index, _, count = (initiator.edit_part or "1/1").partition("/")
    return initiator.generation if index == count or phase is not Phase.SUCCEEDED else None


def from_edit(initiator: Initiator | None) -> bool:
    """Did the operator make this operation to carry out a spec edit?"""
    return initiator is not None and initiator.kind == "Bosun"


def deadline_of(operation: Operation) -> str:
    created = parse_time(operation.created) if operation.created else parse_time(stamp())
    return stamp(created + timedelta(seconds=operation.spec.timeout_seconds))


_WAIT = object()


A = TypeVar("A")
B = TypeVar("B")


async def _both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Await two reads at once; the first error of either is raised once both have ended."""
    one, two = await asyncio.gather(first, second, return_exceptions=True)
    for outcome in (one, two):
        if isinstance(outcome, BaseException):
            raise outcome
    return one, two  # type: ignore[return-value]


class _Turn:
    """A hold on a target's lock that knows whether it holds it (a cancelled wait may not)."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.held = False

    async def take(self) -> None:
        await self.lock.acquire()
        self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()


class _Slot:
    """A hold on one of the process's run slots, taken at most once and given back once."""

    def __init__(self, slots: asyncio.Semaphore | None) -> None:
        self.slots = slots
        self._taking: asyncio.Task[bool] | None = None
        self.held = slots is None

    async def take(self, within: float) -> bool:
        """True once the slot is held; False if it was not free within `within` seconds."""
        if self.held or self.slots is None:
            return True
        if self._taking is None:
            self._taking = asyncio.ensure_future(self.slots.acquire())
        done, _ = await asyncio.wait({self._taking}, timeout=within)
        self.held = bool(done)
        return self.held

    def give(self) -> None:
        taking, self._taking = self._taking, None
        self.held = self.slots is None  # given back: the next take asks the semaphore again
        if taking is None or self.slots is None:
            return
        if taking.done() and not taking.cancelled():
            self.slots.release()
        else:
            taking.cancel()  # never granted: a cancelled acquire takes nothing


class _LiveHandle:
    """The runner's view of the Operation: the live cancel flag, and the status writers."""

    def __init__(
        self,
        body: Mapping[str, Any],
        writer: StatusWriter,
        operation: Operation,
        targets: TargetStatus,
        identity: str,
        *,
        deleting: bool,
    ) -> None:
        self.body = body
        self.writer = writer
        self.operation = operation
        self.targets = targets
        self.identity = identity
        self.deleting = deleting
        self.mirrored: Phase | None = None
        self.seen = metering.Seen.of(operation.status)
        self.downtime_steps: tuple[str, ...] = ()  # the plan's, once planned: the end records the downtime
        self.changes_target = True  # the plan's: False for a read-only operation (its target stays as it was)

    def cancel_requested(self) -> bool:
        meta = self.body.get("metadata") or {}
        return self.deleting or bool(meta.get("deletionTimestamp")) or bool((self.body.get("spec") or {}).get("cancel"))

    def cancelled_by(self) -> str:
        meta = self.body.get("metadata") or {}
        if self.deleting or meta.get("deletionTimestamp"):
            return "deleting the Operation"
        annotations = meta.get("annotations") or {}
        who = annotations.get(CANCELLED_BY) or annotations.get(CREATED_BY)  # cancelled from its creation on
        return f"{who} (spec.cancel)" if who else "spec.cancel"

    async def save(self, status: OperationStatus) -> None:
        if status.phase.finished and self.downtime_steps:
            measure(status, self.downtime_steps)
        await self.writer.save(status)
        if self.operation.spec.dry_run:
            return  # changed nothing: no operation metrics, and the target shows no outcome of it
        try:
            self.seen = metering.observe(self.operation, self.seen, status)
        except ValueError:  # an unreadable timestamp costs a sample, never the operation
            logger.warning("metrics of %s/%s not recorded", self.operation.namespace, self.operation.name)
            self.seen = metering.Seen.of(status)
        generation = target_generation(status.initiator, status.phase)
        edit = from_edit(status.initiator)
        if status.phase is self.mirrored:
            return
        try:
            if await self.targets.mirror(
                self.operation, status, generation, from_edit=edit, changes_target=self.changes_target
            ):
                self.mirrored = status.phase
        except TransientError:  # the next phase change, or settling the ended operation, tries again
            pass


def measure(status: OperationStatus, downtime_steps: tuple[str, ...]) -> None:
    """At the end: the downtime measured, beside the budget and the prediction."""
    measured = dryrun.downtime_so_far(status.steps, downtime_steps)
    if measured is None:
        return
    record_ = status.downtime or DowntimeRecord()
    record_.measured_seconds = measured
    if record_.budget_seconds is not None:
        record_.within_budget = measured <= record_.budget_seconds
    status.downtime = record_


def dry_terms(report: DryRunReport, operation: Operation, table: Any, policy: Any) -> None:
    """What the target's terms would do to the real operation now, in the dry run's words."""
    kind = operation.spec.target.kind.value
    budget, source = terms.budget_of(operation.spec, policy, kind)
    facts = terms.Facts(
        stops_service=table.stops_service,
        has_downtime=bool(table.downtime_steps),
        irreversible=table.irreversible,
        predicted_downtime=report.expected_downtime,
        predicted_duration=report.expected_seconds,
        digest="",
        summary=report.plan,
    )
    if budget is not None:
        worst = terms.predicted(report.expected_downtime) if table.downtime_steps else None
        report.terms.append(
            f"downtime budget {budget}s (from the {source}): "
            + (f"predicted up to {worst:.1f}s" if worst is not None else "no prediction (no history): not checked")
        )
    verdict = terms.decide(now(), operation.spec, policy, facts, target_kind=kind, approved=False)
    if verdict.fail:
        report.refusals.append(verdict.message)
        report.terms.append(f"would be refused ({verdict.reason}): {verdict.message}")
    elif verdict.reason == AWAITING_APPROVAL:
        report.terms.append("would wait for approval (kubectl bosun approve) of its plan")
        later = terms.decide(now(), operation.spec, policy, facts, target_kind=kind, approved=True)
        if not later.go and later.message:
            report.terms.append(f"then: {later.message}")
    elif not verdict.go:
        report.terms.append(f"would wait ({verdict.reason}): {verdict.message}")


class _Plans:
    """The planner, as a hold asks it: a read-only plan of the operation on the target."""

    def __init__(self, kube: Kube, planner: Planner) -> None:
        self.kube = kube
        self.planner = planner

    async def table_and_record(
        self, operation: Operation, status: OperationStatus, target: dict[str, Any]
    ) -> tuple[Any, str, str]:
        plan = await self.planner.plan(self.kube, operation.model_copy(update={"status": status}), target)
        return plan.table, plan.record, plan.summary


def _give(slot: _Slot, turn: _Turn) -> None:
    """A held operation gives back its run slot and its target's lock while it waits."""
    slot.give()
    turn.give()


QUEUE_RECHECK_SECONDS = 10.0  # a waiting operation asks the API server at least this often


class OperationService:
    def __init__(
        self,
        kube: Kube,
        planner: Planner,
        *,
        queue_poll_seconds: float = 1.0,
        store: Store | None = None,
        identity: str = "",
        log_tail_lines: int = oplog.TAIL_LINES,
        queue_by_label: bool = True,
        max_running: int = 0,
    ) -> None:
        self.kube = kube
        self.max_running = max_running
        self.slots = asyncio.Semaphore(max_running) if max_running > 0 else None
        self.queue_by_label = queue_by_label
        self.log_tail_lines = log_tail_lines
        self.store = store
        self.planner = planner
        self.queue_poll_seconds = queue_poll_seconds
        self.identity = identity  # the operator's own user name, to know its own Operations
        self.status_writes = StatusWrites(kube)
        self.targets = TargetStatus(kube, writes=self.status_writes)
        self.unfinished = Unfinished()  # fed by the handlers from the watch of Operations
        self.holds = Holds(
            kube,
            _Plans(kube, planner),
            poll_seconds=queue_poll_seconds,
            recheck_seconds=QUEUE_RECHECK_SECONDS,
            stamps_trusted=queue_by_label,  # both come with Bosun's admission policies
        )
        self._asked_at: dict[str, float] = {}  # per waiting operation: when the API server was last asked
        self._driving: dict[str, tuple[asyncio.Lock, int]] = {}  # per operation uid: its lock, and who wants it
        # Weak: a lock lives while someone holds or waits for it, and one per target ever seen
        # (10,000 records with 10,000 targets) does not stay for the life of the process.
        self._target_locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _log(self, operation: Operation) -> OperationLog:
        # A dry run's log goes with its Operation (retention); a real one's stays with the namespace.
        owner = {"kind": "Operation", "name": operation.name, "uid": operation.uid} if operation.spec.dry_run else None
        copy = ConfigMapLogCopy(self.kube, operation.namespace, operation.name, operation.uid, owner=owner)
        key = log_key(operation.namespace, operation.name, operation.uid)
        return OperationLog(self.store, key, tail=self.log_tail_lines, copy=copy)

    def target_lock(self, namespace: str, kind: str, name: str) -> asyncio.Lock:
        """Held while an operation of this process runs on the target; drift repair skips it then."""
        key = (namespace, kind, name)
        lock = self._target_locks.get(key)
        if lock is None:
            self._target_locks[key] = lock = asyncio.Lock()
        return lock

    async def in_flight(self, namespace: str, kind: str, name: str) -> bool:
        """Whether an unfinished (real) Operation on the target exists, on a fresh read: for a
        caller that must not trust the watch yet (drift repair, just after a start)."""
        by_label = self.queue_by_label and labellable(name)
        selector = {TARGET_KIND_LABEL: kind.lower(), TARGET_LABEL: name} if by_label else None
        for body in await self.kube.list_labelled(namespace, "Operation", selector):
            operation = Operation.of(body)
            target = operation.spec.target
            if (target.kind.value, target.name) == (kind, name) and not (
                operation.status.phase.finished or operation.spec.dry_run
            ):
                return True
        return False

    async def drive(self, body: Mapping[str, Any], *, deleting: bool = False) -> OperationStatus:
        """Drive the operation whose live body is given; return its final (or current) status.

        One driver per operation at a time: the daemon and the deletion handler may both ask.
        """
        uid = (body.get("metadata") or {}).get("uid", "")
        lock, users = self._driving.get(uid, (asyncio.Lock(), 0))
        self._driving[uid] = (lock, users + 1)
        try:
            async with lock:
                return await self._drive(body, deleting=deleting)
        finally:
            lock, users = self._driving[uid]
            if users <= 1:
                del self._driving[uid]
            else:
                self._driving[uid] = (lock, users - 1)

    async def _drive(self, body: Mapping[str, Any], *, deleting: bool) -> OperationStatus:
        given = Operation.of(body)
        # The body Kopf hands over may be older than the last status write (another driver may have
        # just finished it): decide from the object as it is now.
        fresh = await self.kube.read(given.namespace, "Operation", given.name)
        if fresh is None:
            return given.status
        operation = Operation.of(fresh)
        status = operation.status
        if status.phase.finished:
            return status
        writer = StatusWriter(self.status_writes, operation.namespace, operation.name, operation.generation)
        handle = _LiveHandle(body, writer, operation, self.targets, self.identity, deleting=deleting)
        if status.sequence is None or status.initiator is None or status.deadline is None:
            # Decided once and written before any queue decision: the place in the queue (the
            # resourceVersion at first sight, as rivals see it), who asked, the deadline.
            status.sequence = given.sequence if status.sequence is None else status.sequence
            status.initiator = status.initiator or initiator_of(fresh, self.identity)
            status.deadline = status.deadline or deadline_of(operation)
            await writer.save(status)
        log = self._log(operation)
        await log.resume(status.log)
        writer.log = log.status
        journal = KubeJournal(self.kube, dict(body), None, log)
        if operation.spec.dry_run:
            try:
                return await self._dry_run(operation, status, handle, journal)
            except Exception as error:  # a bug or a broken record: end it, never loop
                logger.exception("dry run %s/%s broke", operation.namespace, operation.name)
                await self._end_broken(status, handle, journal, error)
                return status
            finally:
                await journal.flush()
                log.close()
        kind, name = operation.spec.target.kind.value, operation.spec.target.name
        turn = _Turn(self.target_lock(operation.namespace, kind, name))
        metrics.RUNNING.inc()
        # An operation already under way (resumed after a restart) keeps running: a rollback owed
        # or a half-done roll-out must not wait behind new operations, nor ignore a cancel while
        # it waits. It held a slot before the restart, so the limit still holds.
        resumed = status.phase not in (Phase.PENDING, Phase.QUEUED)
        slot = _Slot(None if resumed else self.slots)
        try:
            target = await self._wait_for_turn(operation, status, handle, journal, turn)
            if target is None:
                return status
            gated = not resumed and (terms_apply(operation.spec, policy_of(target)) or status.reason in HOLD_REASONS)
            while True:
                if gated:
                    held = await self.holds.wait(operation, status, handle, journal, target, lambda: _give(slot, turn))
                    if held.target is None:
                        return status
                    target = held.target
                    if held.waited:  # its place in the queue is kept; the target's lock is taken again
                        target = await self._wait_for_turn(operation, status, handle, journal, turn)
                        if target is None:
                            return status
                        continue  # and its terms looked at once more, under the lock
                asked = time.monotonic()
                if not await self._wait_for_slot(status, handle, journal, slot):
                    return status
                if not gated or time.monotonic() - asked < self.queue_poll_seconds:
                    break
                # It waited for a run slot: its window may have closed meanwhile. Look again, holding the slot.
            journal.target = target or None
            return await self._run(operation, status, handle, journal, target)
        except Exception as error:  # a bug or a broken record: end the operation, never loop
            logger.exception("operation %s/%s broke", operation.namespace, operation.name)
            await self._end_broken(status, handle, journal, error)
            return status
        finally:
            metrics.RUNNING.dec()
            slot.give()
            turn.give()
            await journal.flush()
            log.close()

    async def _run(
        self,
        operation: Operation,
        status: OperationStatus,
        handle: _LiveHandle,
        journal: KubeJournal,
        target: dict[str, Any],
    ) -> OperationStatus:
        try:
            plan = await self._plan(operation, status, target)
        except Exception as refused:
            reason = refused.reason if isinstance(refused, PermanentError) else "InternalError"
            message = str(refused) if isinstance(refused, PermanentError) else f"{type(refused).__name__}: {refused}"
            if record.steps_to_undo(status):  # resuming after steps ran: say what may stay changed
                record.abandon(status, stamp(), reason=reason, message=message)
                journal.warning(f"cannot resume or roll back: {message}")
            else:
                record.end_without_running(
                    status,
                    stamp(),
                    phase=Phase.FAILED,
                    reason=reason,
                    message=f"refused before any change: {message}",
                )
                journal.warning(f"refused before any change: {message}")
            await handle.save(status)
            return status
        approval = status.approval
        if approval and approval.approved_by and not status.started_at:
            planned = digest_of(plan.table, plan.record, operation, target)
            if planned != approval.plan:  # the target changed between the approval and the start
                message = (
                    f"the plan changed after {approval.approved_by} approved it ({approval.plan}, now {planned}): "
                    "nothing was changed; create the operation again to approve the new plan"
                )
                record.end_without_running(status, stamp(), phase=Phase.FAILED, reason="PlanChanged", message=message)
                journal.warning(message)
                await handle.save(status)
                return status
        status.plan = status.plan or plan.record or None
        handle.downtime_steps = tuple(plan.table.downtime_steps)
        handle.changes_target = plan.table.changes_target
        status.read_only = True if not plan.table.changes_target else None
        deadline = parse_time(status.deadline).timestamp() if status.deadline else None
        runner = Runner(
            plan.table,
            plan.ctx,
            handle,
            journal,
            deadline=deadline,
            before_downtime=self._budget_check(operation, handle, journal, plan, target),
        )
        return await runner.drive(status)

    def _budget_check(
        self, operation: Operation, handle: _LiveHandle, journal: KubeJournal, plan: Plan[Any], target: dict[str, Any]
    ) -> Any:
        """The budget's second look, just before the first downtime step: with the history as it is now."""

        async def check(status: OperationStatus) -> str:
            try:
                spec = OperationSpec.model_validate(handle.body.get("spec") or {})
            except ValueError:
                spec = operation.spec
            kind = operation.spec.target.kind.value
            budget, source = terms.budget_of(spec, policy_of(target), kind)
            waived = bool(spec.override and spec.override.downtime_budget)
            if budget is None:
                return ""
            try:
                expected = await predicted_downtime(self.kube, plan.table, operation.namespace)
            except TransientError as error:  # no fresh history: the first look's prediction stands
                journal.warning(f"downtime budget: the history could not be read again ({error})")
                return ""
            status.downtime = DowntimeRecord(
                budget_seconds=budget,
                budget_from=source,
                predicted_seconds=terms.predicted(expected),
                predicted=expected,
            )
            refusal = terms.over_budget(budget, expected, waived)
            if refusal:
                journal.warning(f"downtime budget: {refusal}")
            else:
                worst = terms.predicted(expected)
                journal.info(
                    f"downtime budget {budget}s: "
                    + (f"predicted up to {worst:.1f}s" if worst is not None else "no history to predict from")
                    + (" (waived)" if waived else "")
                )
            return refusal

        return check

    async def _dry_run(
        self, operation: Operation, status: OperationStatus, handle: _LiveHandle, journal: KubeJournal
    ) -> OperationStatus:
        """Plan and check, change nothing, and end: never queued, never in another operation's way.

        Events and log lines go to the Operation only; its target's status is not touched.
        """
        journal.info("dry run: planning and checking only, nothing will be changed")
        try:
            planned, target = await self._dry_run_plan(operation, status)
            others = [Operation.of(o) for o in await self.kube.list_labelled(operation.namespace, "Operation")]
            report = await dryrun.examine(planned.table, planned.ctx, planned.summary, others)
            report.waits_behind = blocker(operation, others) or ""
            dry_terms(report, operation, planned.table, policy_of(target))
        except PermanentError as refused:
            report = DryRunReport(refusals=[str(refused)])
        except TransientError as error:
            journal.warning(f"dry run: the API server did not answer: {error}")
            record.end_without_running(
                status, stamp(), phase=Phase.FAILED, reason="ApiUnavailable", message=f"dry run incomplete: {error}"
            )
            await handle.save(status)
            return status
        for step in report.steps:
            found = step.refusal or step.checked or step.description
            journal.info(f"would run {step.name}: {found}")
        phase, reason, message = dryrun.verdict(report)
        (journal.warning if report.refusals else journal.info)(message)
        status.dry_run = report
        record.end_without_running(status, stamp(), phase=phase, reason=reason, message=message)
        await handle.save(status)
        return status

    async def _dry_run_plan(self, operation: Operation, status: OperationStatus) -> tuple[Plan[Any], dict[str, Any]]:
        """The target as it would be (with `spec.proposed`), and the plan the real operation would make."""
        kind, name = operation.spec.target.kind, operation.spec.target.name
        target = await self.kube.read(operation.namespace, kind.value, name)
        proposed = operation.spec.proposed
        if proposed is not None:
            model = AppSpec if kind is TargetKind.APP else DatabaseSpec
            try:
                model.model_validate(proposed)
            except ValidationError as error:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
                raise PermanentError(f"the proposed spec is not valid: {problems}", "InvalidSpec") from None
            meta = {"name": name, "namespace": operation.namespace, "uid": "(not created yet)"}
            base = target or {"apiVersion": API_VERSION, "kind": kind.value, "metadata": meta, "status": {}}
            target = {**base, "spec": proposed}
            # Planned as the edit would be: as an operation the operator made for it.
            as_edit = Initiator(
                kind="Bosun", source=f"{kind.value}Spec", username=operation.annotations.get(CREATED_BY, "")
            )
            status = status.model_copy(update={"initiator": as_edit})
        if target is None:
            raise PermanentError(
                f"{kind.value} {name!r} does not exist in namespace {operation.namespace}", "TargetNotFound"
            )
        # Planned once: a dry run reports a busy API server rather than waiting for it until its deadline.
        return await self.planner.plan(self.kube, operation.model_copy(update={"status": status}), target), target

    async def _plan(self, operation: Operation, status: OperationStatus, target: dict[str, Any]) -> Plan[Any]:
        """Plan, retrying transient API errors until the operation's deadline."""
        delay = 0.5
        while True:
            try:
                return await self.planner.plan(self.kube, operation.model_copy(update={"status": status}), target)
            except TransientError:
                metrics.RETRIES.labels("plan").inc()
                must_undo = bool(record.steps_to_undo(status))  # a rollback is owed: keep trying
                if status.deadline and stamp() >= status.deadline and not must_undo:
                    raise
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)

    async def _end_broken(
        self, status: OperationStatus, handle: _LiveHandle, journal: KubeJournal, error: Exception
    ) -> None:
        if status.phase.finished:  # it ended; what broke came after (a mirror, say): keep the outcome
            logger.warning("after %s ended: %s", handle.operation.name, error)
            return
        reason = error.reason if isinstance(error, PermanentError) else "InternalError"
        message = f"{type(error).__name__}: {error}" if not isinstance(error, PermanentError) else str(error)
        if record.steps_to_undo(status):
            record.abandon(status, stamp(), reason=reason, message=message)
        else:
            record.end_without_running(status, stamp(), phase=Phase.FAILED, reason=reason, message=message)
        journal.warning(f"operation ended by an internal error: {message}")
        try:
            await handle.save(status)
        except Exception:  # the Operation may be gone: nothing left to tell
            logger.exception("could not record the failure of %s", handle.operation.name)

    async def _wait_for_turn(
        self, operation: Operation, status: OperationStatus, handle: _LiveHandle, journal: KubeJournal, turn: _Turn
    ) -> dict[str, Any] | None:
        """Wait until the operation may run; None if it ended while waiting.

        Returns holding the target's lock, taken before the last check, so no other operation of
        this process (and no drift repair) acts on the target between the check and the start.
        """
        try:
            while True:
                try:
                    found = await self._take_turn(operation, status, handle, journal, turn)
                except TransientError as error:  # the API server is busy: the deadline still bounds the wait
                    turn.give()
                    logger.warning("operation %s waits for the API server: %s", operation.name, error)
                    await asyncio.sleep(self.queue_poll_seconds)
                    continue
                if found is not _WAIT:
                    return found  # type: ignore[return-value]
                await asyncio.sleep(self.queue_poll_seconds)
        finally:  # ended, broke or cancelled: nothing of it stays behind
            self._asked_at.pop(operation.uid, None)

    async def _take_turn(
        self, operation: Operation, status: OperationStatus, handle: _LiveHandle, journal: KubeJournal, turn: _Turn
    ) -> object:
        """One look at the queue: the target (its turn came), None (it ended), or _WAIT."""
        kind, name = operation.spec.target.kind.value, operation.spec.target.name
        waiting = status.phase in (Phase.PENDING, Phase.QUEUED)
        if waiting and await self._ended_waiting(status, handle, journal):
            return None
        now = asyncio.get_running_loop().time()
        if status.phase is Phase.QUEUED and now - self._asked_at.get(operation.uid, 0.0) < QUEUE_RECHECK_SECONDS:
            seen_ahead = self.unfinished.blocker(operation.model_copy(update={"status": status}))
            if seen_ahead is not None and seen_ahead == status.queued_behind:
                return _WAIT  # the watch still shows it ahead: no need to ask the API server yet
        self._asked_at[operation.uid] = now  # an event the watch missed delays a start by this much at most
        if not waiting:
            await turn.take()
            return await self.kube.read(operation.namespace, kind, name) or {}  # resuming: the steps find what is left
        me = operation.model_copy(update={"status": status})
        # The target's lock first when it is free, so the one look at the queue that decides is made
        # under it (nothing of ours starts meanwhile); the target and its Operations are read together.
        # A start costs one round trip to the API server here, not three.
        free = not turn.lock.locked()
        if free:
            await turn.take()
        target, ahead = await _both(self.kube.read(operation.namespace, kind, name), self._ahead(me))
        if target is None:
            turn.give()
            message = f"{kind} {name!r} does not exist in namespace {operation.namespace}"
            record.end_without_running(status, stamp(), phase=Phase.FAILED, reason="TargetNotFound", message=message)
            journal.warning(message)
            await handle.save(status)
            return None
        if ahead is None and free:
            return target
        turn.give()
        if ahead is None:
            return _WAIT  # another operation of this process holds the target: look again later
        if status.phase is not Phase.QUEUED or status.queued_behind != ahead:
            status.phase = Phase.QUEUED
            status.queued_behind = ahead
            status.message = f"queued behind {ahead}; fails at {status.deadline} if it has not started by then"
            journal.info(f"queued behind {ahead}")
            await handle.save(status)
        return _WAIT

    async def _ended_waiting(self, status: OperationStatus, handle: _LiveHandle, journal: KubeJournal) -> bool:
        """End an operation that has not started if it was cancelled or its deadline passed."""
        if handle.cancel_requested():
            behind = f" (it waited behind {status.queued_behind})" if status.queued_behind else ""
            message = f"cancelled before it started, by {handle.cancelled_by()}{behind}: nothing was changed"
            record.end_without_running(status, stamp(), phase=Phase.CANCELLED, reason="Cancelled", message=message)
            journal.info(message)
            await handle.save(status)
            return True
        if status.deadline and stamp() >= status.deadline and status.reason not in HOLD_REASONS:
            behind = f" behind {status.queued_behind}" if status.queued_behind else ""
            message = f"its deadline ({status.deadline}) passed while it waited{behind}: it never started"
            record.end_without_running(status, stamp(), phase=Phase.FAILED, reason="DeadlineExceeded", message=message)
            journal.warning(message)
            await handle.save(status)
            return True
        return False

    async def _wait_for_slot(
        self, status: OperationStatus, handle: _LiveHandle, journal: KubeJournal, slot: _Slot
    ) -> bool:
        """Wait for one of the process's run slots; False if the operation ended while it waited."""
        told = False
        asked = time.monotonic()
        while not await slot.take(self.queue_poll_seconds):
            if await self._ended_waiting(status, handle, journal):
                return False
            if not told:
                told = True
                status.queued_behind = ""  # its target's turn came: it waits behind no operation now
                status.message = (
                    f"waiting for a run slot: at most {self.max_running} operations run at once; "
                    f"fails at {status.deadline} if it has not started by then"
                )
                journal.info(f"waiting for a run slot ({self.max_running} operations are running)")
                await handle.save(status)
        if slot.slots is not None:
            metrics.RUN_SLOT_WAIT.observe(time.monotonic() - asked)
        return True

    async def _ahead(self, me: Operation) -> str | None:
        """The operation `me` waits for, decided on a fresh read of its rivals.

        With labels (stamped by the admission policy from the immutable spec.target), only the
        target's Operations are read, however many the namespace holds; the watch's index adds any
        unfinished one that lacks them. Without, or for a name that is no label value, all are read.
        """
        target = me.spec.target
        if not (self.queue_by_label and labellable(target.name)):
            return blocker(me, [Operation.of(o) for o in await self.kube.list_labelled(me.namespace, "Operation")])
        selector = {TARGET_KIND_LABEL: target.kind.value.lower(), TARGET_LABEL: target.name}
        listed = [Operation.of(o) for o in await self.kube.list_labelled(me.namespace, "Operation", selector)]
        seen = {o.uid for o in listed}
        return blocker(me, listed + [o for o in self.unfinished.on(me) if o.uid not in seen])

    def forget(self, body: Mapping[str, Any]) -> None:
        """The operation is archived: what this process kept to write its log is dropped."""
        logcopy.forget(str((body.get("metadata") or {}).get("uid") or ""))

    async def settle(self, body: Mapping[str, Any]) -> None:
        """For a finished operation: its target shows its outcome, and the store holds its whole log.

        Raises StoreUnavailable while the store is down (the caller retries).
        """
        operation = Operation.of(body)
        initiator = operation.status.initiator
        generation = target_generation(initiator, operation.status.phase)
        # A busy API server raises (the caller retries); a target gone or refusing the write does not.
        if not operation.spec.dry_run:  # a dry run changed nothing: its target shows no outcome of it
            await self.targets.mirror(
                operation,
                operation.status,
                generation,
                from_edit=from_edit(initiator),
                changes_target=not operation.status.read_only,
            )
        key = log_key(operation.namespace, operation.name, operation.uid)
        # The driver's log may still hold lines (the store was down when the operation ended): it
        # writes the whole log itself. A second writer here could land after it with fewer lines.
        busy = oplog.held(key)
        for current in busy:
            await current.flush()  # StoreUnavailable while the store is down: the caller retries
            if not current.settled:  # written, but to a store coming back: read back first
                await current.flush()  # StillUnsure until the read can be trusted: the caller waits
        if busy:
            return
        log = self._log(operation)
        await log.resume(operation.status.log)
        await log.settle()
