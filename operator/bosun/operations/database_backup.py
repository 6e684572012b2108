"""A backup of a Database: a VolumeSnapshot of its data volume, kept as a `Backup` record.

backup (table `database-backup`; it reads its target and changes nothing of what serves, so the
Database stays Ready and is not Reconciling while it runs: `StepTable.changes_target` is False)

| step        | run                                                   | undo                              | timeout |
| ----------- | ----------------------------------------------------- | --------------------------------- | ------- |
| check       | the database runs; its claim is bound to a CSI volume | none: no side effect              | 30 s    |
|             | and a VolumeSnapshotClass serves that driver; else    |                                   |         |
|             | refused before anything is made                       |                                   |         |
| consistency | what the engine needs for a snapshot to be its data   | none: it changes no data          | 2 min   |
|             | of one moment (below)                                 |                                   |         |
| snapshot    | create the Backup record (Pending) and its            | delete both (the record, then the | 30 s    |
|             | VolumeSnapshot, which the record owns                 | snapshot it owns)                 |         |
| wait-ready  | wait until the snapshot is ready to use; mark the     | none: waiting changes nothing     | 10 min  |
|             | record Completed with its size                        |                                   |         |

What "consistent" means, per engine. A CSI snapshot is one moment of the volume, as a power cut is
one moment of a disk; the database's files on it are then what they would be after a crash at that
moment, and all of the engine's data lives on that one volume.

- PostgreSQL: crash-consistent by design: on restore it replays its WAL from the last checkpoint,
  and every transaction committed before the snapshot is there. A CHECKPOINT just before it
  (`consistency`) only shortens that replay; when it cannot run (no kubelet to exec through, a
  KWOK node) the step says so and is Skipped, and the backup is as good.
- MySQL: InnoDB recovers from its redo log the same way; nothing to run first.
- Redis: its data is in memory and reaches the volume only as an RDB file when it saves. A save
  must succeed first, or the snapshot would hold an older one: a backup that cannot save fails
  before any record is made. `BGSAVE`, not `SAVE`: the server forks and goes on answering while
  the child writes (a `SAVE` would block every client for as long as the write takes, downtime a
  backup must not cause); the step waits until that save has ended and Redis says it succeeded.
  One already running (or an AOF rewrite) is waited out first: its moment predates the backup.

A backup runs alone on its Database like any operation; it is never held by a maintenance window
or a downtime budget (it stops nothing), but `requireApproval` holds it like any other.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bosun.backup_records import BackupRecords, owned_by
from bosun.engine.steps import PermanentError, Skipped, Step, StepTable, TransientError, no_side_effect
from bosun.kube import Kube, NamespaceTerminating, NotFound
from bosun.models.backup import BackupPhase, BackupSpec, BackupTrigger
from bosun.models.base import stamp
from bosun.models.database import DatabaseSpec, Engine
from bosun.models.names import (
    BACKUP_LABEL,
    CREATED_BY_OPERATION,
    DATABASE_LABEL,
    DEFAULT_SNAPSHOT_CLASS,
    SERVING_LABEL,
    SNAPSHOT_GROUP,
    SNAPSHOT_VERSION,
    labellable,
)
from bosun.operations.database_ctx import DatabaseContext, quantity, running
from bosun.workloads import database as build

CONSISTENCY = {
    Engine.POSTGRESQL: "crash-consistent snapshot of the whole data directory (WAL included), after a CHECKPOINT "
    "when one could run: restored, PostgreSQL replays its WAL and has every transaction committed before it",
    Engine.MYSQL: "crash-consistent snapshot: restored, InnoDB recovers from its redo log and has every "
    "transaction committed before it",
    Engine.REDIS: "the RDB file of a BGSAVE run just before the snapshot: writes after its fork are not in it",
}
CHECKPOINT_DONE = "bosun-checkpoint-done"
POSTGRES_CHECKPOINT = [
    "/bin/sh",
    "-c",
    'PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U postgres -d postgres -Atqc CHECKPOINT'
    f" && echo {CHECKPOINT_DONE}",
]
REDIS_SAVED = "bosun-bgsave-done"
CONSISTENCY_SECONDS = 100  # within the step's 120 s: a CHECKPOINT or save that takes longer fails it
REDIS_BGSAVE = [
    "/bin/sh",
    "-c",
    f"cli='redis-cli -h 127.0.0.1 --raw'; end=$(($(date +%s) + {CONSISTENCY_SECONDS - 10})); "
    'later() { [ "$(date +%s)" -lt "$end" ] || { echo "no save within the time" >&2; exit 1; }; sleep 0.2; }; '
    'until $cli bgsave | grep -q "Background saving started"; do later; done; '  # one running: after it
    "while $cli info persistence | grep -q '^rdb_bgsave_in_progress:1'; do later; done; "
    f"$cli info persistence | grep -q '^rdb_last_bgsave_status:ok' && echo {REDIS_SAVED}",
]
SNAPSHOT_POLL_SECONDS = 1.0
SNAPSHOT_ERROR_GRACE_SECONDS = 30.0  # an error the snapshotter reports this long fails the backup


async def snapshot_class(kube: Kube, driver: str) -> str:
    """The VolumeSnapshotClass for a CSI driver: the one marked default for it, else the first by name."""
    try:
        classes = await kube.snapshot_classes()
    except NotFound:
        raise PermanentError(
            "this cluster does not serve the VolumeSnapshot API (install kubernetes-csi/external-snapshotter's "
            "CRDs and snapshot-controller): nothing was changed",
            "SnapshotUnsupported",
        ) from None
    mine = sorted((c for c in classes if c.get("driver") == driver), key=lambda c: c["metadata"]["name"])
    if not mine:
        raise PermanentError(
            f"no VolumeSnapshotClass serves CSI driver {driver}: nothing was changed", "SnapshotUnsupported"
        )
    default = [c for c in mine if (c["metadata"].get("annotations") or {}).get(DEFAULT_SNAPSHOT_CLASS) == "true"]
    return str((default or mine)[0]["metadata"]["name"])


async def _volume(ctx: DatabaseContext) -> tuple[str, str]:
    """The claim's name and its volume's CSI driver; refused when it cannot be snapshotted."""
    claim_name = build.claim_name(ctx.name)
    claim = await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", claim_name)
    if claim is None or (claim.get("status") or {}).get("phase") != "Bound":
        raise PermanentError(f"volume claim {claim_name} is not bound: nothing to back up", "NoVolume")
    volume = await ctx.kube.persistent_volume(claim["spec"]["volumeName"])
    driver = (((volume or {}).get("spec") or {}).get("csi") or {}).get("driver")
    if not driver:
        raise PermanentError(
            f"volume {claim['spec']['volumeName']} is not a CSI volume, which alone can be snapshotted: "
            "nothing was changed",
            "SnapshotUnsupported",
        )
    return claim_name, str(driver)


async def check(ctx: DatabaseContext) -> str:
    claim, driver = await _volume(ctx)
    found = await snapshot_class(ctx.kube, driver)
    return f"claim {claim} is a volume of {driver}; VolumeSnapshotClass {found} snapshots it"


async def serving_pod(ctx: DatabaseContext) -> str:
    """The pod that serves the Database now (what a backup reads from)."""
    pods = await ctx.kube.list_pods(ctx.namespace, {DATABASE_LABEL: ctx.name, SERVING_LABEL: "true"})
    up = sorted(p["metadata"]["name"] for p in pods if running(p))
    if not up:
        raise PermanentError(f"no pod of {ctx.name} is running: nothing to back up", "NotRunning")
    return str(up[0])


async def consistency(ctx: DatabaseContext) -> str:
    engine = ctx.spec.engine
    if engine is Engine.MYSQL:
        return Skipped("nothing to run first: InnoDB's redo log makes the snapshot crash-consistent")
    pod = await serving_pod(ctx)
    command = POSTGRES_CHECKPOINT if engine is Engine.POSTGRESQL else REDIS_BGSAVE
    try:
        said = await ctx.kube.exec_in_pod(ctx.namespace, pod, engine.value, command, timeout=CONSISTENCY_SECONDS)
        error = ""
    except (TransientError, PermanentError) as failed:
        said, error = "", str(failed)
    if engine is Engine.POSTGRESQL:
        if CHECKPOINT_DONE in said:
            return f"CHECKPOINT in {pod}: the restore replays only the WAL written after it"
        why = error or said.strip()[:300] or "no answer"
        return Skipped(f"no CHECKPOINT in {pod} ({why}); the snapshot is crash-consistent all the same")
    if REDIS_SAVED in said:
        return f"BGSAVE in {pod}: the RDB file on the volume holds this moment's data (Redis answered all along)"
    raise PermanentError(
        f"Redis in {pod} could not save (BGSAVE: {error or said.strip()[:300] or 'no answer'}): the volume would "
        "hold an older save; nothing was changed",
        "NotConsistent",
    )


def record_spec(ctx: DatabaseContext, consistency: str, **how: Any) -> BackupSpec:
    """What a Backup record says of the Database it was taken of, and `how`."""
    spec = ctx.spec
    return BackupSpec(
        database=ctx.name,
        database_uid=ctx.uid,
        engine=spec.engine,
        version=spec.version,
        trigger=ctx.plan.trigger,
        operation=ctx.operation,
        consistency=consistency,
        **how,
    )


async def take_snapshot(ctx: DatabaseContext) -> str:
    claim, driver = await _volume(ctx)
    klass = await snapshot_class(ctx.kube, driver)
    name, spec = ctx.plan.backup, ctx.spec
    record, made = await BackupRecords(ctx.kube).create(
        ctx.namespace, name, record_spec(ctx, CONSISTENCY[spec.engine], volume_snapshot_class_name=klass)
    )
    await keep_credentials(ctx, record)
    snapshot = {
        "apiVersion": f"{SNAPSHOT_GROUP}/{SNAPSHOT_VERSION}",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": name,
            "labels": {DATABASE_LABEL: ctx.name, **({BACKUP_LABEL: name} if labellable(name) else {})},
            "annotations": {CREATED_BY_OPERATION: ctx.operation},
            "ownerReferences": owned_by(record),
        },
        "spec": {"volumeSnapshotClassName": klass, "source": {"persistentVolumeClaimName": claim}},
    }
    if await ctx.kube.create_object(ctx.namespace, snapshot) is None:
        found = await ctx.kube.read(ctx.namespace, "VolumeSnapshot", name)
        owners = {o.get("uid") for o in ((found or {}).get("metadata") or {}).get("ownerReferences") or []}
        if record["metadata"]["uid"] not in owners:
            raise PermanentError(
                f"a VolumeSnapshot named {name} exists that is not this backup's: nothing was changed",
                "BackupExists",
            )
    await BackupRecords(ctx.kube).set_status(ctx.namespace, name, snapshot=name)
    again = "" if made else " (found after a restart)"
    return f"Backup {name} recorded{again}; VolumeSnapshot {name} of {claim} asked for (class {klass})"


def credentials_name(backup: str) -> str:
    """A name no Database's own Secret has (theirs are DNS labels: no dot)."""
    return f"{backup[:234]}.backup-credentials"


