"""Plans a database operation: which step table, from where to where, from what to what.

The plan is made once, when the operation starts, and stored in the Operation's `status.plan`
(by the engine; only Bosun can write status); the tables themselves are in `database_steps`. Decisions made here:

- `previous` is what the status says is running (`status.running`), which the undo restores.
  `next` for a provision or a restart is the Database's spec as it is when the operation starts;
  for a resize, a scale or a move it is what runs with that operation's own change on top (volume
  size, resources, placement), so that each operation an edit makes carries its part of the edit
  and no other (`carried`). Fields that act without an operation (minReadySeconds, tolerations,
  the reclaim policy) come from the spec.
- A `scale` whose new requests still fit the current node is a restart in place; one that does
  not fit becomes a redeploy to a node Bosun chooses (same zone as the volume), and says so.
- A `redeploy` without a node lets Bosun choose: the first node, by name, that passes every check.
- `deprovision` keeps or deletes the volume as `spec.storage.reclaim` says.
- The image is fixed in the plan: the Database's `image`, else the install's database registry
  (`BOSUN_DATABASE_IMAGE_REGISTRY`, the chart's `databaseImageRegistry`) before `<engine>:<version>`.
"""

from __future__ import annotations

from typing import Any

from bosun.engine.service import Plan
from bosun.errors import PermanentError
from bosun.kube import Kube
from bosun.models.backup import BackupMethod, BackupTrigger
from bosun.models.database import DatabaseSpec, DatabaseStatus, Placement, VolumeReclaim
from bosun.models.names import BACKUP_TRIGGER
from bosun.models.operation import Operation, OperationType
from bosun.operations.database_backup import backup_name, restore_source
from bosun.operations.database_ctx import ZONE, DatabaseContext, DatabasePlan, refusal, room, volume_zone
from bosun.operations.database_dump import dump_source
from bosun.operations.database_steps import TABLES
from bosun.store import Store
from bosun.workloads import database as build
from bosun.workloads.app import valid_image


async def plan_database(
    kube: Kube, operation: Operation, target: dict[str, Any], image_registry: str = "", store: Store | None = None
) -> Plan[DatabaseContext]:
    if not target:
        raise PermanentError("the Database no longer exists", "TargetNotFound")
    meta = target["metadata"]
    stored = operation.status.plan
    plan = (
        DatabasePlan.model_validate_json(stored)
        if stored
        else await decide(kube, operation, target, image_registry, store)
    )
    if plan.table not in TABLES:
        raise PermanentError(f"the plan names a step table this version does not have: {plan.table}", "UnknownPlan")
    ctx = DatabaseContext(kube, operation.namespace, meta["name"], meta["uid"], operation.name, plan, store)
    return Plan(
        TABLES[plan.table], ctx, plan.model_dump_json(by_alias=True, exclude_none=True), summary(meta["name"], plan)
    )


def carried(running: DatabaseSpec | None, spec: DatabaseSpec) -> DatabaseSpec:
    """What a resize, scale or move starts from: what runs now, not the whole edited spec. One edit
    that changes the size and the version makes a resize and then a restart; were the resize to
    start from the spec, it would record the new version as running without ever running it, and
    the restart would then see nothing to pull and stop the database for an image that may not
    exist. Fields that take effect without an operation of their own are read from the spec."""
    if running is None:
        return spec
    tolerations = spec.placement.tolerations if spec.placement else None
    placement = running.placement or (Placement() if tolerations else None)  # never the spec's selector
    if placement is not None:
        placement = placement.model_copy(update={"tolerations": tolerations})
    storage = running.storage.model_copy(update={"reclaim": spec.storage.reclaim})
    return running.model_copy(
        update={"min_ready_seconds": spec.min_ready_seconds, "storage": storage, "placement": placement}
    )


