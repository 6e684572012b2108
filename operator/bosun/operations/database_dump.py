"""Logical dumps: a backup of a database's contents, not of its files.

Why beside snapshots: a dump restores into the same or a newer version (a snapshot only into its
own), needs no CSI driver that can snapshot, and lives outside the cluster's storage, in the
operator's object store (where operation logs go), so it survives the loss of that storage.

Why the operator streams it, not a Job: a Job in the Database's namespace would need the bucket's
credentials, and whoever may read that namespace's Secrets or exec into the Job could then read
every namespace's dumps. The operator is already the only holder of store credentials
(`bosun.store`), and a restore names a Backup in its own namespace, whose key is that namespace's:
one namespace's dumps are never reachable from another. It runs the engine's own dump tool in the
database's own container through the API server's exec, and uploads the output as it comes, a
part at a time: a dump is never held whole in memory, and one that fails leaves no object.

Backup (`type: backup`, `parameters.method: Dump`), table `database-dump`:

| step  | run                                                         | undo                        | timeout |
|-------|-------------------------------------------------------------|-----------------------------|---------|
| check | an engine that dumps, an object store, a running pod whose  | none: it changes nothing    | 30 s    |
|       | container has the dump tool                                 |                             |         |
| dump  | the Backup record (Pending, its location), then the dump    | delete the object, then the | 1 h     |
|       | streamed into the store; the record Completed, its size     | record                      |         |

Restore (a new Database whose `spec.source.backup` names a Dump), table
`database-provision-from-dump`: provision's steps with `replay` after `start` (run again from its
start after a crash). The new pod starts out of its Service and joins it when the replay has ended:
no client sees a half-restored database.

What each engine's dump holds, and how it is replayed (`DUMPERS`):
- PostgreSQL: `pg_dump -Fc` of the `postgres` database (the one Bosun's clients use) as of the
  start of its transaction (one moment, by MVCC, while writes go on); not other databases made in
  the server, nor roles. Replayed by `pg_restore --clean --if-exists`: a second run drops what the
  first made.
- MySQL: `mysqldump --single-transaction` of every database but the server's own (mysql, sys and
  the two schemas): InnoDB tables as of one moment; tables of engines without transactions
  (MyISAM) may be of a later one; no users or grants. Replayed by the `mysql` client; the dump
  drops each table before making it again.
- Redis: the RDB the server sends a replica (`redis-cli --rdb -`): every key of every logical
  database as of the fork that wrote it. Redis loads an RDB only when it starts, so the replay
  writes the file where the server keeps its own, stops the server without saving (`SHUTDOWN
  NOSAVE`) and waits until the kubelet has started the container again and it is Ready.

A restored Database answers to its own new credentials, never to the dumped server's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bosun.backup_records import BackupRecords, dump_key
from bosun.engine.steps import PermanentError, Step, StepTable, TransientError, no_side_effect
from bosun.models.backup import BackupMethod, BackupPhase, BackupSpec
from bosun.models.base import stamp
from bosun.models.database import DatabaseSpec, Engine
from bosun.operations.database_backup import record_spec, serving_pod
from bosun.operations.database_ctx import DatabaseContext, crash_loop, mark_serving
from bosun.store import NotInStore, Store, StoreUnavailable
from bosun.workloads.database import ENGINES


@dataclass(frozen=True)
class Dumper:
    """One engine's dump: the tool that proves it can run, the commands, and where the dump goes."""

    tool: str
    dump: list[str]
    replay: list[str]  # fed the dump on its standard input
    consistency: str


def _sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


