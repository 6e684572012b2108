"""Holding an operation before its first step until the target's terms let it start.

Why here, after the operation's turn in its queue came and before it takes a run slot: the plan
is made on the target as it will be changed (nothing ahead of it any more), and a held operation
keeps its place (later operations on the target queue behind it, in order) without holding a run
slot or the target's lock for days (drift repair of an App still skips it while one of its
operations is unfinished, held ones included).

What survives a restart: everything the hold decided is in status (reason, startsAt, the plan
digest awaiting approval, who approved or waived), written before the operation waits on it. A
restarted operator makes the decision again from the object; an approval is recorded once, from
the annotation the API server stamped, and only counts for the plan it names.

The deadline: an operation may wait days for a window or an approver, so its `spec.timeoutSeconds`
counts from the end of the hold, not from its creation (status.deadline moves then).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from bosun.engine import dryrun, record, terms
from bosun.engine.steps import StepTable
from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube
from bosun.models.base import now, parse_time, stamp
from bosun.models.names import APPROVED_BY, AWAITING_APPROVAL, HOLD_REASONS, OVERRIDDEN_BY
from bosun.models.operation import (
    ApprovalStatus,
    DowntimeRecord,
    Estimate,
    Operation,
    OperationSpec,
    OperationStatus,
    OverrideStatus,
    Phase,
)
from bosun.models.terms import OperationPolicy

logger = logging.getLogger(__name__)


class PlanSource(Protocol):
    """The planner, as the hold uses it: a read-only plan of the operation on the target."""

    async def table_and_record(
        self, operation: Operation, status: OperationStatus, target: dict[str, Any]
    ) -> tuple[StepTable[Any], str, str]: ...


class Handle(Protocol):
    body: Mapping[str, Any]

    def cancel_requested(self) -> bool: ...

    def cancelled_by(self) -> str: ...

    async def save(self, status: OperationStatus) -> None: ...


class Journal(Protocol):
    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...


def policy_of(target: Mapping[str, Any]) -> OperationPolicy | None:
    raw = (target.get("spec") or {}).get("operationPolicy")
    return OperationPolicy.model_validate(raw) if raw else None


def terms_apply(spec: OperationSpec, policy: OperationPolicy | None) -> bool:
    """Whether anything could hold or refuse this operation (else it is not even planned early)."""
    return spec.max_downtime_seconds is not None or bool(spec.not_before) or policy is not None


def digest_of(table: StepTable[Any], decision: str, operation: Operation, target: Mapping[str, Any]) -> str:
    """What an approval approves: the decision, the operation's parameters, and the target's spec
    as the plan acts on it. Not its terms: moving a maintenance window changes no plan."""
    meta = target.get("metadata") or {}
    parameters = (
        operation.spec.parameters.model_dump(mode="json", exclude_none=True) if operation.spec.parameters else {}
    )
    try:
        decided: Any = json.loads(decision) if decision else None
    except ValueError:
        decided = decision
    return terms.plan_digest(
        table.name, without_terms(decided), operation.spec.type.value, parameters, meta.get("uid"),
        without_terms(target.get("spec") or {}),
    )  # fmt: skip


def without_terms(value: Any) -> Any:
    """`value` with every spec's operationPolicy left out (a plan records the spec it carries out)."""
    if isinstance(value, Mapping):
        return {k: without_terms(v) for k, v in value.items() if k != "operationPolicy"}
    if isinstance(value, list):
        return [without_terms(v) for v in value]
    return value


def needs_history(spec: OperationSpec, policy: OperationPolicy | None) -> bool:
    """Whether a budget or a window asks for a prediction (the history is a list of the namespace)."""
    return spec.max_downtime_seconds is not None or (
        policy is not None and (policy.max_downtime_seconds is not None or bool(policy.maintenance_windows))
    )


async def history_of(kube: Kube, table: StepTable[Any], namespace: str) -> list[Operation]:
    """The namespace's recent successful runs of this table (what `kubectl bosun plan` times from)."""
    return dryrun.past_runs(table, [Operation.of(o) for o in await kube.list_labelled(namespace, "Operation")])


def downtime_estimate(table: StepTable[Any], history: list[Operation]) -> Estimate:
    return dryrun.estimate(d for d in (dryrun.downtime_of(run, table) for run in history) if d is not None)


async def facts_of(
    kube: Kube,
    plans: PlanSource,
    operation: Operation,
    status: OperationStatus,
    target: dict[str, Any],
    *,
    with_history: bool = True,
) -> terms.Facts:
    table, decision, summary = await plans.table_and_record(operation, status, target)
    history = await history_of(kube, table, operation.namespace) if with_history else []
    durations = [d for d in (dryrun.total_of(run) for run in history) if d is not None]
    return terms.Facts(
        stops_service=table.stops_service,
        has_downtime=bool(table.downtime_steps),
        irreversible=table.irreversible,
        predicted_downtime=downtime_estimate(table, history) if table.downtime_steps else None,
        predicted_duration=dryrun.estimate(durations),
        digest=digest_of(table, decision, operation, target),
        summary=summary,
    )