def summary(name: str, plan: DatabasePlan) -> str:
    """The plan in one sentence, for people (a dry run shows it)."""
    spec = plan.next
    said = {
        "database-provision": f"provision {name} ({spec.engine.value} {spec.version}) "
        f"on {plan.to_node or 'a node the scheduler picks'}",
        "database-restart": f"restart {name} in place on {plan.from_node}",
        "database-move": f"move {name} from {plan.from_node} to {plan.to_node}",
        "database-redeploy": f"move {name} from {plan.from_node} to {plan.to_node}",
        "database-resize": f"grow the volume of {name} to {spec.storage.size}",
        "database-deprovision-retain": f"deprovision {name}, keeping its volume and credentials",
        "database-deprovision-delete": f"deprovision {name}, deleting its volume and credentials",
        "database-backup": f"back up {name} as a VolumeSnapshot, recorded as Backup {plan.backup}",
    }.get(plan.table.removesuffix("-backup-first"), plan.table)
    if plan.table.endswith("-backup-first"):
        said += (
            f", backing it up first (Backup {plan.backup})"
            if plan.backup
            else f" (no backup first: {plan.no_backup_first})"
        )
    return f"{said} ({plan.why})" if plan.why else said


async def decide(
    kube: Kube, operation: Operation, target: dict[str, Any], image_registry: str = "", store: Store | None = None
) -> DatabasePlan:
    spec = build.resolved(DatabaseSpec.model_validate(target.get("spec") or {}), image_registry)
    if not valid_image(build.image(spec)):
        raise PermanentError(f"{build.image(spec)!r} is not an image reference: nothing was changed", "InvalidImage")
    status = DatabaseStatus.model_validate(target.get("status") or {})
    params = operation.spec.parameters
    type_ = operation.spec.type
    if type_ is OperationType.PROVISION:
        node = spec.placement.node if spec.placement and spec.placement.node else ""
        # Restored once, when first provisioned: a provision after a deprovision that kept the volume
        # finds its own data there again, as any Database does.
        first = status.volume is None
        record = await kube.read(operation.namespace, "Backup", spec.source.backup) if spec.source and first else None
        if record is not None and (record.get("spec") or {}).get("method") == BackupMethod.DUMP.value:
            dump = await dump_source(store, operation.namespace, spec, record)
            why = f"restored from Backup {dump}: its dump is replayed once the new database runs"
            return DatabasePlan(table="database-provision-from-dump", to_node=node or "", next=spec, dump=dump, why=why)
        source = await restore_source(kube, operation.namespace, spec) if spec.source and first else ""
        why = f"restored from Backup {spec.source.backup} (VolumeSnapshot {source})" if source and spec.source else ""
        return DatabasePlan(table="database-provision", to_node=node or "", next=spec, source=source, why=why)
    if not status.node:
        raise PermanentError("the Database is not running on any node: provision it first", "NotProvisioned")
    base = DatabasePlan(table="", from_node=status.node, to_node=status.node, previous=status.running, next=spec)
    name, namespace = target["metadata"]["name"], operation.namespace
    if type_ is OperationType.BACKUP:
        # A schedule's own operation says so (trusted as far as its creator is: it only decides retention).
        scheduled = operation.annotations.get(BACKUP_TRIGGER) == BackupTrigger.SCHEDULED.value
        trigger = BackupTrigger.SCHEDULED if scheduled else BackupTrigger.ON_DEMAND
        dumped = params is not None and params.method is BackupMethod.DUMP
        table = "database-dump" if dumped else "database-backup"
        update = {"table": table, "next": status.running or spec, "backup": operation.name}
        return base.model_copy(update={**update, "trigger": trigger})
    if type_ is OperationType.RESTART:
        running = status.running
        if running is not None and running.version != spec.version and build.image(running) == build.image(spec):
            raise PermanentError(
                f"the version changes to {spec.version} but the image stays {build.image(spec)} "
                "(spec.image names it): change the image too; nothing was changed",
                "ImageUnchanged",
            )
        changes_image = running is not None and build.image(running) != build.image(spec)
        if not changes_image:
            return base.model_copy(update={"table": "database-restart"})
        return base.model_copy(update=backed_up("database-restart", spec, operation.name))
    # What runs, resolved as a new spec is: a record from before the install named a registry
    # would otherwise send a move's pull to Docker Hub.
    runs = build.resolved(carried(status.running, spec), image_registry)
    if type_ is OperationType.RESIZE:
        size = params.volume_size if params and params.volume_size else spec.storage.size
        storage = runs.storage.model_copy(update={"size": size})
        grown = runs.model_copy(update={"storage": storage})
        return base.model_copy(update={"next": grown, **backed_up("database-resize", spec, operation.name)})
    if type_ is OperationType.DEPROVISION:
        retain = spec.storage.reclaim is VolumeReclaim.RETAIN
        if retain:
            return base.model_copy(update={"table": "database-deprovision-retain"})
        return base.model_copy(update=backed_up("database-deprovision-delete", spec, operation.name))
    if type_ is OperationType.SCALE:
        resources = params.resources if params and params.resources else spec.resources
        plan = base.model_copy(update={"next": runs.model_copy(update={"resources": resources})})
        current = await kube.node(status.node)
        misfit = await room(kube, current, plan.next, name) if current else f"node {status.node} is gone"
        if not misfit:
            return plan.model_copy(update={"table": "database-restart", "why": f"the new size fits {status.node}"})
        to = await choose_node(kube, namespace, name, plan)
        return plan.model_copy(update={"table": "database-move", "to_node": to, "why": f"{misfit}: moving to {to}"})
    if type_ is OperationType.REDEPLOY:
        base = base.model_copy(update={"next": runs.model_copy(update={"placement": spec.placement})})
        if params and params.node:
            return base.model_copy(update={"table": "database-move", "to_node": params.node})
        to = await choose_node(kube, namespace, name, base)
        return base.model_copy(update={"table": "database-move", "to_node": to, "why": f"Bosun chose {to}"})
    raise PermanentError(f"{type_.value} is not a Database operation", "NotImplemented")


