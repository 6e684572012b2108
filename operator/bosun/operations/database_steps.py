"""Database operations as step tables.

Every table works from the plan stored on the Operation (`database_ctx.DatabasePlan`): `from_node`
and `previous` are what runs now, `to_node` and `next` what will run. Undo brings `previous` back on
`from_node` with the same volume, and says so if it cannot.

provision

| step        | run                                              | undo                                | timeout |
| ----------- | ------------------------------------------------ | ----------------------------------- | ------- |
| check       | engine and version map to an image               | none: no side effect                | 30 s    |
| credentials | create the credentials Secret (never overwrite)  | delete it if this operation made it | 30 s    |
| volume      | create the data PVC (an existing one is kept)    | delete it if this operation made it | 30 s    |
| start       | create Service and pod; wait until Ready, bound  | delete the pod                      | 5 min   |
| record      | status: node, volume, endpoint, phase Running    | phase back to Pending               | 30 s    |

restart (in place; also a scale that still fits its node, and a version change)

| step     | run                                                  | undo                                    | timeout |
| -------- | ---------------------------------------------------- | --------------------------------------- | ------- |
| pre-pull | a new image (version change) pulled on the node by a | remove the placeholder pod              | 5 min   |
|          | placeholder that holds no room; skipped otherwise: an |                                        |         |
|          | image that cannot be pulled fails before any downtime |                                        |         |
| stop     | leave the Service, stop the pod; wait until gone     | start `previous` on the same node       | 2 min   |
| start    | start `next` on the same node; wait Ready; record it | stop the new pod                        | 5 min   |

move (table `database-move`; a redeploy, and a scale that no longer fits its node): everything
the new node needs is in place before the old pod stops, so the downtime is only stop, detach,
attach and start. `database-redeploy` is the same table without `place-new`, kept for operations
an earlier version planned.

| step          | run                                                   | undo                              | timeout |
| ------------- | ----------------------------------------------------- | --------------------------------- | ------- |
| check-target  | target exists, Ready, schedulable, has room, same     | none: no side effect              | 30 s    |
|               | zone as the volume; else refuse before any downtime   |                                   |         |
| pre-pull      | a placeholder pod with the image and the database's   | remove the placeholder pod        | 5 min   |
|               | requests on the target: it pulls the image, and holds |                                   |         |
|               | the room on the node until the new pod takes it       |                                   |         |
| pre-provision | Service and credentials exist                         | none: no side effect              | 30 s    |
| place-new     | swap the placeholder for the new pod, which waits on  | delete the new pod, wait detached | 2 min   |
|               | the target for the volume, until the target's kubelet |                                   |         |
|               | reports the volume in use; only for a volume attached |                                   |         |
|               | to one node at a time and kubelets that report their  |                                   |         |
|               | mounts (else Skipped: the pod comes at attach)        |                                   |         |
| recheck-target| every check of check-target again, at the last moment | none: no side effect              | 30 s    |
|               | before the stop (a node cordoned meanwhile: refused)  |                                   |         |
| stop-old      | leave the Service, then stop the old pod; wait gone   | delete the new pod, wait detached;| 2 min   |
|               |                                                       | start `previous` on the old node  |         |
| detach        | wait until the volume has left the old node (nothing  | none: waiting changes nothing     | 2 min   |
|               | to wait for when its CSI driver attaches nothing)     |                                   |         |
| attach        | swap the placeholder for the new pod on the target    | delete the new pod, wait detached | 2 min   |
|               | (unless placed already); wait until attached; a pod   |                                   |         |
|               | the scheduler cannot place or a volume another pod's  |                                   |         |
|               | node took (the controller's Multi-Attach error naming |                                   |         |
|               | a pod that still exists) fails the step within seconds|                                   |         |
| start         | wait until the new pod is Ready; record the downtime  | none: the undo of stop-old records | 5 min  |

Why `place-new`: a kubelet mounts a volume only once its node status lists the volume in use, and
it writes that status every `nodeStatusUpdateFrequency` (10 s by default). A pod created after the
detach waited for that report inside the downtime (the `start` of a real move was either short or
a whole period long, by where the new node was in its cycle); placed before the stop, the report
is made while the old database still serves.

resize (bigger volume)

| step          | run                                                | undo                                  | timeout |
| ------------- | -------------------------------------------------- | ------------------------------------- | ------- |
| check-volume  | the StorageClass can expand; the size only grows   | none: no side effect                  | 30 s    |
| expand        | raise the claim's storage request                  | cannot: a volume does not shrink      | 30 s    |
| wait-capacity | wait until the claim reports the new capacity, or  | none: waiting changes nothing         | 5 min   |
|               | the volume grew and the node is to grow its files. |                                       |         |
| restart       | restart in place if the filesystem has not grown   | start the pod again if it is stopped  | 5 min   |
|               | (drivers that grow it offline, on the next mount)  |                                       |         |
| record        | status: the new capacity                           | none: no side effect beyond status    | 30 s    |

backup first (tables `database-restart-backup-first` for a version change, `database-resize-backup-first`,
`database-deprovision-delete-backup-first`): the same steps with one more, `backup`, after the
checks that could refuse the change and before the stop or the expand: it backs up what runs now
(`database_backup`), unless the Database opted out
(`spec.backup.beforeChanges: false`) or its volume cannot be snapshotted at all; its undo keeps the
backup. The tables without it stay for operations an earlier version planned.

deprovision (the volume's fate follows `spec.storage.reclaim`)

| step           | run                                               | undo                                 | timeout |
| -------------- | ------------------------------------------------- | ------------------------------------ | ------- |
| stop           | leave the Service, stop the pod; wait until gone  | start `previous` on the same node    | 2 min   |
| remove-service | delete the Service                                | create it again                      | 30 s    |
| keep-volume    | Retain: mark the PV Retain; keep claim and Secret | none needed: keeping data is safe    | 30 s    |
| delete-volume  | Delete: delete the claim and the Secret           | cannot: deleted data is gone         | 2 min   |
| record         | status: phase Deprovisioned, no node              | phase back to Running                | 30 s    |
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
import secrets
from typing import Any

from bosun import metrics
from bosun.engine.steps import (
    PermanentError,
    Skipped,
    Step,
    StepTable,
    TransientError,
    irreversible,
    no_side_effect,
)
from bosun.models.base import TargetPhase, parse_time
from bosun.models.names import CREATED_BY_OPERATION, PREPULL_LABEL, RESIZED_BY_OPERATION
from bosun.operations.database_backup import BACKUP, BACKUP_FIRST, restored_credentials
from bosun.operations.database_ctx import (
    POLL_SECONDS,
    DatabaseContext,
    image_pull_failure,
    node_ready,
    quantity,
    ready_at,
    record,
    refusal,
    remove_pod,
    running,
    start_pod,
    stop_pods,
    unschedulable,
    volume_zone,
    wait_ready,
)
from bosun.operations.database_dump import DUMP, with_replay
from bosun.workloads import database as build

# shared ----------------------------------------------------------------------------------------


def _annotations(body: dict[str, Any] | None) -> dict[str, str]:
    return dict(((body or {}).get("metadata") or {}).get("annotations") or {})


async def _create_once(ctx: DatabaseContext, manifest: dict[str, Any]) -> str:
    """Create the object, marked as this operation's; an existing one is kept.

    Found already there after a restart, and marked as this operation's, it counts as created (the
    rollback removes it); found there made by anyone else, the step is Skipped and it stays.
    """
    manifest["metadata"].setdefault("annotations", {})[CREATED_BY_OPERATION] = ctx.operation
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    if await ctx.kube.create_object(ctx.namespace, manifest) is not None:
        return f"{kind} {name} created"
    if _annotations(await ctx.kube.read(ctx.namespace, kind, name)).get(CREATED_BY_OPERATION) == ctx.operation:
        return f"{kind} {name} created (found after a restart)"
    return Skipped(f"{kind} {name} already exists: kept as it is")


async def _delete_if_mine(ctx: DatabaseContext, kind: str, name: str) -> str:
    current = await ctx.kube.read(ctx.namespace, kind, name)
    if current and _annotations(current).get(CREATED_BY_OPERATION) == ctx.operation:
        await ctx.kube.delete(ctx.namespace, kind, name)
        return f"{kind} {name} deleted"
    return f"{kind} {name} was not made by this operation: kept"


async def stop_current(ctx: DatabaseContext) -> str:
    stopped = await stop_pods(ctx, ctx.plan.from_node, keep=ctx.new_pod)
    if not stopped:
        return f"no database pod was running on {ctx.plan.from_node}"
    return f"{', '.join(stopped)} left the Service and stopped on {ctx.plan.from_node}"


async def restore_previous(ctx: DatabaseContext) -> str:
    """Undo of every step that stopped the database: start what ran before, where it ran."""
    await start_pod(ctx, ctx.restore_pod, ctx.previous, ctx.plan.from_node)
    await record(ctx, ctx.previous)
    return f"{ctx.previous.engine.value} {ctx.previous.version} back on {ctx.plan.from_node} with its volume"


async def stop_new(ctx: DatabaseContext) -> str:
    await remove_pod(ctx, ctx.new_pod)
    return f"pod {ctx.new_pod} removed"


# provision -------------------------------------------------------------------------------------


async def check(ctx: DatabaseContext) -> str:
    node = ctx.plan.to_node
    if node and await ctx.kube.node(node) is None:
        raise PermanentError(f"node {node} does not exist: nothing was changed", "NodeNotFound")
    runs = f"{ctx.spec.engine.value} {ctx.spec.version} runs {build.image(ctx.spec)}"
    if not ctx.plan.source and not ctx.plan.dump:
        return runs
    for kind, existing in (
        ("PersistentVolumeClaim", build.claim_name(ctx.name)),
        ("Secret", build.secret_name(ctx.name)),
    ):
        found = await ctx.kube.read(ctx.namespace, kind, existing)
        if found is not None and _annotations(found).get(CREATED_BY_OPERATION) != ctx.operation:
            raise PermanentError(
                f"restore refused: {kind} {existing} already exists (kept from an earlier Database of this "
                "name?), and a restore needs its own volume and the backup's credentials: nothing was changed",
                "VolumeExists",
            )
    if ctx.plan.dump:
        return f"{runs}; the dump of Backup {ctx.plan.dump} is replayed into it once it runs"
    return f"{runs}; the volume starts as VolumeSnapshot {ctx.plan.source}"


async def credentials(ctx: DatabaseContext) -> str:
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": build.secret_name(ctx.name), "labels": build.labels(ctx.name)},
        "stringData": {"username": "bosun", "password": secrets.token_urlsafe(24)},
    }
    backup = ctx.spec.source.backup if ctx.plan.source and ctx.spec.source else ""
    kept = await restored_credentials(ctx.kube, ctx.namespace, backup) if backup else None
    if kept:  # the restored data answers only to the passwords it was written with
        secret.pop("stringData")
        secret["data"] = kept
    made = await _create_once(ctx, secret)
    if backup and not isinstance(made, Skipped):
        made += f", with the credentials Backup {backup} kept" if kept else f" (Backup {backup} kept no credentials)"
    return made


async def drop_credentials(ctx: DatabaseContext) -> str:
    return await _delete_if_mine(ctx, "Secret", build.secret_name(ctx.name))


async def volume(ctx: DatabaseContext) -> str:
    made = await _create_once(ctx, build.claim(ctx.name, ctx.spec, ctx.plan.source))
    if ctx.plan.source and isinstance(made, Skipped):  # someone else's claim: not the backup's data
        raise PermanentError(f"restore refused: {made}; a restore needs a new volume", "VolumeExists")
    return made


async def drop_volume(ctx: DatabaseContext) -> str:
    return await _delete_if_mine(ctx, "PersistentVolumeClaim", build.claim_name(ctx.name))


async def start(ctx: DatabaseContext) -> str:
    await ctx.kube.apply(ctx.namespace, build.service(ctx.name, ctx.uid, ctx.spec))
    # A restore from a dump joins its Service once the dump is in (the replay step), not half-filled.
    ready = await start_pod(ctx, ctx.new_pod, ctx.spec, ctx.plan.to_node, serving=not ctx.plan.dump)
    return f"pod {ctx.new_pod} Ready on {ready['spec']['nodeName']}"


async def record_next(ctx: DatabaseContext) -> str:
    return await record(ctx, ctx.spec)


async def unrecord(ctx: DatabaseContext) -> str:
    await ctx.status.set(phase=TargetPhase.PENDING, node="")
    return "status back to Pending"


# restart ---------------------------------------------------------------------------------------


async def start_in_place(ctx: DatabaseContext) -> str:
    await start_pod(ctx, ctx.new_pod, ctx.spec, ctx.plan.from_node)
    return await record(ctx, ctx.spec)


# redeploy --------------------------------------------------------------------------------------


async def check_target(ctx: DatabaseContext) -> str:
    target = ctx.plan.to_node
    zone = await volume_zone(ctx.kube, ctx.namespace, ctx.name)
    node = await ctx.kube.node(target)
    if node is None:
        raise PermanentError(f"move refused before any downtime: node {target} does not exist", "MoveRefused")
    why = await refusal(ctx.kube, node, ctx.plan, zone, ctx.name)
    if why:
        raise PermanentError(f"move refused before any downtime: {why}", "MoveRefused")
    checked = f"{target} is Ready, schedulable, has room and is in zone {zone}"
    return f"{ctx.plan.why}; {checked}" if ctx.plan.why else checked


async def recheck_target(ctx: DatabaseContext) -> str:
    """Every precondition again, at the last moment before the downtime starts."""
    checked = await check_target(ctx)
    return "still true just before the stop: " + checked.rsplit("; ", 1)[-1]


def _puller(ctx: DatabaseContext) -> str:
    return f"{ctx.new_pod}-prepull"


async def pre_pull(ctx: DatabaseContext) -> str:
    """A placeholder pod: it pulls the image on the target and holds the database's room there."""
    await _pull(ctx, ctx.plan.to_node, hold_room=True)
    return f"image {build.image(ctx.spec)} pulled on {ctx.plan.to_node}; its room held there"


