"""The one writer of Backup records (`bosun.dev/Backup`): create, mark completed, delete, list.

A backup operation's steps say what changes (a record for this snapshot, the snapshot is ready);
this module writes it, the way `engine.target` writes an App's or a Database's status: re-read,
apply, skip the write when nothing changed. Records are created by the operator only: the
ClusterRoles give people get, list, watch and delete. A record owns its VolumeSnapshot, so deleting
it (by hand, or by retention) lets the garbage collector delete the snapshot too. A logical dump
lives in the operator's object store, where no garbage collector reaches: its record's deletion
waits (Kopf's finalizer, `bosun.handlers`) until `forget_dump` has deleted the object.
"""

from __future__ import annotations

from typing import Any

from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube, NotFound
from bosun.kube_status import StatusWrites
from bosun.models.backup import BackupMethod, BackupPhase, BackupSpec, BackupStatus
from bosun.models.base import stamp
from bosun.models.database import Engine
from bosun.models.names import API_VERSION, CREATED_BY_OPERATION, DATABASE_LABEL, FINALIZER
from bosun.store import Store

DUMP_SUFFIX = {Engine.POSTGRESQL: "pgdump", Engine.MYSQL: "sql", Engine.REDIS: "rdb"}


def dump_key(namespace: str, database: str, backup: str, engine: Engine) -> str:
    """Where a dump lives in the store: under its namespace, so no other namespace can name it."""
    return f"backups/{namespace}/{database}/{backup}.{DUMP_SUFFIX[engine]}"


def is_dump(spec: dict[str, Any]) -> bool:
    return spec.get("method") == BackupMethod.DUMP.value


async def forget_dump(store: Store, record: dict[str, Any]) -> str:
    """Delete a Dump record's object from the store (done already, it does nothing)."""
    made = BackupSpec.model_validate(record.get("spec") or {})
    key = dump_key(record["metadata"]["namespace"], made.database, record["metadata"]["name"], made.engine)
    await store.delete(key)
    return store.url(key)


def record_body(name: str, spec: BackupSpec) -> dict[str, Any]:
    """A dump's record is made with the finalizer Kopf would add: deleted at once, it still waits."""
    meta: dict[str, Any] = {
        "name": name,
        "labels": {DATABASE_LABEL: spec.database},  # a Database's name has at most 48 characters
        "annotations": {CREATED_BY_OPERATION: spec.operation},
    }
    if spec.method is BackupMethod.DUMP:
        meta["finalizers"] = [FINALIZER]
    return {
        "apiVersion": API_VERSION,
        "kind": "Backup",
        "metadata": meta,
        "spec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def owned_by(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The ownerReference that ties a snapshot to its record (deleting the record deletes it)."""
    meta = record["metadata"]
    return [{"apiVersion": API_VERSION, "kind": "Backup", "name": meta["name"], "uid": meta["uid"]}]


class BackupRecords:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.writes = StatusWrites(kube)

    async def create(self, namespace: str, name: str, spec: BackupSpec) -> tuple[dict[str, Any], bool]:
        """The record (made now, or found made by the same operation) and whether it was made now.

        A record of that name made by another operation is not this backup's: PermanentError."""
        made = await self.kube.create_object(namespace, record_body(name, spec))
        if made is not None:
            await self.set_status(namespace, name, phase=BackupPhase.PENDING.value, startedAt=stamp())
            return made, True
        found = await self.kube.read(namespace, "Backup", name)
        if found is None:
            raise TransientError(f"Backup {namespace}/{name} was there and is gone: try again")
        if (found.get("spec") or {}).get("operation") != spec.operation:
            raise PermanentError(
                f"a Backup named {name} already exists, made by another operation: nothing was changed", "BackupExists"
            )
        return found, False

    async def set_status(self, namespace: str, name: str, **fields: Any) -> bool:
        """Set status fields by their wire names; False when the record no longer exists."""
        current = await self.kube.read(namespace, "Backup", name)
        if current is None or current["metadata"].get("deletionTimestamp"):  # deleted, or on its way out
            return False
        status = dict(current.get("status") or {})
        if all(status.get(k) == v for k, v in fields.items()):
            return True
        BackupStatus.model_validate({**status, **fields})  # a wrong field fails here, not in the API server
        try:
            await self.writes.patch_status(
                "Backup", namespace, name, fields, resource_version=current["metadata"]["resourceVersion"]
            )
        except NotFound:
            return False
        return True

    async def delete(self, namespace: str, name: str) -> None:
        await self.kube.delete(namespace, "Backup", name)

    async def of_database(self, namespace: str, database: str) -> list[dict[str, Any]]:
        """The records of one Database (by name: its earlier incarnations' too), oldest first."""
        listed = await self.kube.list_labelled(namespace, "Backup", {DATABASE_LABEL: database})
        # One being deleted (its dump waiting to leave the store) is gone already for retention.
        mine = [
            r
            for r in listed
            if (r.get("spec") or {}).get("database") == database and not r["metadata"].get("deletionTimestamp")
        ]
        return sorted(mine, key=lambda r: (r["metadata"].get("creationTimestamp") or "", r["metadata"]["name"]))

    @staticmethod
    def completed(record: dict[str, Any]) -> bool:
        return (record.get("status") or {}).get("phase") == BackupPhase.COMPLETED.value
