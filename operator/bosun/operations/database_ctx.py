"""What every database step shares: the stored plan, and the pod, volume and node helpers.

A database operation is decided once, before any step runs: where the database runs now, where it
will run, what it runs now (`previous`) and what it will run (`next`). The plan is stored on the
Operation, so after a restart the steps resume, and the undo restores, exactly that change, even if
the Database was edited or its status rewritten meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from bosun.engine.target import TargetFields
from bosun.errors import PermanentError
from bosun.kube import Kube
from bosun.models.backup import BackupTrigger
from bosun.models.base import KubeModel, TargetPhase
from bosun.models.database import DatabaseSpec, VolumeRef
from bosun.models.names import DATABASE_LABEL, PREPULL_LABEL, SERVING_LABEL
from bosun.store import Store
from bosun.workloads import database as build

POLL_SECONDS = 0.25
ZONE = "topology.kubernetes.io/zone"


class DatabasePlan(KubeModel):
    """The change one database operation makes, fixed before its first step."""

    table: str = Field(description="The step table that carries it out.")
    from_node: str = Field(default="", description="Where the database runs now ('' before provision).")
    to_node: str = Field(default="", description="Where it will run ('' lets the scheduler pick).")
    previous: DatabaseSpec | None = Field(default=None, description="What runs now.")
    next: DatabaseSpec = Field(description="What will run.")
    why: str = Field(default="", description="Why Bosun chose this table or node, when it chose.")
    backup: str = Field(default="", description="backup: the name of the Backup record it makes.")
    trigger: BackupTrigger = Field(default=BackupTrigger.ON_DEMAND, description="backup: why it is taken.")
    source: str = Field(default="", description="provision from a backup: the VolumeSnapshot restored.")
    dump: str = Field(default="", description="provision from a dump: the Backup whose dump is replayed.")
    no_backup_first: str = Field(
        default="", description="a change that cannot be undone: why it takes no backup first ('' when it does)."
    )


@dataclass
class DatabaseContext:
    kube: Kube
    namespace: str
    name: str
    uid: str
    operation: str
    plan: DatabasePlan
    store: Store | None = None  # the operator's object store: where logical dumps are kept

    @property
    def spec(self) -> DatabaseSpec:
        return self.plan.next

    @property
    def status(self) -> TargetFields:
        """The Database's status, as far as a step may change it."""
        return TargetFields.of(self.kube, "Database", self.namespace, self.name)

    @property
    def previous(self) -> DatabaseSpec:
        return self.plan.previous or self.plan.next

    def _pod(self, salt: str) -> str:
        return f"{self.name}-{hashlib.sha256(f'{self.operation}/{salt}'.encode()).hexdigest()[:6]}"

    @property
    def new_pod(self) -> str:
        """The pod this operation starts (one name per operation: creating it twice is a no-op)."""
        return self._pod("new")

    @property
    def restore_pod(self) -> str:
        """The pod an undo starts to bring the previous database back."""
        return self._pod("restore")


# pods -------------------------------------------------------------------------------------------