async def pre_pull_in_place(ctx: DatabaseContext) -> str:
    """A new image (a version change) is pulled on the database's own node before it stops, so an
    image that cannot be pulled fails the restart with the kubelet's words and no downtime. The
    placeholder asks for no room (the database's own is there) and leaves once the image is in."""
    image, node = build.image(ctx.spec), ctx.plan.from_node
    if ctx.plan.previous is not None and image == build.image(ctx.plan.previous):
        return Skipped(f"the image stays {image}: nothing to pull")
    await _pull(ctx, node, hold_room=False)
    await drop_puller(ctx)
    return f"image {image} pulled on {node}"


async def _pull(ctx: DatabaseContext, node: str, hold_room: bool) -> None:
    container: dict[str, Any] = {"name": "pull", "image": build.image(ctx.spec), "command": ["sleep", "86400"]}
    if hold_room and build.requests(ctx.spec):
        container["resources"] = {"requests": build.requests(ctx.spec)}
    puller = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": _puller(ctx), "labels": {PREPULL_LABEL: ctx.name}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [container],
            **({"tolerations": build.tolerations(ctx.spec)} if build.tolerations(ctx.spec) else {}),
        },
    }
    await ctx.kube.create_object(ctx.namespace, puller)
    async with contextlib.aclosing(ctx.kube.pod_states(ctx.namespace, _puller(ctx), POLL_SECONDS)) as states:
        async for current in states:  # Running means the kubelet has pulled the image
            if current is None:
                raise TransientError(f"puller pod {_puller(ctx)} vanished before it ran")
            phase = (current.get("status") or {}).get("phase")
            if phase == "Running":
                return
            if phase in ("Failed", "Succeeded"):
                raise PermanentError(f"the image could not be readied on {node} ({phase})", "PullFailed")
            pull = image_pull_failure(current)
            if pull:  # before the database stops: nothing has been down
                raise PermanentError(f"the image cannot be pulled on {node}: {pull}", "PullFailed")
    raise TransientError(f"the watch of puller pod {_puller(ctx)} ended")


