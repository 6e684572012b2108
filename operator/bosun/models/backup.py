"""The Backup resource: the record of one backup of a Database, which outlives the operation.

Why a resource of its own, and not a list in the Database's status: a backup must outlive its
Database (the point of one taken before a deprovision that deletes the volume), people want
`kubectl get backups` and RBAC on them per namespace, and a restore names one. The record owns
its VolumeSnapshot (an ownerReference), so deleting a Backup, by hand or by retention, lets
Kubernetes' garbage collector delete the snapshot, and with the class's Delete policy its data.

Only the operator creates Backups (the ClusterRoles give people get, list, watch and delete, never
create or update): a Backup is a record of what Bosun did, and a restore trusts it. Its spec is
fixed at creation (a CEL rule); its status says whether the snapshot is ready to restore from.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from bosun.models.base import KubeModel
from bosun.models.database import BackupMethod as BackupMethod  # defined beside the policy that names it
from bosun.models.database import Engine

BACKUP_SPEC_RULES: list[dict[str, str]] = [
    {"rule": "self == oldSelf", "message": "a Backup is a record: its spec cannot change"},
]


class BackupTrigger(StrEnum):
    ON_DEMAND = "OnDemand"  # an Operation of type backup someone created (kubectl bosun backup)
    SCHEDULED = "Scheduled"  # the Database's spec.backup.schedule
    BEFORE_CHANGE = "BeforeChange"  # the first step of a change that cannot be undone


class BackupPhase(StrEnum):
    PENDING = "Pending"  # the snapshot is being taken
    COMPLETED = "Completed"  # ready to restore from


class BackupSpec(KubeModel):
    """What was backed up, how, and by which operation (written once, by Bosun)."""

    database: str = Field(min_length=1, max_length=253, description="The Database backed up.")
    database_uid: str = Field(default="", max_length=64, description="Its uid (a later Database may reuse the name).")
    engine: Engine = Field(description="The engine whose data this is.")
    version: str = Field(default="", max_length=32, description="The engine version that wrote it.")
    method: BackupMethod = Field(
        default=BackupMethod.VOLUME_SNAPSHOT, description="How: VolumeSnapshot, or Dump (a logical dump)."
    )
    location: str | None = Field(
        default=None, max_length=2048, description="Dump: where the dump is kept (the operator's object store)."
    )
    trigger: BackupTrigger = Field(
        default=BackupTrigger.ON_DEMAND, description="Why: OnDemand, Scheduled or BeforeChange."
    )
    operation: str = Field(default="", max_length=253, description="The Operation that took it.")
    volume_snapshot_class_name: str = Field(default="", max_length=253, description="The snapshot's class.")
    consistency: str = Field(
        default="",
        max_length=1024,
        description="What the data is consistent as of, for its engine (e.g. a checkpoint, then a crash-consistent "
        "snapshot: PostgreSQL replays its WAL on restore).",
    )


class BackupStatus(KubeModel):
    """Whether the backup can be restored from."""

    phase: BackupPhase | None = Field(default=None, description="Pending or Completed.")
    snapshot: str = Field(default="", description="The VolumeSnapshot holding the data.")
    size: str = Field(default="", description="The snapshot's restore size (the smallest volume it fits).")
    started_at: str = Field(default="", description="When the snapshot was asked for.")
    completed_at: str = Field(default="", description="When the snapshot was ready to restore from.")
    message: str = Field(default="", description="Where it is, or what went wrong.")
