"""The Operation resource: one change to one App or Database, and the record of how it went.

The status is the operation's memory. The engine writes each step's state before the step acts
and after it ends, so an operator that dies at any instant can tell, on restart, which steps
finished, which one was in flight, and what must be resumed or undone.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field

from bosun.models.backup import BackupMethod
from bosun.models.base import (
    SPEC_TEXT_CHARS,
    UNIQUE_BY_NAME,
    Condition,
    EnvVar,
    KubeModel,
    Resources,
    env_text,
    quantity_rule,
)
from bosun.models.names import FINISHED_PHASES

DEFAULT_TIMEOUT_SECONDS = 1800


class TargetKind(StrEnum):
    APP = "App"
    DATABASE = "Database"


class OperationType(StrEnum):
    DEPLOY = "deploy"
    CONFIGURE = "configure"
    SCALE = "scale"
    RESTART = "restart"
    PROVISION = "provision"
    DEPROVISION = "deprovision"
    REDEPLOY = "redeploy"
    RESIZE = "resize"
    BACKUP = "backup"


APP_TYPES = frozenset({"deploy", "configure", "scale", "restart", "deprovision"})
DATABASE_TYPES = frozenset({"provision", "deprovision", "restart", "scale", "redeploy", "resize", "backup"})


class Phase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    ROLLING_BACK = "RollingBack"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self.value in FINISHED_PHASES


class StepState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    UNDOING = "Undoing"
    UNDONE = "Undone"
    UNDO_FAILED = "UndoFailed"
    NOT_UNDONE = "NotUndone"


class RollbackState(StrEnum):
    NOT_NEEDED = "NotNeeded"
    NOT_APPLICABLE = "NotApplicable"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ProcessScale(KubeModel):
    """New size of one App process."""

    name: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Process name, as in the App's spec.processes.",
    )
    replicas: int | None = Field(default=None, ge=0, le=1000, description="New replica count.")
    resources: Resources | None = Field(default=None, description="New CPU/memory requests and limits.")


class OperationParameters(KubeModel):
    """What the operation changes. Which fields are required depends on spec.type."""

    image: str | None = Field(default=None, max_length=1024, description="deploy: the new image.")
    env: list[EnvVar] | None = Field(
        default=None, max_length=256, description="deploy, configure: the new environment (replaces it)."
    )
    processes: list[ProcessScale] | None = Field(
        default=None,
        max_length=32,
        description="scale (App): new replicas/resources per process; names are unique.",
        json_schema_extra=UNIQUE_BY_NAME,
    )
    resources: Resources | None = Field(default=None, description="scale (Database): new resources.")
    node: str | None = Field(
        default=None, max_length=253, description="redeploy: the node to move to (Bosun picks when unset)."
    )
    volume_size: str | None = Field(
        default=None,
        max_length=64,
        description="resize: the new volume size.",
        json_schema_extra=quantity_rule("parameters.volumeSize"),
    )
    method: BackupMethod | None = Field(
        default=None,
        description="backup: VolumeSnapshot (the default: a snapshot of the volume) or Dump (a logical dump "
        "by the engine's own tool, kept in the operator's object store).",
    )


class TargetRef(KubeModel):
    """The App or Database the operation changes, in the Operation's own namespace."""

    kind: TargetKind = Field(description="App or Database.")
    name: str = Field(min_length=1, max_length=253, description="Name of the App or Database.")


class Override(KubeModel):
    """Terms of the target waived for this operation, by whom the API server records, and why."""

    maintenance_window: bool = Field(default=False, description="Start now, outside the maintenance windows.")
    downtime_budget: bool = Field(default=False, description="Run even if predicted over the downtime budget.")
    reason: str = Field(min_length=1, max_length=1024, description="Why (recorded with who asked).")


class Approval(KubeModel):
    """An approval of one plan (kubectl bosun approve): it holds only while the plan is the same."""

    plan: str = Field(
        min_length=1, max_length=64, description="The digest of the plan approved (status.approval.plan)."
    )