async def image_on_target(ctx: DatabaseContext) -> str:
    """What `pre_pull` would find (dry run): the image on the target node already, or a pull to come."""
    image, node = build.image(ctx.spec), ctx.plan.to_node
    found = await ctx.kube.node(node)
    listed = ((found or {}).get("status") or {}).get("images") or []
    names = {n for i in listed for n in i.get("names") or []}
    if image in names:
        return f"{node} reports image {image}: nothing to pull"
    pulled = "a pull there runs before the old pod stops (no downtime)"
    if not listed:
        return f"{node} reports no images (not every node does), so whether it has {image} is unknown: {pulled}"
    # A kubelet lists at most --node-status-max-images images (50 by default), the largest first.
    return f"{node} does not list image {image} among the {len(listed)} it reports: {pulled}"


async def drop_puller(ctx: DatabaseContext) -> str:
    await ctx.kube.delete(ctx.namespace, "Pod", _puller(ctx))
    return "puller removed"


async def pre_provision(ctx: DatabaseContext) -> str:
    await ctx.kube.apply(ctx.namespace, build.service(ctx.name, ctx.uid, ctx.spec))
    if await ctx.kube.read(ctx.namespace, "Secret", build.secret_name(ctx.name)) is None:
        raise PermanentError("the credentials Secret is missing", "CredentialsMissing")
    return "Service and credentials in place"