def running(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") == "Running"


def node_ready(node: dict[str, Any] | None) -> bool:
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def wait_ready(ctx: DatabaseContext, pod_name: str, node: str = "", stable: float = 0.0) -> dict[str, Any]:
    """Wait until the pod is Ready and has stayed Ready for `stable` seconds.

    Fails at once if the pod fails, vanishes, stops being Ready, or its node goes NotReady; and
    when the scheduler has said for a while that it cannot place the pod (a nodeSelector no node
    matches, say), rather than wait out the step's timeout.
    """
    ready_since: float | None = None
    unschedulable_since: float | None = None
    node_checked = -NODE_CHECK_SECONDS
    async with contextlib.aclosing(ctx.kube.pod_states(ctx.namespace, pod_name, POLL_SECONDS)) as states:
        async for current in states:
            if current is None:
                raise PermanentError(f"pod {pod_name} disappeared", "PodLost")
            now = asyncio.get_running_loop().time()
            verdict = _ready_verdict(current, pod_name, now, stable, ready_since, unschedulable_since)
            if isinstance(verdict, dict):
                return verdict
            ready_since, unschedulable_since = verdict
            on = (current.get("spec") or {}).get("nodeName") or node
            if on and now - node_checked >= NODE_CHECK_SECONDS:
                node_checked = now
                found = await ctx.kube.node(on)
                if found is None:
                    raise PermanentError(f"node {on} does not exist: pod {pod_name} cannot start there", "NodeNotFound")
                if not node_ready(found):
                    raise PermanentError(f"node {on} is not Ready: pod {pod_name} cannot start there", "NodeNotReady")
    raise PermanentError(f"pod {pod_name}: its watch ended", "PodLost")


NODE_CHECK_SECONDS = 2.0  # a node going NotReady is looked for this often while a pod starts


def _ready_verdict(
    current: dict[str, Any],
    pod_name: str,
    now: float,
    stable: float,
    ready_since: float | None,
    unschedulable_since: float | None,
) -> dict[str, Any] | tuple[float | None, float | None]:
    """The pod if it has been Ready for `stable` seconds, else the clocks to keep; raises when it never will."""
    status = current.get("status") or {}
    if status.get("phase") == "Failed":
        raise PermanentError(f"pod {pod_name} failed to start: {status.get('message', '')}", "PodsFailing")
    conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
    if conditions.get("Ready") == "True":
        ready_since = now if ready_since is None else ready_since
        if now - ready_since >= stable:
            return current
    elif ready_since is not None:
        raise PermanentError(f"pod {pod_name} stopped being Ready within {stable:g}s of starting", "PodsFailing")
    pull = image_pull_failure(current)
    if pull:
        raise PermanentError(f"pod {pod_name} cannot start: {pull}", "PullFailed")
    crashes = crash_loop(current)
    if crashes:
        raise PermanentError(f"pod {pod_name} keeps crashing: {crashes}", "PodsFailing")
    why = unschedulable(current)
    unschedulable_since = (unschedulable_since or now) if why else None
    if why and now - (unschedulable_since or now) >= START_UNSCHEDULABLE_SECONDS:
        raise PermanentError(f"pod {pod_name} cannot be placed: {why}", "Unschedulable")
    return ready_since, unschedulable_since


START_UNSCHEDULABLE_SECONDS = 20.0  # longer than a volume's binding, which the scheduler also reports


# The kubelet's reasons for a container that waits on its image: it retries with a back-off, but an
# image that does not exist or may not be pulled never arrives, and a start waiting for it would wait
# out its step. What the kubelet said (the registry's answer) is what the operation reports.
PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


def image_pull_failure(pod: dict[str, Any] | None) -> str:
    """The kubelet's account of an image it cannot pull for this pod ('' when there is none)."""
    status = (pod or {}).get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_FAILURES:
            image = container.get("image") or "its image"
            return f"{image}: {waiting['reason']}: {waiting.get('message') or 'no message'}"
    return ""


CRASHES_BEFORE_FAILED = 3  # the kubelet's back-off then waits 40 s and more: a start would wait out its step


def crash_loop(pod: dict[str, Any] | None) -> str:
    """The kubelet's account of a container that keeps exiting as it starts ('' when none does): a
    database whose server cannot start (a wrong image, a volume it refuses) fails its step with the
    exit, not after the step's timeout."""
    for container in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        restarts = int(container.get("restartCount") or 0)
        if waiting.get("reason") != "CrashLoopBackOff" or restarts < CRASHES_BEFORE_FAILED:
            continue
        ended = (container.get("lastState") or {}).get("terminated") or {}
        last = f"exit code {ended.get('exitCode', '?')} ({ended.get('reason') or 'no reason'})"
        said = (ended.get("message") or "").strip()
        return f"container {container.get('name')} ended {restarts} times, last with {last}" + (
            f": {said[-300:]}" if said else ""
        )
    return ""


def unschedulable(pod: dict[str, Any] | None) -> str:
    """The scheduler's reason a pod cannot be placed ('' when it can, or has not said)."""
    for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
        if (condition.get("type"), condition.get("status"), condition.get("reason")) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            return str(condition.get("message") or "Unschedulable")
    return ""


def ready_at(pod: dict[str, Any]) -> str:
    """When the pod last became Ready (RFC 3339), '' if it is not."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready" and condition["status"] == "True":
            return str(condition.get("lastTransitionTime") or "")
    return ""


async def wait_gone(ctx: DatabaseContext, pod_name: str) -> None:
    async with contextlib.aclosing(ctx.kube.pod_states(ctx.namespace, pod_name, POLL_SECONDS)) as states:
        async for current in states:
            if current is None:
                return


async def start_pod(
    ctx: DatabaseContext, pod_name: str, spec: DatabaseSpec, node: str, serving: bool = True
) -> dict[str, Any]:
    """Create the database pod (once) pinned to `node` and wait until it is Ready."""
    await ctx.kube.create_object(ctx.namespace, build.pod(ctx.name, ctx.uid, spec, pod_name, node or None, serving))
    return await wait_ready(ctx, pod_name, node, stable=spec.min_ready_seconds)


async def mark_serving(ctx: DatabaseContext, pod_name: str, serving: bool) -> None:
    """Put the pod in its Service (or take it out): the Service selects serving pods only."""
    label = {SERVING_LABEL: "true" if serving else "false"}
    await ctx.kube.apply(
        ctx.namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name, "labels": label}}
    )


async def stop_pods(ctx: DatabaseContext, node: str, keep: str = "") -> list[str]:
    """Take the database's pods on `node` out of the Service, then stop them; wait until gone."""
    pods = await ctx.kube.list_pods(ctx.namespace, {DATABASE_LABEL: ctx.name})
    stopped = []
    for pod in pods:
        name = pod["metadata"]["name"]
        if name == keep or (node and (pod.get("spec") or {}).get("nodeName") != node):
            continue
        await mark_serving(ctx, name, False)  # leave the Service first: no client is sent to a stopping database
        await ctx.kube.delete(ctx.namespace, "Pod", name)
        await wait_gone(ctx, name)
        stopped.append(name)
    return stopped


async def remove_pod(ctx: DatabaseContext, pod_name: str) -> None:
    await ctx.kube.delete(ctx.namespace, "Pod", pod_name)
    await wait_gone(ctx, pod_name)


async def record(ctx: DatabaseContext, spec: DatabaseSpec) -> str:
    """Write what runs, where, on which volume, into the Database status."""
    pods = [p for p in await ctx.kube.list_pods(ctx.namespace, {DATABASE_LABEL: ctx.name}) if running(p)]
    if len(pods) != 1:
        raise PermanentError(f"expected one running database pod, found {len(pods)}", "PodsUnexpected")
    claim = await ctx.kube.read(ctx.namespace, "PersistentVolumeClaim", build.claim_name(ctx.name)) or {}
    patch = {
        "phase": TargetPhase.RUNNING,
        "engine": spec.engine.value,
        "version": spec.version,
        "node": pods[0]["spec"]["nodeName"],
        "volume": VolumeRef(
            claim_name=build.claim_name(ctx.name),
            volume_name=(claim.get("spec") or {}).get("volumeName", ""),
            capacity=((claim.get("status") or {}).get("capacity") or {}).get("storage", ""),
        ).wire(),
        "endpoint": f"{ctx.name}.{ctx.namespace}.svc:{build.port(spec)}",
        "running": spec.wire(),
    }
    await ctx.status.set(**patch)
    return f"{spec.engine.value} {spec.version} running on {patch['node']}"


# nodes and volumes ------------------------------------------------------------------------------


_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def quantity(value: str) -> float:
    """A Kubernetes quantity as a number (every suffix the API server accepts); PermanentError if not one."""
    match = _QUANTITY.match(value.strip())
    if not match:
        raise PermanentError(f"{value!r} is not a Kubernetes quantity (such as 500m, 2 or 10Gi)", "InvalidQuantity")
    number, suffix = match.groups()
    if suffix and suffix[0] in "eE" and suffix not in _SUFFIXES:
        return float(number + suffix)
    return float(number) * _SUFFIXES.get(suffix or "", 1)


async def volume_zone(kube: Kube, namespace: str, name: str) -> str | None:
    claim = await kube.read(namespace, "PersistentVolumeClaim", build.claim_name(name)) or {}
    pv = await kube.persistent_volume((claim.get("spec") or {}).get("volumeName", ""))
    terms = ((((pv or {}).get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
        "nodeSelectorTerms"
    ) or []
    for term in terms:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == ZONE and expression.get("values"):
                return str(expression["values"][0])
    return None


def room_on(node: dict[str, Any], pods: list[dict[str, Any]], spec: DatabaseSpec, database: str) -> str:
    """Why `spec`'s requests do not fit on the node, given the pods on it ('' when they do).

    The database's own pods don't count, nor the placeholder holding its room. Pure: a snapshot in,
    a verdict out, so the decision is unit-tested without a cluster.
    """
    name = node["metadata"]["name"]
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    used: dict[str, float] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        labels = pod["metadata"].get("labels") or {}
        if database in (labels.get(DATABASE_LABEL), labels.get(PREPULL_LABEL)):
            continue  # its own pods, and the placeholder holding its room
        for container in (pod.get("spec") or {}).get("containers") or []:
            for resource, amount in ((container.get("resources") or {}).get("requests") or {}).items():
                used[resource] = used.get(resource, 0.0) + quantity(amount)
    for resource, amount in build.requests(spec).items():
        free = quantity(allocatable.get(resource, "0")) - used.get(resource, 0.0)
        if quantity(amount) > free:
            return f"node {name} has no room: {resource} {amount} requested, {free:g} free"
    return ""


def refusal_of(
    node: dict[str, Any], pods: list[dict[str, Any]], plan: DatabasePlan, zone: str | None, database: str
) -> str:
    """Why the database cannot move to this node ('' when it can). Pure, as `room_on`."""
    name = node["metadata"]["name"]
    if name == plan.from_node:
        return f"the database already runs on {name}"
    if not node_ready(node):
        return f"node {name} is not Ready"
    if (node.get("spec") or {}).get("unschedulable"):
        return f"node {name} is cordoned"
    placement = plan.next.placement
    blocking = [
        t
        for t in (node.get("spec") or {}).get("taints") or []
        if t.get("effect") in ("NoSchedule", "NoExecute") and not (placement and placement.tolerates(t))
    ]
    if blocking:
        return f"node {name} has taints {', '.join(t['key'] for t in blocking)}"
    labels = node["metadata"].get("labels") or {}
    node_zone = labels.get(ZONE)
    if zone and node_zone != zone:
        return f"node {name} is in zone {node_zone} but the volume is in {zone}: a move across zones is refused"
    wanted = (plan.next.placement.node_selector or {}) if plan.next.placement else {}
    mismatched = sorted(k for k, v in wanted.items() if labels.get(k) != v)
    if mismatched:
        return f"node {name} does not match the placement's nodeSelector ({', '.join(mismatched)})"
    return room_on(node, pods, plan.next, database)


async def room(kube: Kube, node: dict[str, Any], spec: DatabaseSpec, database: str) -> str:
    return room_on(node, await kube.pods_on(node["metadata"]["name"]), spec, database)


async def refusal(kube: Kube, node: dict[str, Any], plan: DatabasePlan, zone: str | None, database: str) -> str:
    """`refusal_of`, reading the node's pods only when the node passes every other check."""
    return refusal_of(node, [], plan, zone, database) or refusal_of(
        node, await kube.pods_on(node["metadata"]["name"]), plan, zone, database
    )