# CEL rules on OperationSpec: refused at admission, with messages a person understands.
_TYPE_FOR_KIND = (
    f"self.target.kind == 'App' ? self.type in {sorted(APP_TYPES)!r} : self.type in {sorted(DATABASE_TYPES)!r}"
)
OPERATION_SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": _TYPE_FOR_KIND,
        "message": "this type does not apply to this target kind: an App takes deploy, configure, "
        "scale, restart or deprovision; a Database takes provision, deprovision, restart, scale, "
        "redeploy, resize or backup",
    },
    {
        "rule": "self.type != 'deploy' || (has(self.parameters) && "
        "(has(self.parameters.image) || has(self.parameters.env)))",
        "message": "a deploy needs parameters.image and/or parameters.env",
    },
    {
        "rule": "self.type != 'configure' || (has(self.parameters) && has(self.parameters.env))",
        "message": "a configure needs parameters.env",
    },
    {
        "rule": "self.type != 'scale' || (has(self.parameters) && "
        "(self.target.kind == 'App' ? has(self.parameters.processes) : has(self.parameters.resources)))",
        "message": "a scale needs parameters.processes (App) or parameters.resources (Database)",
    },
    {
        "rule": "self.type != 'resize' || (has(self.parameters) && has(self.parameters.volumeSize))",
        "message": "a resize needs parameters.volumeSize",
    },
    {
        "rule": "!has(self.parameters) || "
        "((!has(self.parameters.image) || self.type == 'deploy') && "
        "(!has(self.parameters.env) || self.type in ['deploy', 'configure']) && "
        "(!has(self.parameters.processes) || (self.type == 'scale' && self.target.kind == 'App')) && "
        "(!has(self.parameters.resources) || (self.type == 'scale' && self.target.kind == 'Database')) && "
        "(!has(self.parameters.node) || self.type == 'redeploy') && "
        "(!has(self.parameters.volumeSize) || self.type == 'resize') && "
        "(!has(self.parameters.method) || (self.type == 'backup' && self.target.kind == 'Database')))",
        "message": "a parameter was given that this type does not take (image: deploy; env: deploy, "
        "configure; processes: App scale; resources: Database scale; node: redeploy; volumeSize: resize; "
        "method: Database backup)",
    },
    {
        "rule": "self.target == oldSelf.target && self.type == oldSelf.type && "
        "has(self.parameters) == has(oldSelf.parameters) && "
        "(!has(self.parameters) || self.parameters == oldSelf.parameters) && "
        "self.timeoutSeconds == oldSelf.timeoutSeconds && "
        "has(self.maxDowntimeSeconds) == has(oldSelf.maxDowntimeSeconds) && "
        "(!has(self.maxDowntimeSeconds) || self.maxDowntimeSeconds == oldSelf.maxDowntimeSeconds) && "
        "has(self.notBefore) == has(oldSelf.notBefore) && "
        "(!has(self.notBefore) || self.notBefore == oldSelf.notBefore)",
        "message": "an Operation cannot be changed once created, except to set spec.cancel: true, approve it "
        "(spec.approval) or waive a term (spec.override); create a new Operation instead",
    },
    {
        "rule": "!has(oldSelf.override) || (has(self.override) && self.override == oldSelf.override)",
        "message": "spec.override cannot change once given: it is the record of who waived what, and why",
    },
    {
        "rule": "!has(self.override) || self.override.maintenanceWindow || self.override.downtimeBudget",
        "message": "spec.override waives nothing: set maintenanceWindow and/or downtimeBudget to true",
    },
    {
        "rule": "self.dryRun == oldSelf.dryRun",
        "message": "spec.dryRun cannot be changed: create a new Operation instead",
    },
    {
        "rule": "!has(self.proposed) || self.dryRun",
        "message": "spec.proposed is for dry runs only (spec.dryRun: true); to change the target, edit it",
    },
    {
        "rule": f"!has(self.parameters) || {env_text('self.parameters.env')} <= {SPEC_TEXT_CHARS}",
        "message": f"parameters.env holds over {SPEC_TEXT_CHARS} characters in all: Bosun records every "
        "operation, so its parameters must stay small",
    },
    {
        "rule": "!oldSelf.cancel || self.cancel",
        "message": "spec.cancel cannot go back to false: a cancelled operation stays cancelled",
    },
]