class Attachments:
    """The VolumeAttachments of the database's volume on given nodes, read by name.

    The attach/detach controller names a CSI attachment `csi-<sha256(handle + driver + node)>`, so
    one read answers "is it attached to this node" however many volumes the cluster has; listing
    every VolumeAttachment each poll grew with the cluster. A volume that is not CSI is looked up
    in the list, as before. A CSI driver that needs no attach (its CSIDriver says
    `attachRequired: false`, as NFS-like drivers do) gets no VolumeAttachment at all: there is
    nothing to wait for.
    """

    def __init__(self, ctx: DatabaseContext, volume: dict[str, Any] | None, driver: dict[str, Any] | None) -> None:
        self.ctx = ctx
        self.volume_name = ((volume or {}).get("metadata") or {}).get("name", "")
        csi = ((volume or {}).get("spec") or {}).get("csi") or {}
        self.handle, self.driver = csi.get("volumeHandle"), csi.get("driver")
        self.access_modes: list[str] = list(((volume or {}).get("spec") or {}).get("accessModes") or [])
        # No CSIDriver object: the attach/detach controller attaches, and so we wait.
        self.required = ((driver or {}).get("spec") or {}).get("attachRequired", True) is not False

    @classmethod
    async def of(cls, ctx: DatabaseContext) -> Attachments:
        claim = await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", build.claim_name(ctx.name)) or {}
        name = (claim.get("spec") or {}).get("volumeName")
        volume = await ctx.kube.persistent_volume(name) if name else None
        driver = (((volume or {}).get("spec") or {}).get("csi") or {}).get("driver")
        try:
            found = await ctx.kube.csi_driver(driver) if driver else None
        except PermanentError:  # not allowed to read CSIDrivers (a chart older than the operator)
            found = None  # so wait for the attachment, as before
        return cls(ctx, volume, found)

    @property
    def needs_none(self) -> str:
        """Why nothing is attached to a node ('' when attachments are to be waited for)."""
        return "" if self.required else f"CSI driver {self.driver} attaches nothing (attachRequired: false)"

    @property
    def in_use_name(self) -> str:
        """The name a kubelet gives the volume in its node's `status.volumesInUse` ('' if not CSI)."""
        return f"kubernetes.io/csi/{self.driver}^{self.handle}" if self.handle and self.driver else ""

    @property
    def one_node_at_a_time(self) -> bool:
        """The attach/detach controller attaches it to one node at a time: its access modes are
        all single-node. With none listed, or a ReadWriteMany among them, it would attach it to a
        second node while the first still has it."""
        return bool(self.access_modes) and set(self.access_modes) <= {"ReadWriteOnce", "ReadWriteOncePod"}

    async def elsewhere(self, node: str) -> list[str]:
        """The other nodes the volume is attached to now. Lists every VolumeAttachment: asked
        only when the controller says the volume is held, at most every few seconds."""
        listed = await self.ctx.kube.volume_attachments(self.volume_name) if self.volume_name else []
        return [a["spec"]["nodeName"] for a in listed if a["spec"]["nodeName"] != node]

    async def on(self, node: str) -> dict[str, Any] | None:
        if not self.required:
            return None
        if self.handle and self.driver:
            key = hashlib.sha256(f"{self.handle}{self.driver}{node}".encode()).hexdigest()
            return await self.ctx.kube.volume_attachment(f"csi-{key}")
        listed = await self.ctx.kube.volume_attachments(self.volume_name) if self.volume_name else []
        return next((a for a in listed if a["spec"]["nodeName"] == node), None)


def reported_in_use(node: dict[str, Any] | None, in_use_name: str) -> bool:
    return in_use_name in (((node or {}).get("status") or {}).get("volumesInUse") or [])


async def early_placement_refusal(ctx: DatabaseContext, attachments: Attachments) -> str:
    """Why the new pod must wait for the detach before it is created ('' when it may come now).

    Placed early, the new pod is safe only where nothing can mount the volume for it before the
    old node lets go: a volume the controller attaches, to one node at a time, and a kubelet that
    mounts only what is attached to its node. A kubelet that works so says it: it lists the
    volumes it mounts in its node's `status.volumesInUse`, and the old node lists this one.
    """
    if attachments.needs_none:
        return f"{attachments.needs_none}, so the new pod would mount the volume at once"
    if not attachments.in_use_name:
        return "the volume is not a CSI volume"
    if not attachments.one_node_at_a_time:
        modes = ", ".join(attachments.access_modes) or "none"
        return f"the volume's access modes ({modes}) would let it attach to two nodes"
    if not reported_in_use(await ctx.kube.node(ctx.plan.from_node), attachments.in_use_name):
        return f"{ctx.plan.from_node} does not report the volume in use (no kubelet tracks its mounts there)"
    return ""


async def early_placement(ctx: DatabaseContext) -> str:
    """What `place_new` would do (dry run)."""
    why = await early_placement_refusal(ctx, await Attachments.of(ctx))
    if why:
        return f"the new pod is created after the detach: {why}"
    return f"the new pod is placed on {ctx.plan.to_node} before the stop, to wait there for the volume"


