"""Database operations: provision and redeploy (move to another node), as step tables.

provision

| step        | run                                              | undo                               | timeout |
| ----------- | ------------------------------------------------ | ---------------------------------- | ------- |
| check       | engine and version map to an image               | none: no side effect               | 30 s    |
| credentials | create the credentials Secret (never overwrite)  | delete it if this operation made it | 30 s   |
| volume      | create the data PVC                              | delete it if this operation made it | 30 s   |
| start       | create Service and pod; wait until Ready, bound  | delete the pod                      | 5 min  |
| record      | status: node, volume, endpoint, phase Running    | phase back to Pending               | 30 s   |

redeploy: everything the new node needs is in place before the old pod stops, so the downtime is
only stop, detach, attach and start (recorded in `status.steps` timestamps and the message).

| step          | run                                                   | undo                              | timeout |
| ------------- | ----------------------------------------------------- | --------------------------------- | ------- |
| check-target  | target exists, Ready, schedulable, has room, same     | none: no side effect              | 30 s    |
|               | zone as the volume; else refuse before any downtime   |                                   |         |
| pre-pull      | a short-lived pod with the image on the target node   | remove the puller pod             | 5 min   |
| pre-provision | Service and credentials exist                         | none: no side effect              | 30 s    |
| stop-old      | leave the Service, then stop the old pod; wait gone   | start the pod on the old node     | 2 min   |
| detach        | wait until the volume is attached to no node          | none: waiting changes nothing     | 2 min   |
| attach        | create the pod on the target; wait until attached     | delete the new pod, wait detached | 2 min   |
| start         | wait until the new pod is Ready; record the downtime  | status names the old node again   | 5 min   |
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bosun.engine.service import Plan
from bosun.engine.steps import PermanentError, Skipped, Step, StepTable, TransientError, no_side_effect
from bosun.kube import Kube
from bosun.models.database import DatabaseSpec, DatabaseStatus, VolumeRef
from bosun.models.operation import Operation, OperationType
from bosun.workloads import database as build

POLL_SECONDS = 0.25
CREATED_BY = "bosun.dev/created-by-operation"
ZONE = "topology.kubernetes.io/zone"
TARGET_NODE_ANNOTATION = "bosun.dev/target-node"


@dataclass
class DatabaseContext:
    kube: Kube
    namespace: str
    name: str
    uid: str
    operation: str
    spec: DatabaseSpec
    status: DatabaseStatus
    target_node: str | None

    def pod_name(self, node: str) -> str:
        return f"{self.name}-{hashlib.sha256(node.encode()).hexdigest()[:6]}"


async def plan_database(kube: Kube, operation: Operation, target: dict[str, Any]) -> Plan[DatabaseContext]:
    if not target:
        raise PermanentError("the Database no longer exists", "TargetNotFound")
    meta = target["metadata"]
    status = DatabaseStatus.model_validate(target.get("status") or {})
    params = operation.spec.parameters
    ctx = DatabaseContext(
        kube=kube,
        namespace=operation.namespace,
        name=meta["name"],
        uid=meta["uid"],
        operation=operation.name,
        spec=DatabaseSpec.model_validate(target.get("spec") or {}),
        status=status,
        target_node=params.node if params else None,
    )
    if operation.spec.type is OperationType.PROVISION:
        return Plan(PROVISION, ctx)
    if not status.node:
        raise PermanentError("the Database is not running on any node yet: provision it first", "NotProvisioned")
    chosen = operation.annotations.get(TARGET_NODE_ANNOTATION)
    if ctx.target_node is None and chosen:
        ctx.target_node = chosen
    elif ctx.target_node is None:  # Bosun picks, once: the choice is stored before any step runs
        ctx.target_node = await choose_node(ctx)
        await kube.patch(
            "Operation",
            operation.namespace,
            operation.name,
            {"metadata": {"annotations": {TARGET_NODE_ANNOTATION: ctx.target_node}}},
        )
    return Plan(REDEPLOY, ctx)


# provision ----------------------------------------------------------------------------------


async def check(ctx: DatabaseContext) -> str:
    return f"{ctx.spec.engine.value} {ctx.spec.version} runs {build.image(ctx.spec)}"


async def _create_once(ctx: DatabaseContext, manifest: dict[str, Any]) -> str:
    manifest["metadata"].setdefault("annotations", {})[CREATED_BY] = ctx.operation
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    if await ctx.kube.create_object(ctx.namespace, manifest) is None:
        return Skipped(f"{kind} {name} already exists: kept as it is")
    return f"{kind} {name} created"


async def _delete_if_mine(ctx: DatabaseContext, kind: str, name: str) -> str:
    current = await ctx.kube.read(ctx.namespace, kind, name)
    if current and (current["metadata"].get("annotations") or {}).get(CREATED_BY) == ctx.operation:
        await ctx.kube.delete(ctx.namespace, kind, name)
        return f"{kind} {name} deleted"
    return f"{kind} {name} was not made by this operation: kept"


async def credentials(ctx: DatabaseContext) -> str:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": build.secret_name(ctx.name), "labels": build.labels(ctx.name)},
        "stringData": {"username": "bosun", "password": secrets.token_urlsafe(24)},
    }
    return await _create_once(ctx, secret)


async def drop_credentials(ctx: DatabaseContext) -> str:
    return await _delete_if_mine(ctx, "Secret", build.secret_name(ctx.name))


async def volume(ctx: DatabaseContext) -> str:
    return await _create_once(ctx, build.claim(ctx.name, ctx.spec))


async def drop_volume(ctx: DatabaseContext) -> str:
    return await _delete_if_mine(ctx, "PersistentVolumeClaim", build.claim_name(ctx.name))


async def start(ctx: DatabaseContext) -> str:
    await ctx.kube.apply(ctx.namespace, build.service(ctx.name, ctx.uid, ctx.spec))
    node = ctx.target_node or (ctx.spec.placement.node if ctx.spec.placement else None)
    pod_name = f"{ctx.name}-{hashlib.sha256(ctx.operation.encode()).hexdigest()[:6]}"
    await ctx.kube.create_object(ctx.namespace, build.pod(ctx.name, ctx.uid, ctx.spec, pod_name, node))
    ready = await _wait_ready(ctx, pod_name)
    return f"pod {pod_name} Ready on {ready['spec']['nodeName']}"


async def stop_new(ctx: DatabaseContext) -> str:
    pod_name = f"{ctx.name}-{hashlib.sha256(ctx.operation.encode()).hexdigest()[:6]}"
    await ctx.kube.delete(ctx.namespace, "Pod", pod_name)
    await _wait_gone(ctx, pod_name)
    return f"pod {pod_name} removed"


async def record(ctx: DatabaseContext) -> str:
    pods = [p for p in await ctx.kube.list_pods(ctx.namespace, {build.DATABASE_LABEL: ctx.name}) if _running(p)]
    if len(pods) != 1:
        raise TransientError(f"expected one running database pod, found {len(pods)}")
    claim = await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", build.claim_name(ctx.name)) or {}
    patch = {
        "phase": "Running",
        "engine": ctx.spec.engine.value,
        "version": ctx.spec.version,
        "node": pods[0]["spec"]["nodeName"],
        "volume": VolumeRef(
            claim_name=build.claim_name(ctx.name),
            volume_name=(claim.get("spec") or {}).get("volumeName", ""),
            capacity=((claim.get("status") or {}).get("capacity") or {}).get("storage", ""),
        ).wire(),
        "endpoint": f"{ctx.name}.{ctx.namespace}.svc:{build.port(ctx.spec)}",
    }
    await ctx.kube.patch_status("Database", ctx.namespace, ctx.name, patch)
    return f"running on {patch['node']}"


async def unrecord(ctx: DatabaseContext) -> str:
    await ctx.kube.patch_status("Database", ctx.namespace, ctx.name, {"phase": "Pending", "node": ""})
    return "status back to Pending"


def _running(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") == "Running"


async def _wait_ready(ctx: DatabaseContext, pod_name: str) -> dict[str, Any]:
    while True:
        current = await ctx.kube.read(ctx.namespace, "Pod", pod_name)
        if current is None:
            raise PermanentError(f"pod {pod_name} disappeared", "PodLost")
        status = current.get("status") or {}
        if status.get("phase") == "Failed":
            raise PermanentError(f"pod {pod_name} failed to start: {status.get('message', '')}", "PodsFailing")
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        if conditions.get("Ready") == "True":
            return current
        await asyncio.sleep(POLL_SECONDS)


async def _wait_gone(ctx: DatabaseContext, pod_name: str) -> None:
    while await ctx.kube.read(ctx.namespace, "Pod", pod_name) is not None:
        await asyncio.sleep(POLL_SECONDS)


# redeploy -----------------------------------------------------------------------------------


def _quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


async def _volume_zone(ctx: DatabaseContext) -> str | None:
    claim = await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", build.claim_name(ctx.name)) or {}
    pv = await ctx.kube.persistent_volume((claim.get("spec") or {}).get("volumeName", ""))
    terms = ((((pv or {}).get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
        "nodeSelectorTerms"
    ) or []
    for term in terms:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == ZONE and expression.get("values"):
                return str(expression["values"][0])
    return None


async def _refusal(ctx: DatabaseContext, node: dict[str, Any], zone: str | None) -> str:
    """Why the database cannot move to this node ('' when it can)."""
    name = node["metadata"]["name"]
    if name == ctx.status.node:
        return f"the database already runs on {name}"
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in (node.get("status") or {}).get("conditions") or []
    )
    if not ready:
        return f"node {name} is not Ready"
    if (node.get("spec") or {}).get("unschedulable"):
        return f"node {name} is cordoned"
    blocking = [
        t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")
    ]
    if blocking:
        return f"node {name} has taints {', '.join(t['key'] for t in blocking)}"
    node_zone = (node["metadata"].get("labels") or {}).get(ZONE)
    if zone and node_zone != zone:
        return f"node {name} is in zone {node_zone} but the volume is in {zone}: a move across zones is refused"
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    used: dict[str, float] = {}
    for pod in await ctx.kube.pods_on(name):
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for container in (pod.get("spec") or {}).get("containers") or []:
            for resource, amount in ((container.get("resources") or {}).get("requests") or {}).items():
                used[resource] = used.get(resource, 0.0) + _quantity(amount)
    for resource, amount in build.requests(ctx.spec).items():
        free = _quantity(allocatable.get(resource, "0")) - used.get(resource, 0.0)
        if _quantity(amount) > free:
            return f"node {name} has no room: {resource} {amount} requested, {free:g} free"
    return ""


async def choose_node(ctx: DatabaseContext) -> str:
    zone = await _volume_zone(ctx)
    for node in sorted(await ctx.kube.nodes(), key=lambda n: n["metadata"]["name"]):
        if not await _refusal(ctx, node, zone):
            return str(node["metadata"]["name"])
    raise PermanentError(f"move refused before any downtime: no other node in zone {zone} can take it", "MoveRefused")


async def check_target(ctx: DatabaseContext) -> str:
    assert ctx.target_node
    zone = await _volume_zone(ctx)
    nodes = {n["metadata"]["name"]: n for n in await ctx.kube.nodes()}
    if ctx.target_node not in nodes:
        raise PermanentError(f"move refused before any downtime: node {ctx.target_node} does not exist", "MoveRefused")
    why = await _refusal(ctx, nodes[ctx.target_node], zone)
    if why:
        raise PermanentError(f"move refused before any downtime: {why}", "MoveRefused")
    return f"{ctx.target_node} is Ready, schedulable, has room and is in zone {zone}"


def _puller(ctx: DatabaseContext) -> str:
    return f"{ctx.name}-prepull-{hashlib.sha256(ctx.operation.encode()).hexdigest()[:6]}"


async def pre_pull(ctx: DatabaseContext) -> str:
    assert ctx.target_node
    puller = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": _puller(ctx), "labels": {"bosun.dev/prepull": ctx.name}},
        "spec": {
            "nodeName": ctx.target_node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "pull", "image": build.image(ctx.spec), "command": ["true"]}],
        },
    }
    await ctx.kube.create_object(ctx.namespace, puller)
    while True:  # Running means the kubelet has pulled the image
        current = await ctx.kube.read(ctx.namespace, "Pod", _puller(ctx)) or {}
        if (current.get("status") or {}).get("phase") in ("Running", "Succeeded"):
            break
        await asyncio.sleep(POLL_SECONDS)
    await ctx.kube.delete(ctx.namespace, "Pod", _puller(ctx))
    return f"image {build.image(ctx.spec)} pulled on {ctx.target_node}"


async def drop_puller(ctx: DatabaseContext) -> str:
    await ctx.kube.delete(ctx.namespace, "Pod", _puller(ctx))
    return "puller removed"


async def pre_provision(ctx: DatabaseContext) -> str:
    await ctx.kube.apply(ctx.namespace, build.service(ctx.name, ctx.uid, ctx.spec))
    if await ctx.kube.read(ctx.namespace, "Secret", build.secret_name(ctx.name)) is None:
        raise PermanentError("the credentials Secret is missing", "CredentialsMissing")
    return "Service and credentials in place"


async def _current_pods(ctx: DatabaseContext, node: str) -> list[dict[str, Any]]:
    pods = await ctx.kube.list_pods(ctx.namespace, {build.DATABASE_LABEL: ctx.name})
    return [p for p in pods if (p.get("spec") or {}).get("nodeName") == node]


async def stop_old(ctx: DatabaseContext) -> str:
    for pod in await _current_pods(ctx, ctx.status.node):
        name = pod["metadata"]["name"]
        # Leave the Service first, so no client is sent to a stopping database.
        await ctx.kube.apply(
            ctx.namespace,
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {build.SERVING_LABEL: "false"}}},
        )
        await ctx.kube.delete(ctx.namespace, "Pod", name)
        await _wait_gone(ctx, name)
    return f"old pod on {ctx.status.node} stopped"


async def start_old(ctx: DatabaseContext) -> str:
    name = ctx.pod_name(ctx.status.node)
    await ctx.kube.create_object(ctx.namespace, build.pod(ctx.name, ctx.uid, ctx.spec, name, ctx.status.node))
    await _wait_ready(ctx, name)
    return f"database back on {ctx.status.node}"


async def _attachments(ctx: DatabaseContext) -> list[dict[str, Any]]:
    claim = await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", build.claim_name(ctx.name)) or {}
    return await ctx.kube.volume_attachments((claim.get("spec") or {}).get("volumeName", ""))


async def detach(ctx: DatabaseContext) -> str:
    while await _attachments(ctx):
        await asyncio.sleep(POLL_SECONDS)
    return f"volume detached from {ctx.status.node}"


async def attach(ctx: DatabaseContext) -> str:
    assert ctx.target_node
    name = ctx.pod_name(ctx.target_node)
    await ctx.kube.create_object(ctx.namespace, build.pod(ctx.name, ctx.uid, ctx.spec, name, ctx.target_node))
    while True:
        attached = [
            a
            for a in await _attachments(ctx)
            if a["spec"]["nodeName"] == ctx.target_node and (a.get("status") or {}).get("attached")
        ]
        if attached:
            return f"volume attached to {ctx.target_node}"
        await asyncio.sleep(POLL_SECONDS)


async def detach_new(ctx: DatabaseContext) -> str:
    assert ctx.target_node
    name = ctx.pod_name(ctx.target_node)
    await ctx.kube.delete(ctx.namespace, "Pod", name)
    await _wait_gone(ctx, name)
    while [a for a in await _attachments(ctx) if a["spec"]["nodeName"] == ctx.target_node]:
        await asyncio.sleep(POLL_SECONDS)
    return f"new pod removed, volume detached from {ctx.target_node}"


async def start_new(ctx: DatabaseContext) -> str:
    assert ctx.target_node
    await _wait_ready(ctx, ctx.pod_name(ctx.target_node))
    await record(ctx)
    operation = await ctx.kube.get("Operation", ctx.namespace, ctx.operation)
    steps = {s["name"]: s for s in (operation.get("status") or {}).get("steps") or []}
    stopped_at = (steps.get("stop-old") or {}).get("startedAt")
    downtime = (
        (datetime.now(UTC) - datetime.fromisoformat(stopped_at.replace("Z", "+00:00"))).total_seconds()
        if stopped_at
        else 0.0
    )
    await ctx.kube.patch_status("Database", ctx.namespace, ctx.name, {"lastMoveDowntimeSeconds": round(downtime, 1)})
    return f"database Ready on {ctx.target_node}; downtime {downtime:.1f}s (stop, detach, attach, start)"


async def back_to_old(ctx: DatabaseContext) -> str:
    await ctx.kube.patch_status("Database", ctx.namespace, ctx.name, {"node": ctx.status.node})
    return f"status says {ctx.status.node} again"


PROVISION: StepTable[DatabaseContext] = StepTable(
    "database-provision",
    [
        no_side_effect("check", "map engine and version to an image", check, timeout=30),
        Step("credentials", "create the credentials Secret", credentials, drop_credentials, timeout=30),
        Step("volume", "create the data volume claim", volume, drop_volume, timeout=30),
        Step("start", "start the database pod and its Service", start, stop_new, timeout=300),
        Step("record", "record node, volume and endpoint", record, unrecord, timeout=30),
    ],
)

REDEPLOY: StepTable[DatabaseContext] = StepTable(
    "database-redeploy",
    [
        no_side_effect("check-target", "check the target node can take the database", check_target, timeout=30),
        Step("pre-pull", "pull the database image on the target node", pre_pull, drop_puller, timeout=300),
        no_side_effect("pre-provision", "make sure the Service and credentials exist", pre_provision, timeout=30),
        Step("stop-old", "take the old pod out of the Service and stop it", stop_old, start_old, timeout=120),
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
            back_to_old,
            timeout=300,
        ),
    ],
)