def live_spec(handle: Handle, fallback: OperationSpec) -> OperationSpec:
    try:
        return OperationSpec.model_validate(handle.body.get("spec") or {})
    except ValueError:
        return fallback


def verifiable(spec: OperationSpec, stamps_trusted: bool) -> OperationSpec:
    """The spec whose waivers count: without Bosun's admission policies nobody's right to waive a
    term (the verb approve) is checked, nor who did it recorded, so an override is not honoured."""
    if spec.override is None or stamps_trusted:
        return spec
    return spec.model_copy(update={"override": None})


def _annotation(handle: Handle, key: str) -> str:
    return str(((handle.body.get("metadata") or {}).get("annotations") or {}).get(key) or "")


def note_terms(
    status: OperationStatus,
    spec: OperationSpec,
    policy: OperationPolicy | None,
    facts: terms.Facts,
    handle: Handle,
    target_kind: str,
) -> bool:
    """Record budget, prediction, approval and override in status; True if the plan is approved."""
    budget, source = terms.budget_of(spec, policy, target_kind)
    if facts.has_downtime or budget is not None:
        status.downtime = DowntimeRecord(
            budget_seconds=budget,
            budget_from=source,
            predicted_seconds=terms.predicted(facts.predicted_downtime),
            predicted=facts.predicted_downtime,
        )
    if spec.override is not None and status.override is None:
        waived = [
            w
            for w, on in (
                ("MaintenanceWindow", spec.override.maintenance_window),
                ("DowntimeBudget", spec.override.downtime_budget),
            )
            if on
        ]
        status.override = OverrideStatus(
            by=_annotation(handle, OVERRIDDEN_BY), reason=spec.override.reason, waived=waived, at=stamp()
        )
    needs = bool(policy and policy.require_approval) and (facts.stops_service or bool(facts.irreversible))
    if not needs:
        return False
    approval = status.approval or ApprovalStatus()
    if approval.plan != facts.digest:  # a new plan: an approval of another one does not hold
        approval = ApprovalStatus(plan=facts.digest, summary=facts.summary)
    given = spec.approval.plan if spec.approval else ""
    approver = _annotation(handle, APPROVED_BY)
    if not approval.approved_by and given == facts.digest and approver:
        approval.approved_by, approval.approved_at = approver, stamp()
    status.approval = approval
    return bool(approval.approved_by)


MAX_HOLD_SECONDS = 14 * 86400.0  # two weekly windows: a hold that outlasts them holds the target's queue for nothing


@dataclass
class HoldOutcome:
    target: dict[str, Any] | None  # None: the operation ended while held
    waited: bool