async def place_new(ctx: DatabaseContext) -> str:
    """Put the new pod on the target before the downtime, where it waits for the volume.

    A kubelet mounts a volume only after its node status has said the volume is in use, and it
    says so every `nodeStatusUpdateFrequency` (10 s by default). Created after the detach, the new
    pod waited for that report inside the downtime; placed now, the report comes before the stop.
    The controller refuses it the volume (Multi-Attach) until the old node lets go of it.
    """
    attachments = await Attachments.of(ctx)
    why = await early_placement_refusal(ctx, attachments)
    if why:
        return Skipped(f"the new pod is created after the detach: {why}")
    target = ctx.plan.to_node
    await remove_pod(ctx, _puller(ctx))  # hands its room to the new pod
    await ctx.kube.create_object(ctx.namespace, build.pod(ctx.name, ctx.uid, ctx.spec, ctx.new_pod, target))
    clock = asyncio.get_running_loop().time
    began, unschedulable_since = clock(), None
    while True:
        node = await ctx.kube.node(target)
        if not node_ready(node):
            raise PermanentError(f"move refused before any downtime: node {target} is not Ready", "NodeNotReady")
        if reported_in_use(node, attachments.in_use_name):
            return (
                f"pod {ctx.new_pod} placed on {target}, which reported the volume in use after "
                f"{clock() - began:.1f}s: its mount will wait only for the attach"
            )
        pod = await ctx.kube.read(ctx.namespace, "Pod", ctx.new_pod)
        if pod is None:
            raise TransientError(f"pod {ctx.new_pod} vanished before its node took it")
        if running(pod):  # a node that does not wait for the attach: two databases on one volume
            raise PermanentError(
                f"move refused before any downtime: {target} started pod {ctx.new_pod} before its volume "
                "was attached there",
                "MountedUnattached",
            )
        cause = unschedulable(pod)
        now = clock()
        unschedulable_since = (unschedulable_since or now) if cause else None
        if cause and now - (unschedulable_since or now) >= UNSCHEDULABLE_GRACE_SECONDS:
            raise PermanentError(
                f"move refused before any downtime: the new pod cannot be placed: {cause}", "Unschedulable"
            )
        await asyncio.sleep(NODE_POLL_SECONDS)


async def detach(ctx: DatabaseContext) -> str:
    attachments = await Attachments.of(ctx)
    if attachments.needs_none:
        return f"nothing to detach: {attachments.needs_none}"
    while await attachments.on(ctx.plan.from_node):
        await asyncio.sleep(POLL_SECONDS)
    return f"volume detached from {ctx.plan.from_node}"


UNSCHEDULABLE_GRACE_SECONDS = 5.0
UNSCHEDULABLE = "Unschedulable"
NODE_POLL_SECONDS = 1.0  # the target's report is read this often while the new pod waits there
LATE_ATTACH_SECONDS = 5.0  # an attach this late: did another node take the volume? (asked every 5 s)


NAMED_HOLDERS = re.compile(r"used by pod\(s\) (.+?)(?: and \d+ pod\(s\) in different namespaces)?$")


def pods_named(message: str) -> list[str]:
    """The pods of this namespace a Multi-Attach error says use the volume."""
    found = NAMED_HOLDERS.search(message)
    return [n.strip() for n in found.group(1).split(",")] if found else []


def multi_attach_error(events: list[dict[str, Any]]) -> str:
    """The attach/detach controller's newest "Multi-Attach error" for a pod ('' when none): the
    volume is read-write-once and attached to another node, for the pods it names."""
    found = [
        e for e in events if e.get("reason") == "FailedAttachVolume" and "Multi-Attach" in (e.get("message") or "")
    ]
    found.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return str(found[-1]["message"]) if found else ""


