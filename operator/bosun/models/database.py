"""The Database resource: one engine instance on one node, its data on a PersistentVolumeClaim."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from bosun.models.base import (
    DNS_LABEL,
    LABELS,
    Condition,
    KubeModel,
    LabelValue,
    LastOperation,
    Resources,
    TargetPhase,
    Toleration,
    quantity_rule,
)
from bosun.models.terms import OperationPolicy, zone_rule

DATABASE_RULES: list[dict[str, str]] = [
    {
        "rule": f"self.metadata.name.matches('{DNS_LABEL}') && size(self.metadata.name) <= 48",
        "message": "a Database's name must be at most 48 characters, start with a letter and hold only "
        "lowercase letters, digits and '-' (it names its Service, pods and volume claim)",
    },
]
DATABASE_SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": "self.engine == oldSelf.engine",
        "message": "spec.engine cannot change: the data on the volume belongs to its engine; "
        "create a new Database instead",
    },
    {
        "rule": "has(self.source) == has(oldSelf.source) && (!has(self.source) || self.source == oldSelf.source)",
        "message": "spec.source cannot change: a Database is restored from a backup once, when it is created",
    },
    {
        "rule": "(has(self.storage) && has(self.storage.storageClassName) ? self.storage.storageClassName : '') == "
        "(has(oldSelf.storage) && has(oldSelf.storage.storageClassName) ? oldSelf.storage.storageClassName : '')",
        "message": "spec.storage.storageClassName cannot change: a volume keeps its class",
    },
]


class Engine(StrEnum):
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    REDIS = "redis"


class VolumeReclaim(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class Storage(KubeModel):
    """The database's volume."""

    size: str = Field(
        default="1Gi", max_length=64, description="Volume size, e.g. 10Gi.", json_schema_extra=quantity_rule("size")
    )
    storage_class_name: str | None = Field(
        default=None, max_length=253, description="StorageClass (default class when unset); cannot change."
    )
    reclaim: VolumeReclaim = Field(
        default=VolumeReclaim.RETAIN,
        description="What deprovision does with the volume: Retain keeps it, Delete removes it.",
    )


class Placement(KubeModel):
    """Where the database may run."""

    node: str | None = Field(default=None, max_length=253, description="A node name.")
    node_selector: dict[str, LabelValue] | None = Field(
        default=None, description="Node labels to match.", json_schema_extra=LABELS
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        max_length=16,
        description="Taints the database tolerates (read by the next operation that starts its pod).",
    )

    def tolerates(self, taint: dict[str, str]) -> bool:
        return any(t.tolerates(taint) for t in self.tolerations or [])


CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    r"([0-9A-Za-z*,/?-]+[ \t]+){4}[0-9A-Za-z*,/?-]+)$"
)


class BackupRetention(KubeModel):
    """Which scheduled backups are kept. The newest completed backup is never pruned."""

    count: int | None = Field(default=None, ge=1, le=1000, description="Keep the newest N scheduled backups.")
    max_age_days: int | None = Field(
        default=None, ge=1, le=3650, description="Delete scheduled backups older than this many days."
    )


class BackupMethod(StrEnum):
    VOLUME_SNAPSHOT = "VolumeSnapshot"  # a CSI snapshot of the data volume
    DUMP = "Dump"  # a logical dump (pg_dump, mysqldump, RDB), streamed by the operator into its object store


class BackupPolicy(KubeModel):
    """When Bosun backs the Database up by itself, and for how long it keeps those backups."""

    schedule: str | None = Field(
        default=None,
        max_length=128,
        pattern=CRON,
        description="cron (5 fields, or @daily, @hourly...), e.g. '0 3 * * *': a backup Operation is created at "
        "each time; one missed while the operator was down is made once when it is back, never a burst.",
    )
    time_zone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone of the schedule, e.g. Europe/Paris.",
        json_schema_extra=zone_rule(),
    )
    method: BackupMethod = Field(
        default=BackupMethod.VOLUME_SNAPSHOT,
        description="How the schedule backs up: VolumeSnapshot (the default), or Dump (the engine's logical dump, "
        "kept in the operator's object store).",
    )
    retention: BackupRetention | None = Field(
        default=None, description="Which scheduled backups to keep (default: all, until deleted)."
    )
    before_changes: bool = Field(
        default=True,
        description="Back up first, as the first step of every change that cannot be undone (a resize, a version "
        "change, a deprovision that deletes the volume); false opts out, and each such operation says so.",
    )


class DatabaseSource(KubeModel):
    """What a new Database starts from instead of an empty volume."""

    backup: str = Field(
        min_length=1,
        max_length=253,
        description="A Backup in this namespace (kubectl bosun backups db/NAME): its snapshot becomes the new "
        "volume. It must be Completed, of the same engine and version, and fit spec.storage.size.",
    )


class DatabaseSpec(KubeModel):
    """The desired state of a Database. Editing it makes Bosun run the matching Operation."""

    engine: Engine = Field(description="postgresql, mysql or redis.")
    version: str = Field(min_length=1, max_length=32, description="Engine version, e.g. 16 or 8.0.")
    image: str | None = Field(
        default=None,
        max_length=512,
        description="The image to run, e.g. a private registry's copy (default: the install's database "
        "registry, then <engine image>:<version>, e.g. postgres:16); changing it restarts the database.",
    )
    storage: Storage = Field(default_factory=Storage, description="The data volume.")
    resources: Resources | None = Field(default=None, description="CPU/memory requests and limits.")
    placement: Placement | None = Field(default=None, description="Node or node selector.")
    min_ready_seconds: int = Field(
        default=5,
        ge=0,
        le=600,
        description="How long a new database pod must stay Ready before an operation counts it as started.",
    )
    backup: BackupPolicy | None = Field(
        default=None,
        description="Scheduled backups, their retention, and backups before changes that cannot be undone; "
        "takes effect without an operation of its own.",
    )
    source: DatabaseSource | None = Field(
        default=None,
        description="Restore: provision from a Backup instead of an empty volume (never over a live Database); "
        "cannot change.",
    )
    operation_policy: OperationPolicy | None = Field(
        default=None,
        description="Downtime budget, maintenance windows and approval for operations on this Database; "
        "takes effect without an operation of its own.",
    )


class VolumeRef(KubeModel):
    """The volume holding the data."""

    claim_name: str = Field(description="PersistentVolumeClaim.")
    volume_name: str = Field(default="", description="Bound PersistentVolume.")
    capacity: str = Field(default="", description="Capacity reported by the claim.")


class DatabaseStatus(KubeModel):
    """What Bosun observed of the Database."""

    phase: TargetPhase | None = Field(default=None, description="Pending, Running or Deprovisioned.")
    observed_generation: int | None = Field(default=None, description="The spec generation seen.")
    engine: str = Field(default="", description="Engine running.")
    version: str = Field(default="", description="Version running.")
    node: str = Field(default="", description="Node the database pod runs on.")
    volume: VolumeRef | None = Field(default=None, description="The bound volume.")
    endpoint: str = Field(default="", description="host:port of its Service.")
    running: DatabaseSpec | None = Field(
        default=None, description="The spec the running pod was made from (what an undo brings back)."
    )
    last_move_downtime_seconds: float | None = Field(
        default=None, description="Downtime of the last redeploy: from stopping the old pod to the new one Ready."
    )
    last_operation: LastOperation | None = Field(default=None, description="The newest operation.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Reconciling, Stalled.")