class Holds:
    """Waits out the target's terms for one operation at a time (see the module's docstring)."""

    def __init__(
        self,
        kube: Kube,
        plans: PlanSource,
        *,
        poll_seconds: float = 1.0,
        recheck_seconds: float = 10.0,
        stamps_trusted: bool = True,
        max_hold_seconds: float = MAX_HOLD_SECONDS,
    ):
        self.kube = kube
        self.plans = plans
        self.poll_seconds = poll_seconds
        self.recheck_seconds = recheck_seconds
        # Bosun's admission policies stamp who approved; without them nobody's approval can be believed.
        self.stamps_trusted = stamps_trusted
        self.max_hold_seconds = max_hold_seconds

    async def wait(
        self,
        operation: Operation,
        status: OperationStatus,
        handle: Handle,
        journal: Journal,
        target: dict[str, Any],
        release: Any,
    ) -> HoldOutcome:
        """Return once the operation may start (or ended); call `release()` before a long wait."""
        kind = operation.spec.target.kind.value
        facts: terms.Facts | None = None
        seen: tuple[Any, ...] = ()
        looked = 0.0
        waited = False
        loop = asyncio.get_running_loop()
        while True:
            if handle.cancel_requested():
                waiting = status.reason or "for its terms"
                message = f"cancelled while it waited ({waiting}), by {handle.cancelled_by()}: nothing was changed"
                status.starts_at = None
                record.end_without_running(status, stamp(), phase=Phase.CANCELLED, reason="Cancelled", message=message)
                journal.info(message)
                await handle.save(status)
                return HoldOutcome(None, waited)
            spec = verifiable(live_spec(handle, operation.spec), self.stamps_trusted)
            policy = policy_of(target)
            meta = target.get("metadata") or {}
            key = (meta.get("uid"), meta.get("generation"))
            if facts is None or key != seen or loop.time() - looked > 30 * self.recheck_seconds:
                try:
                    facts = await facts_of(
                        self.kube, self.plans, operation, status, target, with_history=needs_history(spec, policy)
                    )
                except TransientError as error:
                    logger.warning("held operation %s waits for the API server: %s", operation.name, error)
                    await asyncio.sleep(self.poll_seconds)
                    continue
                except PermanentError as refused:
                    message = f"refused before any change: {refused}"
                    record.end_without_running(
                        status, stamp(), phase=Phase.FAILED, reason=refused.reason, message=message
                    )
                    journal.warning(message)
                    await handle.save(status)
                    return HoldOutcome(None, waited)
                seen, looked = key, loop.time()
            approved = note_terms(status, spec, policy, facts, handle, kind)
            verdict = terms.decide(now(), spec, policy, facts, target_kind=kind, approved=approved)
            verdict = self._bounded(verdict, operation, status, policy, facts)
            if verdict.fail:
                status.starts_at = None
                record.end_without_running(
                    status, stamp(), phase=Phase.FAILED, reason=verdict.reason, message=verdict.message
                )
                journal.warning(verdict.message)
                await handle.save(status)
                return HoldOutcome(None, waited)
            if verdict.go:
                if waited or status.reason in HOLD_REASONS:
                    status.reason, status.starts_at = "", None
                    status.deadline = stamp(now() + timedelta(seconds=operation.spec.timeout_seconds))
                    status.message = f"its terms are met: starting; fails at {status.deadline} if not finished"
                    journal.info("its terms are met (" + _met(status) + "): starting")
                await handle.save(status)  # the prediction, approval and override, before the first step
                return HoldOutcome(target, waited)
            starts_at = terms.stamp_of(verdict.starts_at) if verdict.starts_at else None
            if (status.reason, status.message, status.starts_at) != (
                verdict.reason,
                verdict.message,
                starts_at,
            ) or not waited:
                status.phase = Phase.PENDING
                status.reason, status.message, status.starts_at = verdict.reason, verdict.message, starts_at
                journal.info(verdict.message)
                await handle.save(status)
            if not waited:
                release()
                waited = True
            target = await self._next_look(operation, target, handle, verdict)
            if not target:
                message = f"{kind} {operation.spec.target.name!r} no longer exists: nothing was changed"
                status.starts_at = None
                record.end_without_running(
                    status, stamp(), phase=Phase.FAILED, reason="TargetNotFound", message=message
                )
                journal.warning(message)
                await handle.save(status)
                return HoldOutcome(None, waited)

    def _bounded(
        self,
        verdict: terms.Verdict,
        operation: Operation,
        status: OperationStatus,
        policy: OperationPolicy | None,
        facts: terms.Facts,
    ) -> terms.Verdict:
        """No approval without trusted stamps, and no hold longer than `max_hold_seconds`: a held
        operation keeps its place in the target's queue, so one that waits forever wedges it."""
        if verdict.reason == AWAITING_APPROVAL and not self.stamps_trusted:
            return terms.Verdict(
                go=False,
                fail=True,
                reason="ApprovalUnverifiable",
                message="this target requires approval, but Bosun's admission policies are not installed "
                "(admissionPolicies.enabled): nobody's approval could be verified; nothing was changed",
            )
        if verdict.go or verdict.fail or not operation.created:
            return verdict
        limit = parse_time(operation.created) + timedelta(seconds=self.max_hold_seconds)
        if (verdict.starts_at and verdict.starts_at > limit) or now() > limit:
            return terms.Verdict(
                go=False,
                fail=True,
                reason="HeldTooLong",
                message=f"{verdict.message}: past {terms.stamp_of(limit)}, {self.max_hold_seconds / 86400:.0f} days "
                "after it was created, it would still not start; nothing was changed "
                "(its place in the queue is given up)",
            )
        return verdict

    async def _next_look(
        self, operation: Operation, target: dict[str, Any], handle: Handle, verdict: terms.Verdict
    ) -> dict[str, Any]:
        """Sleep until something may have changed: the live Operation (approval, override, cancel)
        is looked at every poll; the target is read again every `recheck_seconds`."""
        body = repr((handle.body.get("spec"), (handle.body.get("metadata") or {}).get("annotations")))
        waited = 0.0
        until = (verdict.starts_at - now()).total_seconds() if verdict.starts_at else None
        while waited < self.recheck_seconds:
            if until is not None and waited >= until:
                break
            await asyncio.sleep(self.poll_seconds)
            waited += self.poll_seconds
            if handle.cancel_requested():
                return target
            if repr((handle.body.get("spec"), (handle.body.get("metadata") or {}).get("annotations"))) != body:
                break
        while True:
            try:
                found = await self.kube.read(
                    operation.namespace, operation.spec.target.kind.value, operation.spec.target.name
                )
                return found or {}
            except TransientError as error:
                logger.warning("held operation %s waits for the API server: %s", operation.name, error)
                await asyncio.sleep(self.poll_seconds)


async def predicted_downtime(kube: Kube, table: StepTable[Any], namespace: str) -> Estimate:
    """The downtime the namespace's recent runs of this table had (the last look before a stop)."""
    return downtime_estimate(table, await history_of(kube, table, namespace))


def _met(status: OperationStatus) -> str:
    parts = []
    if status.approval and status.approval.approved_by:
        parts.append(f"plan {status.approval.plan} approved by {status.approval.approved_by}")
    if status.override:
        parts.append(f"{' and '.join(status.override.waived)} waived by {status.override.by or 'unknown'}")
    return "; ".join(parts) or "the window is open"