async def _attach_events(ctx: DatabaseContext, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The controller's attach failures for this very pod (by uid: not a pod of the same name an
    earlier run of the operation made); none when Events may not be listed (an older chart)."""
    try:
        return await ctx.kube.events_of(
            ctx.namespace, "Pod", ctx.new_pod, uid=pod["metadata"].get("uid", ""), reason="FailedAttachVolume"
        )
    except PermanentError:
        return []


async def attach(ctx: DatabaseContext) -> str:
    target = ctx.plan.to_node
    await remove_pod(ctx, _puller(ctx))  # hands its room to the new pod
    await ctx.kube.create_object(ctx.namespace, build.pod(ctx.name, ctx.uid, ctx.spec, ctx.new_pod, target))
    attachments = await Attachments.of(ctx)
    if attachments.needs_none:
        return f"nothing to attach: {attachments.needs_none}"
    unschedulable_since: float | None = None
    clock = asyncio.get_running_loop().time
    ask_events_at = clock() + LATE_ATTACH_SECONDS
    for poll in itertools.count():
        if ((await attachments.on(target) or {}).get("status") or {}).get("attached"):
            return f"volume attached to {target}"
        if poll % 4:  # the node and the pod are looked at once a second, the attachment at every poll
            await asyncio.sleep(POLL_SECONDS)
            continue
        if not node_ready(await ctx.kube.node(target)):
            raise PermanentError(f"node {target} went NotReady during the move", "NodeNotReady")
        pod = await ctx.kube.read(ctx.namespace, "Pod", ctx.new_pod)
        why = unschedulable(pod)
        now = clock()
        unschedulable_since = (unschedulable_since or now) if why else None
        if why and now - (unschedulable_since or now) >= UNSCHEDULABLE_GRACE_SECONDS:
            raise PermanentError(f"the new pod cannot be placed on {target}: {why}", "Unschedulable")
        if pod and now >= ask_events_at:
            # Another pod that waited for this read-write-once volume gets it the moment it leaves
            # the old node: the controller says so on the new pod, which would wait until the timeout.
            ask_events_at = now + LATE_ATTACH_SECONDS
            held = await held_elsewhere(ctx, attachments, multi_attach_error(await _attach_events(ctx, pod)))
            if held:
                raise PermanentError(f"the volume cannot attach to {target}: {held}", "VolumeHeldElsewhere")
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError("unreachable: the polls never end on their own")


async def held_elsewhere(ctx: DatabaseContext, attachments: Attachments, error: str) -> str:
    """The controller's Multi-Attach error if it still holds ('' when it does not).

    A new pod placed before the stop collected such errors naming the old pod, or saying the
    volume was still attached to the old node: they are past once the pods named are gone, or no
    other node has the volume. Pods of other namespaces are not named, and are taken at its word.
    """
    if not error or "in different namespaces" in error:
        return error
    named = pods_named(error)
    if named:
        for name in named:
            if name != ctx.new_pod and await ctx.kube.read(ctx.namespace, "Pod", name) is not None:
                return error
        return ""
    return error if await attachments.elsewhere(ctx.plan.to_node) else ""


async def detach_new(ctx: DatabaseContext) -> str:
    target = ctx.plan.to_node
    await remove_pod(ctx, ctx.new_pod)
    attachments = await Attachments.of(ctx)
    while await attachments.on(target):
        await asyncio.sleep(POLL_SECONDS)
    return f"new pod removed, volume detached from {target}"


async def start_new(ctx: DatabaseContext) -> str:
    pod = await wait_ready(ctx, ctx.new_pod, ctx.plan.to_node, stable=ctx.spec.min_ready_seconds)
    await record(ctx, ctx.spec)
    operation = await ctx.kube.read(ctx.namespace, "Operation", ctx.operation) or {}
    stopped_at = (steps_of(operation).get("stop-old") or {}).get("startedAt")
    serving_at = ready_at(pod)
    downtime = (parse_time(serving_at) - parse_time(stopped_at)).total_seconds() if stopped_at and serving_at else 0.0
    await ctx.status.set(lastMoveDowntimeSeconds=round(downtime, 1))
    if stopped_at and serving_at:
        metrics.MOVE_DOWNTIME.observe(downtime)
    return (
        f"database Ready on {ctx.plan.to_node} (stayed Ready {ctx.spec.min_ready_seconds}s); "
        f"downtime {downtime:.1f}s (stop, detach, attach, start)"
    )


def steps_of(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (operation.get("status") or {}).get("steps") or []}


async def restore_previous_after_new(ctx: DatabaseContext) -> str:
    """Undo of a move's stop: the new pod leaves the target first (placed before the stop, it may
    hold the volume by now), then what ran before starts where it ran."""
    await detach_new(ctx)
    return await restore_previous(ctx)


async def status_names_old_node(ctx: DatabaseContext) -> str:
    return f"the undo of stop-old records {ctx.plan.from_node} again"


# resize ----------------------------------------------------------------------------------------


async def _claim(ctx: DatabaseContext) -> dict[str, Any]:
    claim = await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", build.claim_name(ctx.name))
    if claim is None:
        raise PermanentError(f"claim {build.claim_name(ctx.name)} does not exist", "VolumeMissing")
    return claim


async def check_volume(ctx: DatabaseContext) -> str:
    claim = await _claim(ctx)
    class_name = (claim.get("spec") or {}).get("storageClassName") or ""
    storage_class = await ctx.kube.storage_class(class_name) if class_name else None
    if not storage_class or not storage_class.get("allowVolumeExpansion"):
        raise PermanentError(
            f"resize refused: StorageClass {class_name or '(none)'} does not allow volume expansion; "
            "nothing was changed",
            "ResizeRefused",
        )
    current = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "0")
    wanted = ctx.spec.storage.size
    if quantity(wanted) < quantity(current):
        raise PermanentError(
            f"resize refused: the volume is {current} and volumes cannot shrink to {wanted}", "ResizeRefused"
        )
    return f"StorageClass {class_name} can expand the volume from {current} to {wanted}"


async def expand(ctx: DatabaseContext) -> str:
    claim = await _claim(ctx)
    current = claim["spec"]["resources"]["requests"]["storage"]
    if quantity(current) >= quantity(ctx.spec.storage.size):
        if _annotations(claim).get(RESIZED_BY_OPERATION) == ctx.operation:
            return f"claim raised to {current} (found after a restart)"
        return Skipped(f"the claim already requests {current}")
    patch = {
        "metadata": {"annotations": {RESIZED_BY_OPERATION: ctx.operation}},
        "spec": {"resources": {"requests": {"storage": ctx.spec.storage.size}}},
    }
    await ctx.kube.patch_object(ctx.namespace, "PersistentVolumeClaim", build.claim_name(ctx.name), patch)
    return f"claim raised from {current} to {ctx.spec.storage.size}"


# What a claim says while its volume has grown and its filesystem has not yet (Kubernetes' own
# names): the node grows the filesystem online, or, with drivers that grow it offline, when the
# volume is next mounted, which the `restart` step then brings about.
NODE_RESIZE = {"NodeResizePending", "NodeResizeInProgress", "NodeResizeFailed"}


def claim_capacity(claim: dict[str, Any]) -> str:
    """The capacity the claim reports: its filesystem's size once the node has grown it."""
    return str(((claim.get("status") or {}).get("capacity") or {}).get("storage", "0"))


def filesystem_pending(claim: dict[str, Any]) -> bool:
    status = claim.get("status") or {}
    if (status.get("allocatedResourceStatuses") or {}).get("storage") in NODE_RESIZE:
        return True
    return any(
        c.get("type") == "FileSystemResizePending" and c.get("status") == "True" for c in status.get("conditions") or []
    )