async def keep_credentials(ctx: DatabaseContext, record: dict[str, Any]) -> None:
    """A copy of the Database's credentials, owned by the record: the data on the snapshot answers
    only to the passwords it was written with, and a deprovision that deletes the volume deletes
    the Database's own Secret too. A restore starts from this copy."""
    found = await ctx.kube.read(ctx.namespace, "Secret", build.secret_name(ctx.name))
    if found is None:
        return
    name = ctx.plan.backup
    kept = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": credentials_name(name),
            # Not the Database's label: it is not the Database's Secret. The owner reference ties it.
            "labels": {BACKUP_LABEL: name} if labellable(name) else {},
            "ownerReferences": owned_by(record),
        },
        "data": dict(found.get("data") or {}),
    }
    await ctx.kube.create_object(ctx.namespace, kept)


async def restored_credentials(kube: Kube, namespace: str, backup: str) -> dict[str, str] | None:
    """The credentials a backup kept (Secret data), or None; only a Secret its record owns."""
    record = await kube.read(namespace, "Backup", backup)
    kept = await kube.read(namespace, "Secret", credentials_name(backup)) if record else None
    owners = {o.get("uid") for o in ((kept or {}).get("metadata") or {}).get("ownerReferences") or []}
    if kept is None or record is None or record["metadata"]["uid"] not in owners:
        return None
    return dict(kept.get("data") or {})