REDIS_DATA = ENGINES[Engine.REDIS][2]  # where Bosun mounts the volume: an RDB elsewhere dies with the container
MYSQL_OWN = "'mysql','sys','information_schema','performance_schema'"
DUMPERS: dict[Engine, Dumper] = {
    Engine.POSTGRESQL: Dumper(
        tool="pg_dump",
        dump=_sh('PGPASSWORD="$POSTGRES_PASSWORD" exec pg_dump -h 127.0.0.1 -U postgres -d postgres -Fc'),
        replay=_sh(
            'PGPASSWORD="$POSTGRES_PASSWORD" exec pg_restore -h 127.0.0.1 -U postgres -d postgres'
            " --clean --if-exists --no-owner --no-privileges --exit-on-error"
        ),
        consistency="pg_dump of database postgres: its schema and rows as of the start of the dump's transaction "
        "(one consistent moment while writes went on); roles and other databases are not in it",
    ),
    Engine.MYSQL: Dumper(
        tool="mysqldump",
        dump=_sh(
            'export MYSQL_PWD="$MYSQL_ROOT_PASSWORD"; set -e; '
            "databases=$(mysql -h 127.0.0.1 -u root -N -B -r -e "
            f'"SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ({MYSQL_OWN})"); '
            'if [ -z "$databases" ]; then echo "-- no databases but the server\'s own"; exit 0; fi; '
            "set -f; IFS='\n'; "  # one name a line: a name with a space or a star stays one name
            "exec mysqldump -h 127.0.0.1 -u root --single-transaction --routines --events --triggers --hex-blob "
            "--databases $databases"
        ),
        replay=_sh('MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql -h 127.0.0.1 -u root'),
        consistency="mysqldump --single-transaction of every database but the server's own: InnoDB tables as of "
        "one moment (the dump's transaction); tables without transactions (MyISAM) may be of a later one; users "
        "and grants are not in it",
    ),
    Engine.REDIS: Dumper(
        tool="redis-cli",
        dump=["redis-cli", "-h", "127.0.0.1", "--rdb", "-"],
        replay=_sh(
            "set -e; cli='redis-cli -h 127.0.0.1 --raw'; "
            "dir=$($cli config get dir | sed -n 2p); file=$($cli config get dbfilename | sed -n 2p); "
            "aof=$($cli config get appendonly | sed -n 2p); "
            '[ -n "$dir" ] && [ -n "$file" ] || { echo "the server did not say where it keeps its RDB" >&2; exit 3; }; '
            f'case "$dir" in {REDIS_DATA}|{REDIS_DATA}/*) ;; *) echo "Redis keeps its RDB in $dir, not on the volume '
            f'({REDIS_DATA}): a restart would lose the dump" >&2; exit 3 ;; esac; '
            '[ "$aof" = no ] || { echo "appendonly is $aof: a start would load the append-only file, not the dump" >&2;'
            " exit 3; }; "
            'cat > "$dir/bosun-replay.rdb"; chown --reference="$dir" "$dir/bosun-replay.rdb" 2>/dev/null || true; '
            'mv "$dir/bosun-replay.rdb" "$dir/$file"; echo "the dump is in place of $dir/$file" >&2; '
            "$cli shutdown nosave >/dev/null 2>&1 || true"  # the container ends: this shell may be killed with it
        ),
        consistency="Redis' RDB as a replica receives it: every key of every logical database as of the fork that "
        "wrote it",
    ),
}
REDIS_KEYS = ["redis-cli", "-h", "127.0.0.1", "--raw", "dbsize"]
REDIS_PLACED = "the dump is in place of"
REDIS_PING = ["redis-cli", "-h", "127.0.0.1", "ping"]
REDIS_RESTART_SECONDS = 120.0  # for the kubelet to start the container again after SHUTDOWN NOSAVE
QUEUED_CHUNKS = 8  # pieces of output between the exec and the upload: what a dump holds in memory


def dumper(engine: Engine) -> Dumper:
    found = DUMPERS.get(engine)
    if found is None:  # every engine has one today: this is for the next engine added
        raise PermanentError(f"no logical dump is built for {engine.value}: nothing was changed", "DumpUnsupported")
    return found


def _store(ctx: DatabaseContext) -> Store:
    if ctx.store is None:
        raise PermanentError("this operator has no object store to keep a dump in: nothing was changed", "NoStore")
    return ctx.store