async def wait_capacity(ctx: DatabaseContext) -> str:
    """Until the volume has grown: the claim reports the size, or the node is left to grow the filesystem."""
    while True:
        claim = await _claim(ctx)
        capacity = claim_capacity(claim)
        if quantity(capacity) >= quantity(ctx.spec.storage.size):
            return f"the volume reports {capacity}"
        if filesystem_pending(claim) and await _volume_grown(ctx, claim):
            return f"the volume grew to {ctx.spec.storage.size}; its filesystem grows on the node"
        await asyncio.sleep(POLL_SECONDS)


async def _volume_grown(ctx: DatabaseContext, claim: dict[str, Any]) -> bool:
    name = (claim.get("spec") or {}).get("volumeName")
    volume = await ctx.kube.persistent_volume(name) if name else None
    size = (((volume or {}).get("spec") or {}).get("capacity") or {}).get("storage", "0")
    return quantity(size) >= quantity(ctx.spec.storage.size)


async def ensure_running(ctx: DatabaseContext) -> str:
    """Undo of a restart in place: the same spec runs, so all there is to undo is a stopped pod."""
    mine = (ctx.new_pod, ctx.restore_pod)
    pods = [p for p in await ctx.kube.pods_on(ctx.plan.from_node) if p["metadata"]["name"] in mine]
    if any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        return "the database runs"
    await start_pod(ctx, ctx.restore_pod, ctx.previous, ctx.plan.from_node)
    return f"the database runs again on {ctx.plan.from_node}"


ONLINE_GROW_SECONDS = 15.0  # how long a node may take to grow a mounted filesystem before Bosun restarts


def online_growth_refused(claim: dict[str, Any]) -> bool:
    """The kubelet tried to grow the mounted filesystem and could not (the driver grows it offline)."""
    status = claim.get("status") or {}
    if (status.get("allocatedResourceStatuses") or {}).get("storage") == "NodeResizeFailed":
        return True
    return any(c.get("type") == "NodeResizeError" and c.get("status") == "True" for c in status.get("conditions") or [])


async def restart_if_needed(ctx: DatabaseContext) -> str:
    """A restart only where the node cannot grow the filesystem while it is mounted: a driver that
    grows it online gets its moment first (the claim catches up a little after the volume)."""
    deadline = asyncio.get_running_loop().time() + ONLINE_GROW_SECONDS
    while True:
        claim = await _claim(ctx)
        if quantity(claim_capacity(claim)) >= quantity(ctx.spec.storage.size):
            return Skipped("the filesystem grew online: no restart needed")
        if online_growth_refused(claim) or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    await stop_pods(ctx, ctx.plan.from_node, keep=ctx.new_pod)
    await start_pod(ctx, ctx.new_pod, ctx.spec, ctx.plan.from_node)
    while True:  # the kubelet grows the filesystem as it mounts the volume, then says so on the claim
        claim = await _claim(ctx)
        capacity = claim_capacity(claim)
        if quantity(capacity) >= quantity(ctx.spec.storage.size):
            return f"restarted in place so the filesystem grows: the volume reports {capacity}"
        await asyncio.sleep(POLL_SECONDS)


# deprovision -----------------------------------------------------------------------------------


async def remove_service(ctx: DatabaseContext) -> str:
    await ctx.kube.delete(ctx.namespace, "Service", ctx.name)
    return f"Service {ctx.name} deleted"


async def restore_service(ctx: DatabaseContext) -> str:
    await ctx.kube.apply(ctx.namespace, build.service(ctx.name, ctx.uid, ctx.previous))
    return f"Service {ctx.name} created again"