async def drop_snapshot(ctx: DatabaseContext) -> str:
    name = ctx.plan.backup
    record = await ctx.kube.read(ctx.namespace, "Backup", name)
    if record is None or (record.get("spec") or {}).get("operation") != ctx.operation:
        return f"no Backup {name} of this operation: nothing to delete"
    await BackupRecords(ctx.kube).delete(ctx.namespace, name)
    snapshot = await ctx.kube.read(ctx.namespace, "VolumeSnapshot", name)
    owners = {o.get("uid") for o in ((snapshot or {}).get("metadata") or {}).get("ownerReferences") or []}
    if snapshot is not None and record["metadata"]["uid"] in owners:
        await ctx.kube.delete(ctx.namespace, "VolumeSnapshot", name)
    return f"Backup {name} and its VolumeSnapshot deleted"


async def restore_source(kube: Kube, namespace: str, spec: DatabaseSpec) -> str:
    """The VolumeSnapshot a new Database restores from, its Backup checked first: it exists in this
    namespace, is Completed, was made by Bosun (it owns its snapshot), holds this engine's data at
    this version, and fits the new volume. Refused (nothing created) otherwise."""
    name = spec.source.backup if spec.source else ""
    record = await kube.read(namespace, "Backup", name)
    if record is None:
        raise PermanentError(f"restore refused: there is no Backup {name} in namespace {namespace}", "BackupNotFound")
    made, status = BackupSpec.model_validate(record.get("spec") or {}), record.get("status") or {}
    if status.get("phase") != BackupPhase.COMPLETED.value:
        raise PermanentError(
            f"restore refused: Backup {name} is {status.get('phase') or 'not complete'}, not Completed",
            "BackupNotReady",
        )
    if made.engine is not spec.engine or made.version != spec.version:
        raise PermanentError(
            f"restore refused: Backup {name} holds {made.engine.value} {made.version} data, and this Database runs "
            f"{spec.engine.value} {spec.version} (restore into the same version, then upgrade)",
            "BackupMismatch",
        )
    snapshot_name = str(status.get("snapshot") or "")
    snapshot = await kube.read(namespace, "VolumeSnapshot", snapshot_name) if snapshot_name else None
    owners = {o.get("uid") for o in ((snapshot or {}).get("metadata") or {}).get("ownerReferences") or []}
    if snapshot is None or record["metadata"]["uid"] not in owners:
        raise PermanentError(
            f"restore refused: the VolumeSnapshot of Backup {name} is gone or is not the one Bosun made",
            "BackupForeign",
        )
    if (snapshot.get("status") or {}).get("readyToUse") is not True:
        raise PermanentError(f"restore refused: VolumeSnapshot {snapshot_name} is not ready to use", "BackupNotReady")
    if spec.engine in build.PASSWORD_ENV and await restored_credentials(kube, namespace, name) is None:
        raise PermanentError(
            f"restore refused: Backup {name} kept no credentials, and its {spec.engine.value} data answers only to "
            "the passwords it was written with",
            "BackupNoCredentials",
        )
    size = str((snapshot.get("status") or {}).get("restoreSize") or status.get("size") or "")
    if size and quantity(size) > quantity(spec.storage.size):
        raise PermanentError(
            f"restore refused: Backup {name} needs a volume of at least {size}; "
            f"spec.storage.size is {spec.storage.size}",
            "BackupTooLarge",
        )
    return snapshot_name