def backed_up(table: str, spec: DatabaseSpec, operation: str) -> dict[str, Any]:
    """A change that cannot be undone: its table with a backup first, and that backup's record name,
    or why it takes none (the Database opted out)."""
    if spec.backup is not None and not spec.backup.before_changes:
        return {
            "table": f"{table}-backup-first",
            "no_backup_first": "the Database opted out (spec.backup.beforeChanges)",
        }
    return {"table": f"{table}-backup-first", "backup": backup_name(operation), "trigger": BackupTrigger.BEFORE_CHANGE}


async def choose_node(kube: Kube, namespace: str, name: str, plan: DatabasePlan) -> str:
    """The first node, by name, the database can move to; refused before any change when none can.

    Only the nodes it may go to are listed: those of the volume's zone that match the placement's
    nodeSelector. A volume with no zone and a placement with no nodeSelector may go to any node,
    and then every node is a candidate and listed."""
    zone = await volume_zone(kube, namespace, name)
    wanted = dict((plan.next.placement.node_selector or {}) if plan.next.placement else {})
    if zone and wanted.setdefault(ZONE, zone) != zone:
        raise PermanentError(
            f"move refused before any downtime: the placement's nodeSelector asks for zone {wanted[ZONE]} "
            f"but the volume is in {zone}",
            "MoveRefused",
        )
    reasons = []
    for node in sorted(await kube.nodes(wanted), key=lambda n: n["metadata"]["name"]):
        why = await refusal(kube, node, plan, zone, name)
        if not why:
            return str(node["metadata"]["name"])
        reasons.append(why)
    labels = ", ".join(f"{k}={v}" for k, v in sorted(wanted.items()))
    where = f"with {labels}" if labels else "in the cluster"
    raise PermanentError(
        f"move refused before any downtime: no other node {where} can take it"
        + (f" ({'; '.join(reasons)})" if reasons else " (there is none)"),
        "MoveRefused",
    )