async def check(ctx: DatabaseContext) -> str:
    engine = ctx.spec.engine
    tool = dumper(engine).tool
    store = _store(ctx)
    pod = await serving_pod(ctx)
    try:  # a dump runs through the kubelet: one that cannot run commands fails here, before any record
        said = await ctx.kube.exec_in_pod(ctx.namespace, pod, engine.value, [tool, "--version"], timeout=30)
    except (TransientError, PermanentError) as error:
        raise PermanentError(f"cannot run {tool} in {pod} ({error}): nothing was changed", "ExecUnavailable") from None
    if tool not in said:  # no answer at all: a node whose kubelet runs no commands (KWOK's)
        answer = f"it answered {said.strip()[:200]!r}" if said.strip() else "no answer from the node"
        raise PermanentError(f"cannot run {tool} in {pod} ({answer}): nothing was changed", "ExecUnavailable")
    where = store.url(dump_key(ctx.namespace, ctx.name, ctx.plan.backup, engine))
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
    store, name, engine = _store(ctx), ctx.plan.backup, ctx.spec.engine
    recipe = dumper(engine)
    key = dump_key(ctx.namespace, ctx.name, name, engine)
    records = BackupRecords(ctx.kube)
    await records.create(
        ctx.namespace,
        name,
        record_spec(ctx, recipe.consistency, method=BackupMethod.DUMP, location=store.url(key)),
    )
    pod = await serving_pod(ctx)

    async def run_tool(sink: Callable[[bytes], Awaitable[None]]) -> None:
        code, said = await ctx.kube.exec_stream(ctx.namespace, pod, engine.value, recipe.dump, stdout=sink)
        if code != 0:  # raised inside: the upload is aborted, no object is left
            failed = f"{recipe.tool} in {pod} exited {code}: {said[-500:] or 'no message'}"
            raise PermanentError(failed, "DumpFailed")

    try:
        _, size = await piped(store, key, run_tool)
    except StoreUnavailable as error:  # the store failed, not the database: the step runs again
        raise TransientError(f"the dump could not be written: {error}") from error
    written = await records.set_status(
        ctx.namespace,
        name,
        phase=BackupPhase.COMPLETED.value,
        size=str(size),
        completedAt=stamp(),
        message=f"{recipe.tool} of {pod}, {size} bytes, at {store.url(key)}",
    )
    if not written:
        await store.delete(key)
        raise PermanentError(f"Backup {name} was deleted while it was dumped", "BackupDeleted")
    return f"{recipe.tool} of {pod}: {size} bytes to {store.url(key)}; Backup {name} Completed"


async def drop_dump(ctx: DatabaseContext) -> str:
    name = ctx.plan.backup
    record = await ctx.kube.read(ctx.namespace, "Backup", name)
    if record is None or (record.get("spec") or {}).get("operation") != ctx.operation:
        return f"no Backup {name} of this operation: nothing to delete"
    await _store(ctx).delete(dump_key(ctx.namespace, ctx.name, name, ctx.spec.engine))
    await BackupRecords(ctx.kube).delete(ctx.namespace, name)
    return f"the dump and Backup {name} deleted"


DUMP: StepTable[DatabaseContext] = StepTable(
    "database-dump",
    [
        no_side_effect("check", "a database that runs its dump tool, and a store", check, timeout=30, check=check),
        Step("dump", "record the backup, stream the dump into the store", dump, drop_dump, timeout=3600),
    ],
    changes_target=False,
)


# restore ---------------------------------------------------------------------------------------


async def dump_source(store: Store | None, namespace: str, spec: DatabaseSpec, record: dict[str, Any]) -> str:
    """A Dump Backup a new Database may replay, checked before anything is created: Completed, of
    its engine, from the same or an older major version, and its dump still in the store."""
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
    key = dump_key(namespace, made.database, name, made.engine)
    if key not in await store.keys(key.rpartition("/")[0] + "/"):
        raise PermanentError(f"restore refused: the dump of Backup {name} is not in {store.url(key)}", "BackupForeign")
    return str(name)


def _major(version: str) -> float:
    try:
        return float(version.split(".")[0])
    except ValueError:
        return 0.0