async def keep_volume(ctx: DatabaseContext) -> str:
    claim = await _claim(ctx)
    volume_name = (claim.get("spec") or {}).get("volumeName", "")
    if volume_name:
        await ctx.kube.patch_persistent_volume(volume_name, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
    return (
        f"kept claim {build.claim_name(ctx.name)} (volume {volume_name}, reclaim policy Retain) and Secret "
        f"{build.secret_name(ctx.name)}: provision again to use the data"
    )


async def volume_kept(ctx: DatabaseContext) -> str:
    return "the volume was only kept: nothing to undo"


async def delete_volume(ctx: DatabaseContext) -> str:
    claim_name = build.claim_name(ctx.name)
    await ctx.kube.delete(ctx.namespace, "PersistentVolumeClaim", claim_name)
    await ctx.kube.delete(ctx.namespace, "Secret", build.secret_name(ctx.name))
    while await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", claim_name) is not None:
        await asyncio.sleep(POLL_SECONDS)
    return f"claim {claim_name} and Secret {build.secret_name(ctx.name)} deleted (reclaim policy Delete)"


async def mark_deprovisioned(ctx: DatabaseContext) -> str:
    await ctx.status.set(phase=TargetPhase.DEPROVISIONED, node="", endpoint="", running=None)
    return "Database marked Deprovisioned; its operations stay in history"


async def mark_running(ctx: DatabaseContext) -> str:
    await ctx.status.set(phase=TargetPhase.RUNNING)
    return "Database marked Running again"


PROVISION: StepTable[DatabaseContext] = StepTable(
    "database-provision",
    [
        no_side_effect("check", "map engine and version to an image", check, timeout=30, check=check),
        Step("credentials", "create the credentials Secret", credentials, drop_credentials, timeout=30),
        Step("volume", "create the data volume claim", volume, drop_volume, timeout=30),
        Step("start", "start the database pod and its Service", start, stop_new, timeout=300),
        Step("record", "record node, volume and endpoint", record_next, unrecord, timeout=30),
    ],
)

STOP = Step("stop", "take the pod out of the Service and stop it", stop_current, restore_previous, timeout=120)

RESTART: StepTable[DatabaseContext] = StepTable(
    "database-restart",
    [
        Step(
            "pre-pull",
            "pull a new image on the database's node before it stops",
            pre_pull_in_place,
            drop_puller,
            timeout=300,
        ),
        STOP,
        Step("start", "start the database again on the same node", start_in_place, stop_new, timeout=300),
    ],
    downtime_steps=("stop", "start"),
)

_MOVE_STEPS: list[Step[DatabaseContext]] = [
    no_side_effect(
        "check-target", "check the target node can take the database", check_target, timeout=30, check=check_target
    ),
    Step(
        "pre-pull",
        "pull the database image on the target node and hold its room there",
        pre_pull,
        drop_puller,
        timeout=300,
        check=image_on_target,
    ),
    no_side_effect("pre-provision", "make sure the Service and credentials exist", pre_provision, timeout=30),
    Step(
        "place-new",
        "place the new pod on the target, to wait there for the volume",
        place_new,
        detach_new,
        timeout=120,
        check=early_placement,
    ),
    no_side_effect(
        "recheck-target", "check the target node again, just before the old pod stops", recheck_target, timeout=30
    ),
    Step(
        "stop-old",
        "take the old pod out of the Service and stop it",
        stop_current,
        restore_previous_after_new,
        timeout=120,
    ),
    no_side_effect("detach", "wait until the volume leaves the old node", detach, timeout=120),
    Step(
        "attach",
        "start the pod on the target node; wait until the volume is attached",
        attach,
        detach_new,
        timeout=120,
    ),
    Step(
        "start",
        "wait until the database is Ready and serving; record the downtime",
        start_new,
        status_names_old_node,
        timeout=300,
    ),
]
MOVE_DOWNTIME = ("stop-old", "detach", "attach", "start")
MOVE: StepTable[DatabaseContext] = StepTable("database-move", _MOVE_STEPS, downtime_steps=MOVE_DOWNTIME)
# The move as versions before `place-new` planned it: an operation one of them started finishes on
# the steps it recorded (a table's steps must match the record).
REDEPLOY: StepTable[DatabaseContext] = StepTable(
    "database-redeploy", [s for s in _MOVE_STEPS if s.name != "place-new"], downtime_steps=MOVE_DOWNTIME
)

RESIZE: StepTable[DatabaseContext] = StepTable(
    "database-resize",
    [
        no_side_effect(
            "check-volume", "check the StorageClass can expand the volume", check_volume, timeout=30, check=check_volume
        ),
        irreversible(
            "expand",
            "raise the claim's storage request",
            expand,
            "a volume cannot shrink: the claim keeps its larger size",
            timeout=30,
        ),
        no_side_effect("wait-capacity", "wait until the new capacity shows", wait_capacity, timeout=300),
        Step("restart", "restart in place if the filesystem needs it", restart_if_needed, ensure_running, timeout=300),
        no_side_effect("record", "record the new capacity", record_next, timeout=30),
    ],
    downtime_steps=("restart",),
)

_DEPROVISION_HEAD = [
    STOP,
    Step("remove-service", "delete the Service", remove_service, restore_service, timeout=30),
]
_DEPROVISION_TAIL = Step("record", "mark the Database Deprovisioned", mark_deprovisioned, mark_running, timeout=30)

DEPROVISION_RETAIN: StepTable[DatabaseContext] = StepTable(
    "database-deprovision-retain",
    [
        *_DEPROVISION_HEAD,
        Step("keep-volume", "keep the volume and credentials", keep_volume, volume_kept, timeout=30),
        _DEPROVISION_TAIL,
    ],
    ends_service=True,
)

DEPROVISION_DELETE: StepTable[DatabaseContext] = StepTable(
    "database-deprovision-delete",
    [
        *_DEPROVISION_HEAD,
        irreversible(
            "delete-volume",
            "delete the volume claim and credentials",
            delete_volume,
            "deleted data cannot be brought back",
            timeout=120,
        ),
        _DEPROVISION_TAIL,
    ],
    ends_service=True,
)


def with_backup(table: StepTable[DatabaseContext], before: str) -> StepTable[DatabaseContext]:
    """The table with a backup step just before `before`: after every check that could refuse the
    change (a refused change needs no backup), before anything that cannot be undone, and while the
    database still runs (a consistent backup needs it). A new name, not a changed table: an
    operation an earlier version planned finishes on its own steps."""
    steps = list(table.steps)
    at = [s.name for s in steps].index(before)
    return StepTable(
        f"{table.name}-backup-first",
        [*steps[:at], BACKUP_FIRST, *steps[at:]],
        downtime_steps=table.downtime_steps,
        ends_service=table.ends_service,
    )


PROVISION_FROM_DUMP = with_replay(PROVISION)
RESTART_BACKUP_FIRST = with_backup(RESTART, before="stop")  # a version change: after its image is pulled
RESIZE_BACKUP_FIRST = with_backup(RESIZE, before="expand")
DEPROVISION_DELETE_BACKUP_FIRST = with_backup(DEPROVISION_DELETE, before="stop")

TABLES = {
    table.name: table
    for table in (
        PROVISION,
        RESTART,
        MOVE,
        REDEPLOY,
        RESIZE,
        DEPROVISION_RETAIN,
        DEPROVISION_DELETE,
        BACKUP,
        RESTART_BACKUP_FIRST,
        RESIZE_BACKUP_FIRST,
        DEPROVISION_DELETE_BACKUP_FIRST,
        DUMP,
        PROVISION_FROM_DUMP,
    )
}