class OperationSpec(KubeModel):
    """One change to one App or Database. Immutable once created, but for spec.cancel."""

    target: TargetRef = Field(description="The App or Database to change, in this namespace.")
    type: OperationType = Field(description="What to do.")
    parameters: OperationParameters | None = Field(default=None, description="What to change.")
    cancel: bool = Field(
        default=False,
        description="Set to true to cancel: a running operation is rolled back, a queued one ends.",
    )
    timeout_seconds: int = Field(
        default=DEFAULT_TIMEOUT_SECONDS,
        ge=10,
        le=86400,
        description="Deadline for the whole operation; past it the operation fails and rolls back.",
    )
    dry_run: bool = Field(
        default=False,
        description="Plan and check only: report the steps, refusals, expected durations and downtime, "
        "and change nothing. Never queues behind or blocks other operations.",
    )
    max_downtime_seconds: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="Downtime budget: refused (Failed, DowntimeBudget) before any change if predicted to stop the "
        "service longer; default: the target's spec.operationPolicy.maxDowntimeSeconds.",
    )
    not_before: str | None = Field(
        default=None,
        max_length=64,
        description="Do not start before this time (RFC 3339); the operation waits Pending until then.",
        json_schema_extra={"format": "date-time"},
    )
    override: Override | None = Field(
        default=None,
        description="Waive the target's maintenance windows and/or downtime budget for this operation, saying why; "
        "who set it is recorded. Cannot change once given.",
    )
    approval: Approval | None = Field(
        default=None,
        description="Set by kubectl bosun approve: approves the plan with this digest. Needs the RBAC verb approve "
        "on operations; who approved is recorded.",
    )
    proposed: dict[str, Any] | None = Field(
        default=None,
        description="Dry runs only: the target's spec as it would be after an edit (kubectl bosun plan -f), "
        "planned instead of the spec in the cluster; the target need not exist yet.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class StepStatus(KubeModel):
    """One step of the operation, as recorded while it runs."""

    name: str = Field(description="Step name.")
    description: str = Field(default="", description="What the step does.")
    state: StepState = Field(default=StepState.PENDING, description="Where the step is.")
    started_at: str | None = Field(default=None, description="When it started (RFC 3339).")
    finished_at: str | None = Field(default=None, description="When it ended (RFC 3339).")
    attempts: int = Field(default=0, description="How many times its run was started.")
    message: str = Field(default="", description="What happened, or why it failed.")
    undo_started_at: str | None = Field(default=None, description="When its undo started.")
    undo_finished_at: str | None = Field(default=None, description="When its undo ended.")


class NotUndone(KubeModel):
    """A step whose change stays in place after the rollback, and why."""

    step: str = Field(description="Step name.")
    reason: str = Field(description="Why it could not be undone.")


class RollbackStatus(KubeModel):
    """The rollback outcome: is the system back as it was?"""

    state: RollbackState = Field(description="NotNeeded, NotApplicable, Running, Succeeded or Failed.")
    undone: list[str] = Field(default_factory=list, description="Steps undone, in the order undone.")
    not_undone: list[NotUndone] = Field(default_factory=list, description="Steps whose change stays, with the reason.")
    message: str = Field(default="", description="The rollback in one sentence.")


class Initiator(KubeModel):
    """Who asked for the operation, where it is known."""

    username: str = Field(default="", description="Kubernetes user name (or service account).")
    kind: str = Field(default="", description="User, ServiceAccount, or Bosun (created from a spec edit).")
    source: str = Field(default="", description="How it was asked: Operation, AppSpec, DatabaseSpec.")
    manager: str = Field(default="", description="The client that made the change (its field manager).")
    generation: int | None = Field(
        default=None, description="For a spec edit: the App's or Database's generation it carries out."
    )
    edit_part: str = Field(default="", description="For a spec edit: this is operation i of the n it made (i/n).")


class OperationLogStatus(KubeModel):
    """Where the operation's whole log is, and its last lines."""

    url: str = Field(default="", description="The whole log in the log store (s3:// or file://).")
    lines: list[str] = Field(default_factory=list, description="The last lines: time, level, message.")
    total: int = Field(default=0, description="How many lines the log has in all.")


class Estimate(KubeModel):
    """How long something took the last times it ran in this namespace (no runs: no guess)."""

    runs: int = Field(default=0, description="How many past runs the figures come from (0: no history).")
    median_seconds: float | None = Field(default=None, description="Median of those runs.")
    best_seconds: float | None = Field(default=None, description="The shortest of those runs.")
    worst_seconds: float | None = Field(default=None, description="The longest of those runs.")
    confidence: str = Field(
        default="", description="high from 5 runs on, else low (a range from so few runs says little)."
    )


class PlannedStep(KubeModel):
    """One step a dry run found the real operation would run."""

    name: str = Field(description="Step name, as the real operation would record it.")
    description: str = Field(default="", description="What the step does.")
    checked: str = Field(default="", description="What its read-only check found (empty: it has no check).")
    refusal: str = Field(default="", description="The refusal the real run would hit here, in its words.")
    irreversible: str = Field(default="", description="Why this step cannot be undone (empty: it can be).")
    expected: Estimate = Field(default_factory=Estimate, description="Its duration in past runs.")


class DryRunReport(KubeModel):
    """What a dry run found: the real operation's plan, checks, refusals and expected timings."""

    plan: str = Field(default="", description="What the operation would do, in one sentence.")
    steps: list[PlannedStep] = Field(default_factory=list, description="The steps, in order.")
    refusals: list[str] = Field(default_factory=list, description="Refusals the real run would hit.")
    expected_seconds: Estimate = Field(default_factory=Estimate, description="Whole operation, past runs.")
    downtime: str = Field(default="", description="The downtime to expect, in words.")
    expected_downtime: Estimate | None = Field(
        default=None, description="Downtime in past runs (absent: the operation causes none)."
    )
    irreversible: list[str] = Field(default_factory=list, description="What could not be undone, and why.")
    waits_behind: str = Field(default="", description="The operation the real one would queue behind now.")
    terms: list[str] = Field(
        default_factory=list, description="What the target's terms would do: budget, window, approval."
    )


class DowntimeRecord(KubeModel):
    """The downtime budget, what was predicted before the stop, and what was measured after it."""

    budget_seconds: int | None = Field(default=None, description="The budget (absent: none).")
    budget_from: str = Field(default="", description="Where the budget comes from: Operation, App or Database.")
    predicted_seconds: float | None = Field(
        default=None, description="Predicted downtime: the worst of the recent runs (absent: no history)."
    )
    predicted: Estimate | None = Field(default=None, description="The prediction, with how many runs it rests on.")
    measured_seconds: float | None = Field(default=None, description="The downtime measured, once it ended.")
    within_budget: bool | None = Field(default=None, description="Measured within the budget (absent: not known).")


class ApprovalStatus(KubeModel):
    """The plan awaiting approval, and who approved it."""

    plan: str = Field(default="", description="Digest of the plan to approve (kubectl bosun approve takes it).")
    summary: str = Field(default="", description="The plan in one sentence.")
    approved_by: str = Field(default="", description="Who approved it, as the API server recorded.")
    approved_at: str | None = Field(default=None, description="When Bosun saw the approval.")


class OverrideStatus(KubeModel):
    """A waived term, as recorded."""

    by: str = Field(default="", description="Who asked, as the API server recorded.")
    reason: str = Field(default="", description="Why.")
    waived: list[str] = Field(default_factory=list, description="MaintenanceWindow and/or DowntimeBudget.")
    at: str | None = Field(default=None, description="When Bosun saw it.")


class OperationStatus(KubeModel):
    """The record of the operation, written only by Bosun."""

    phase: Phase = Field(default=Phase.PENDING, description="Where the operation is.")
    message: str = Field(default="", description="The latest news, in one sentence.")
    reason: str = Field(default="", description="Why it ended as it did, in one CamelCase word.")
    steps: list[StepStatus] = Field(default_factory=list, description="Each step's state and timing.")
    progress: str = Field(default="", description="Steps done out of all steps, as n/m.")
    rollback: RollbackStatus | None = Field(default=None, description="The rollback outcome.")
    started_at: str | None = Field(default=None, description="When it started running.")
    finished_at: str | None = Field(default=None, description="When it ended.")
    initiator: Initiator | None = Field(default=None, description="Who asked for it.")
    queued_behind: str = Field(default="", description="The operation it waits for, when queued.")
    observed_generation: int | None = Field(default=None, description="The spec generation seen.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Reconciling, Stalled.")
    log: OperationLogStatus | None = Field(default=None, description="The operation's log: where, and its tail.")
    sequence: int | None = Field(
        default=None,
        description="Its place in its target's queue, fixed when Bosun first sees it (creation order).",
    )
    plan: str | None = Field(
        default=None,
        max_length=262144,
        description="What Bosun decided to do (JSON), stored before the first step so a restart resumes "
        "or undoes exactly that change. Written only by Bosun.",
    )
    read_only: bool | None = Field(
        default=None,
        description="True when its step table changes nothing of its target (a backup): the target stays as Ready "
        "as it was. Stored with the plan, so that whoever mirrors the end (a restarted operator) knows it.",
    )
    deadline: str | None = Field(
        default=None, description="When the operation fails if not finished: creation time plus spec.timeoutSeconds."
    )
    archived: str | None = Field(
        default=None, description="Where the finished operation's record is archived, once it is."
    )
    dry_run: DryRunReport | None = Field(default=None, description="A dry run's findings (spec.dryRun).")
    starts_at: str | None = Field(
        default=None, description="While it waits (WaitingForWindow, NotBefore): when it may start."
    )
    downtime: DowntimeRecord | None = Field(default=None, description="Budget, predicted and measured downtime.")
    approval: ApprovalStatus | None = Field(default=None, description="The approval asked for, and given.")
    override: OverrideStatus | None = Field(default=None, description="The terms waived, by whom and why.")
    notified: list[str] | None = Field(
        default=None,
        description="Events delivered to the namespace's Notifiers (notifier/event; given-up: when never delivered). "
        "Written only by Bosun's notifier, never with the rest of the status.",
    )


class Operation(KubeModel):
    """An Operation object as read from the API: identity, spec and status, typed."""

    name: str
    namespace: str
    uid: str = ""
    generation: int | None = None
    created: str = ""
    resource_version: str = ""
    deleting: bool = False
    annotations: dict[str, str] = Field(default_factory=dict)
    spec: OperationSpec
    status: OperationStatus

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Operation:
        meta = body.get("metadata") or {}
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""),
            generation=meta.get("generation"),
            created=meta.get("creationTimestamp") or "",
            resource_version=meta.get("resourceVersion") or "",
            deleting=bool(meta.get("deletionTimestamp")),
            annotations=dict(meta.get("annotations") or {}),
            spec=OperationSpec.model_validate(body.get("spec") or {}),
            status=OperationStatus.model_validate(body.get("status") or {}),
        )

    @property
    def sequence(self) -> int:
        """Its place among operations created in the same second: fixed in status at first sight.

        Until the operator records it, the current resourceVersion stands in; it is the value the
        operator then records, so every reader orders the operation the same way.
        """
        if self.status.sequence is not None:
            return self.status.sequence
        return int(self.resource_version) if self.resource_version.isdigit() else 0

    @property
    def queue_key(self) -> tuple[str, int, str]:
        return (self.created, self.sequence, self.name)

    @property
    def cancel_requested(self) -> bool:
        """Cancelled by spec.cancel, or by deleting the Operation (deletion means cancel)."""
        return self.spec.cancel or self.deleting