async def replay(ctx: DatabaseContext) -> str:
    store, name, engine = _store(ctx), ctx.plan.dump, ctx.spec.engine
    recipe = dumper(engine)
    record = await ctx.kube.read(ctx.namespace, "Backup", name)
    if record is None:
        raise PermanentError(f"Backup {name} was deleted before its dump was replayed", "BackupNotFound")
    key = dump_key(ctx.namespace, str((record.get("spec") or {}).get("database") or ""), name, engine)
    restarts = _restarts(await ctx.kube.read(ctx.namespace, "Pod", ctx.new_pod))

    async def ignore(_: bytes) -> None:
        return None

    try:
        code, said = await ctx.kube.exec_stream(
            ctx.namespace, ctx.new_pod, engine.value, recipe.replay, stdout=ignore, stdin=store.read_stream(key)
        )
    except NotInStore as error:
        raise PermanentError(f"the dump of Backup {name} is gone: {error}", "BackupForeign") from error
    except StoreUnavailable as error:  # the store failed: read it again
        raise TransientError(f"the dump could not be read: {error}") from error
    # Redis' replay ends the container it runs in: killed with it once the dump is in place, it is done.
    placed = engine is Engine.REDIS and REDIS_PLACED in said
    if code != 0 and not placed:
        raise PermanentError(
            f"the replay of Backup {name} exited {code}: {said[-500:] or 'no message'}", "ReplayFailed"
        )
    replayed = f"Backup {name} replayed from {store.url(key)}"
    if engine is Engine.REDIS:
        await _started_again(ctx, restarts)
        keys = await ctx.kube.exec_in_pod(ctx.namespace, ctx.new_pod, engine.value, REDIS_KEYS, timeout=30)
        replayed += f": Redis started again from it and holds {keys.strip()} keys"
    await mark_serving(ctx, ctx.new_pod, True)
    return f"{replayed}; {ctx.new_pod} joins its Service"


def _restarts(pod: dict[str, Any] | None) -> int:
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses)


async def _started_again(ctx: DatabaseContext, restarts: int) -> None:
    """Redis loads the replayed RDB as it starts: wait for the kubelet to start it and for it to be
    Ready (a container that is not restarted means the server did not stop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REDIS_RESTART_SECONDS
    while loop.time() < deadline:
        pod = await ctx.kube.read(ctx.namespace, "Pod", ctx.new_pod)
        if pod is None:
            raise PermanentError(f"pod {ctx.new_pod} disappeared while it started from the dump", "PodLost")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
        crashes = crash_loop(pod)
        if crashes:  # an RDB this server cannot read (a newer format) ends every start
            raise PermanentError(f"Redis in {ctx.new_pod} cannot start from the dump: {crashes}", "ReplayFailed")
        if _restarts(pod) > restarts and ready and await _answers(ctx):
            return
        await asyncio.sleep(1)
    raise PermanentError(
        f"Redis in {ctx.new_pod} was not started again and Ready within {REDIS_RESTART_SECONDS:.0f} s of SHUTDOWN "
        "NOSAVE: the dump is written where it keeps its RDB but not loaded",
        "ReplayFailed",
    )


async def _answers(ctx: DatabaseContext) -> bool:
    """Redis opens its port before it has loaded its RDB (it answers LOADING meanwhile): Ready by
    its TCP probe is not yet loaded."""
    try:
        said = await ctx.kube.exec_in_pod(ctx.namespace, ctx.new_pod, Engine.REDIS.value, REDIS_PING, timeout=30)
    except TransientError:
        return False
    return said.strip() == "PONG"


def with_replay(provision: StepTable[DatabaseContext]) -> StepTable[DatabaseContext]:
    """Provision's table with the dump replayed once the new database accepts queries."""
    steps = list(provision.steps)
    at = next(i for i, s in enumerate(steps) if s.name == "start") + 1
    step = Step("replay", "replay the dump into the new database", replay, _nothing, timeout=3600)
    return StepTable(
        "database-provision-from-dump",
        [*steps[:at], step, *steps[at:]],
        downtime_steps=provision.downtime_steps,
        ends_service=provision.ends_service,
    )


async def _nothing(ctx: DatabaseContext) -> str:
    return "nothing to undo: the provision's own undo deletes the database the dump went into"
