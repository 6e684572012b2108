"""Logical dumps: a backup of a PostgreSQL's contents (its schema and rows), not of its files.

Why beside snapshots: a dump restores into the same or a newer PostgreSQL (a snapshot only into
its own version), needs no CSI driver that can snapshot, and lives outside the cluster's storage,
in the operator's object store (where operation logs go), so it survives the loss of that storage.

Why the operator streams it, not a Job: a Job in the Database's namespace would need the bucket's
credentials, and whoever may read that namespace's Secrets or exec into the Job could then read
every namespace's dumps. The operator is already the only holder of store credentials
(`bosun.store`), and a restore names a Backup in its own namespace, whose key is that namespace's:
one namespace's dumps are never reachable from another. It runs `pg_dump` in the database's own
container through the API server's exec, and uploads the output as it comes, a part at a time:
a dump is never held whole in memory, and one that fails leaves no object.

Backup (`type: backup`, `parameters.method: Dump`), table `database-dump`:

| step  | run                                                         | undo                        | timeout |
|-------|-------------------------------------------------------------|-----------------------------|---------|
| check | PostgreSQL, an object store, a running pod                  | none: it changes nothing    | 30 s    |
| dump  | the Backup record (Pending, its location), then `pg_dump`   | delete the object, then the | 1 h     |
|       | streamed into the store; the record Completed, its size     | record                      |         |

Restore (a new Database whose `spec.source.backup` names a Dump), table
`database-provision-from-dump`: provision's steps with `replay` after `start`, which streams the
dump from the store into `pg_restore --clean --if-exists --no-privileges --exit-on-error` in the new database (run
again after a crash, it drops what the first run made and restores it anew).

What a dump holds: the `postgres` database (the one Bosun's clients use), as of the start of
`pg_dump`'s transaction (one consistent moment, by MVCC, while writes go on). Not other databases
made inside the server, nor roles: the restored Database answers to its own new credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bosun.backup_records import BackupRecords
from bosun.engine.steps import PermanentError, Step, StepTable, TransientError, no_side_effect
from bosun.models.backup import BackupMethod, BackupPhase, BackupSpec
from bosun.models.base import stamp
from bosun.models.database import DatabaseSpec, Engine
from bosun.operations.database_backup import record_spec, serving_pod
from bosun.operations.database_ctx import DatabaseContext
from bosun.store import NotInStore, Store, StoreUnavailable

CONTAINER = Engine.POSTGRESQL.value
PG_DUMP = ["/bin/sh", "-c", 'PGPASSWORD="$POSTGRES_PASSWORD" exec pg_dump -h 127.0.0.1 -U postgres -d postgres -Fc']
PG_RESTORE = [
    "/bin/sh",
    "-c",
    'PGPASSWORD="$POSTGRES_PASSWORD" exec pg_restore -h 127.0.0.1 -U postgres -d postgres'
    " --clean --if-exists --no-owner --no-privileges --exit-on-error",
]
CONSISTENCY = (
    "pg_dump of database postgres: its schema and rows as of the start of the dump's transaction "
    "(one consistent moment while writes went on); roles and other databases are not in it"
)
QUEUED_CHUNKS = 8  # pieces of output between the exec and the upload: what a dump holds in memory


def dump_key(namespace: str, database: str, backup: str) -> str:
    """Where a dump lives in the store: under its namespace, so no other namespace can name it."""
    return f"backups/{namespace}/{database}/{backup}.pgdump"


def _store(ctx: DatabaseContext) -> Store:
    if ctx.store is None:
        raise PermanentError("this operator has no object store to keep a dump in: nothing was changed", "NoStore")
    return ctx.store


async def check(ctx: DatabaseContext) -> str:
    if ctx.spec.engine is not Engine.POSTGRESQL:
        raise PermanentError(
            f"a logical dump is built for PostgreSQL only; back {ctx.spec.engine.value} up with a VolumeSnapshot "
            "(the default method): nothing was changed",
            "DumpUnsupported",
        )
    store = _store(ctx)
    pod = await serving_pod(ctx)
    try:  # a dump runs through the kubelet: one that cannot run commands fails here, before any record
        said = await ctx.kube.exec_in_pod(ctx.namespace, pod, CONTAINER, ["pg_dump", "--version"], timeout=30)
    except (TransientError, PermanentError) as error:
        raise PermanentError(f"cannot run pg_dump in {pod} ({error}): nothing was changed", "ExecUnavailable") from None
    if "pg_dump" not in said:  # no answer at all: a node whose kubelet runs no commands (KWOK's)
        answer = f"it answered {said.strip()[:200]!r}" if said.strip() else "no answer from the node"
        raise PermanentError(f"cannot run pg_dump in {pod} ({answer}): nothing was changed", "ExecUnavailable")
    where = store.url(dump_key(ctx.namespace, ctx.name, ctx.plan.backup))
    return f"{pod} runs {said.strip()}; the dump goes to {where}"


async def piped(
    store: Store, key: str, produce: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[Any]]
) -> tuple[Any, int]:
    """Run `produce`, handing it a sink whose bytes are uploaded to `key` as they come. The object
    is completed only when `produce` returns; when it raises, the upload is aborted (no object)."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUED_CHUNKS)

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    upload = asyncio.create_task(store.put_stream(key, chunks()))

    async def give(item: bytes | None) -> None:
        put = asyncio.ensure_future(queue.put(item))
        await asyncio.wait({put, upload}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():  # the upload ended first: it failed (it cannot end before the None)
            put.cancel()
            upload.result()
            raise StoreUnavailable(f"the upload to {store.url(key)} ended early")

    try:
        result = await produce(give)
        await give(None)
        return result, await upload
    finally:
        if not upload.done():
            upload.cancel()
            with contextlib.suppress(BaseException):
                await upload


async def dump(ctx: DatabaseContext) -> str:
    store, name = _store(ctx), ctx.plan.backup
    key = dump_key(ctx.namespace, ctx.name, name)
    records = BackupRecords(ctx.kube)
    await records.create(
        ctx.namespace, name, record_spec(ctx, CONSISTENCY, method=BackupMethod.DUMP, location=store.url(key))
    )
    pod = await serving_pod(ctx)

    async def pg_dump(sink: Callable[[bytes], Awaitable[None]]) -> None:
        code, said = await ctx.kube.exec_stream(ctx.namespace, pod, CONTAINER, PG_DUMP, stdout=sink)
        if code != 0:  # raised inside: the upload is aborted, no object is left
            raise PermanentError(f"pg_dump in {pod} exited {code}: {said[-500:] or 'no message'}", "DumpFailed")

    try:
        _, size = await piped(store, key, pg_dump)
    except StoreUnavailable as error:  # the store failed, not the database: the step runs again
        raise TransientError(f"the dump could not be written: {error}") from error
    written = await records.set_status(
        ctx.namespace,
        name,
        phase=BackupPhase.COMPLETED.value,
        size=str(size),
        completedAt=stamp(),
        message=f"pg_dump of {pod}, {size} bytes, at {store.url(key)}",
    )
    if not written:
        await store.delete(key)
        raise PermanentError(f"Backup {name} was deleted while it was dumped", "BackupDeleted")
    return f"pg_dump of {pod}: {size} bytes to {store.url(key)}; Backup {name} Completed"


async def drop_dump(ctx: DatabaseContext) -> str:
    name = ctx.plan.backup
    record = await ctx.kube.read(ctx.namespace, "Backup", name)
    if record is None or (record.get("spec") or {}).get("operation") != ctx.operation:
        return f"no Backup {name} of this operation: nothing to delete"
    await _store(ctx).delete(dump_key(ctx.namespace, ctx.name, name))
    await BackupRecords(ctx.kube).delete(ctx.namespace, name)
    return f"the dump and Backup {name} deleted"


DUMP: StepTable[DatabaseContext] = StepTable(
    "database-dump",
    [
        no_side_effect("check", "a PostgreSQL that runs, and a store to keep its dump", check, timeout=30, check=check),
        Step("dump", "record the backup, stream pg_dump into the store", dump, drop_dump, timeout=3600),
    ],
    changes_target=False,
)


# restore ---------------------------------------------------------------------------------------


async def dump_source(store: Store | None, namespace: str, spec: DatabaseSpec, record: dict[str, Any]) -> str:
    """A Dump Backup a new Database may replay, checked before anything is created: Completed, of
    PostgreSQL, from the same or an older major version, and its dump still in the store."""
    name = record["metadata"]["name"]
    made, status = BackupSpec.model_validate(record.get("spec") or {}), record.get("status") or {}
    if status.get("phase") != BackupPhase.COMPLETED.value:
        raise PermanentError(
            f"restore refused: Backup {name} is {status.get('phase') or 'not complete'}, not Completed",
            "BackupNotReady",
        )
    if made.engine is not spec.engine:
        raise PermanentError(
            f"restore refused: Backup {name} is a dump of {made.engine.value}, and this Database runs "
            f"{spec.engine.value}",
            "BackupMismatch",
        )
    if _major(made.version) > _major(spec.version):
        raise PermanentError(
            f"restore refused: Backup {name} was dumped from {made.engine.value} {made.version}, newer than "
            f"{spec.version} (a dump restores into the same or a newer version)",
            "BackupMismatch",
        )
    if store is None:
        raise PermanentError("restore refused: this operator has no object store to read the dump from", "NoStore")
    key = dump_key(namespace, made.database, name)
    if key not in await store.keys(key.rpartition("/")[0] + "/"):
        raise PermanentError(f"restore refused: the dump of Backup {name} is not in {store.url(key)}", "BackupForeign")
    return str(name)


def _major(version: str) -> float:
    try:
        return float(version.split(".")[0])
    except ValueError:
        return 0.0


async def replay(ctx: DatabaseContext) -> str:
    store, name = _store(ctx), ctx.plan.dump
    record = await ctx.kube.read(ctx.namespace, "Backup", name)
    if record is None:
        raise PermanentError(f"Backup {name} was deleted before its dump was replayed", "BackupNotFound")
    key = dump_key(ctx.namespace, str((record.get("spec") or {}).get("database") or ""), name)

    async def ignore(_: bytes) -> None:
        return None

    try:
        code, said = await ctx.kube.exec_stream(
            ctx.namespace, ctx.new_pod, CONTAINER, PG_RESTORE, stdout=ignore, stdin=store.read_stream(key)
        )
    except NotInStore as error:
        raise PermanentError(f"the dump of Backup {name} is gone: {error}", "BackupForeign") from error
    except StoreUnavailable as error:  # the store failed: read it again
        raise TransientError(f"the dump could not be read: {error}") from error
    if code != 0:
        raise PermanentError(
            f"pg_restore of Backup {name} exited {code}: {said[-500:] or 'no message'}", "ReplayFailed"
        )
    return f"Backup {name} replayed from {store.url(key)} (pg_restore)"


def with_replay(provision: StepTable[DatabaseContext]) -> StepTable[DatabaseContext]:
    """Provision's table with the dump replayed once the new database accepts queries."""
    steps = list(provision.steps)
    at = next(i for i, s in enumerate(steps) if s.name == "start") + 1
    step = Step("replay", "replay the dump into the new database (pg_restore)", replay, _nothing, timeout=3600)
    return StepTable(
        "database-provision-from-dump",
        [*steps[:at], step, *steps[at:]],
        downtime_steps=provision.downtime_steps,
        ends_service=provision.ends_service,
    )


async def _nothing(ctx: DatabaseContext) -> str:
    return "nothing to undo: the provision's own undo deletes the database the dump went into"