def snapshot_error(snapshot: dict[str, Any]) -> str:
    error = (snapshot.get("status") or {}).get("error") or {}
    return str(error.get("message") or "")


async def wait_ready(ctx: DatabaseContext) -> str:
    name = ctx.plan.backup
    loop = asyncio.get_running_loop()
    failing_since: float | None = None
    while True:
        snapshot = await ctx.kube.read(ctx.namespace, "VolumeSnapshot", name)
        if snapshot is None:
            raise PermanentError(f"VolumeSnapshot {name} is gone before it was ready", "SnapshotLost")
        status = snapshot.get("status") or {}
        if status.get("readyToUse") is True:
            break
        error = snapshot_error(snapshot)
        if error:
            failing_since = failing_since if failing_since is not None else loop.time()
            if loop.time() - failing_since >= SNAPSHOT_ERROR_GRACE_SECONDS:
                raise PermanentError(f"VolumeSnapshot {name} failed: {error}", "SnapshotFailed")
        else:
            failing_since = None
        await asyncio.sleep(SNAPSHOT_POLL_SECONDS)
    size = str(status.get("restoreSize") or "")
    if not size:
        claim = await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", build.claim_name(ctx.name))
        size = str((((claim or {}).get("status") or {}).get("capacity") or {}).get("storage") or "")
    content = status.get("boundVolumeSnapshotContentName") or ""
    written = await BackupRecords(ctx.kube).set_status(
        ctx.namespace,
        name,
        phase=BackupPhase.COMPLETED.value,
        size=size,
        completedAt=stamp(),
        message=f"VolumeSnapshot {name} (content {content}) is ready to restore from",
    )
    if not written:
        raise PermanentError(f"Backup {name} was deleted while its snapshot was taken", "BackupDeleted")
    return f"VolumeSnapshot {name} ready ({size or 'size not reported'}); Backup {name} Completed"


# backups before changes that cannot be undone ---------------------------------------------------


def backup_name(operation: str) -> str:
    """The record a change's own backup gets: named after the operation, as a backup operation's is."""
    return f"{operation[:246]}-backup"


async def backup_first(ctx: DatabaseContext) -> str:
    """The step before a resize's expand, a version change's stop or a deletion's stop: a
    backup of what runs now (steps `check` to `wait-ready` above), so that what the change cannot
    undo can be restored from it. Skipped, and said so, when the Database opted out, when nothing
    in this change is irreversible, or when this volume cannot be snapshotted at all (no
    VolumeSnapshot API, no class for its driver: the change goes on as it would have without
    backups). Any other failure (the snapshot fails, Redis cannot SAVE) fails the change before it
    starts."""
    if ctx.plan.no_backup_first:
        return Skipped(f"no backup first: {ctx.plan.no_backup_first}")
    runs = ctx.plan.previous or ctx.plan.next
    plan = ctx.plan.model_copy(update={"next": runs, "trigger": BackupTrigger.BEFORE_CHANGE})
    own = DatabaseContext(ctx.kube, ctx.namespace, ctx.name, ctx.uid, ctx.operation, plan)
    try:
        await check(own)
    except PermanentError as refused:
        if refused.reason not in ("SnapshotUnsupported", "NoVolume"):
            raise
        return Skipped(
            f"no backup first: {str(refused).removesuffix(': nothing was changed')}; this change goes on without one"
        )
    try:
        consistent = await consistency(own)
    except PermanentError as unready:
        if unready.reason not in ("NotRunning", "NotConsistent"):
            raise
        # The change may be what mends the database (a resize of a full disk): take the volume as it
        # is, and say what the backup holds, rather than refuse the change.
        consistent = f"{unready}".removesuffix("; nothing was changed").removesuffix(": nothing to back up")
        consistent += "; the snapshot is taken as the volume is"
    try:
        await take_snapshot(own)
    except NamespaceTerminating:
        return Skipped("no backup first: the namespace is being deleted, and its backups with it")
    ready = await wait_ready(own)
    return f"{consistent}; {ready}: what this change cannot undo can be restored from Backup {plan.backup}"


async def keep_backup(ctx: DatabaseContext) -> str:
    return f"Backup {ctx.plan.backup} kept: a rollback never deletes a backup" if ctx.plan.backup else "no backup"


BACKUP_FIRST: Step[DatabaseContext] = Step(
    "backup", "back up what runs now, before a change that cannot be undone", backup_first, keep_backup, timeout=720
)


BACKUP: StepTable[DatabaseContext] = StepTable(
    "database-backup",
    [
        no_side_effect("check", "check the volume can be snapshotted", check, timeout=30, check=check),
        no_side_effect("consistency", "make the data on the volume one moment's", consistency, timeout=120),
        Step("snapshot", "record the Backup and ask for its VolumeSnapshot", take_snapshot, drop_snapshot, timeout=30),
        no_side_effect("wait-ready", "wait until the snapshot is ready to restore from", wait_ready, timeout=600),
    ],
    changes_target=False,
)
