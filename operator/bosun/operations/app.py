"""App operations: deploy, configure, scale, restart and deprovision, as step tables.

deploy / configure / scale / restart

| step           | run                                         | undo                                   | timeout |
| -------------- | ------------------------------------------- | -------------------------------------- | ------- |
| check          | the image reference is valid                | none: no side effect                   | 30 s    |
| before-release | deploy with `spec.beforeRelease` only: run  | cannot be undone (a migration's        | 15 min  |
|                | it as a Job with the new image and config   | effects stay); the rollback says so    |         |
| roll-out       | apply the release's Deployments, Services   | apply the previous release, wait until | 10 min  |
|                | and PDBs; wait until every new pod is Ready | it is available (first release:        |         |
|                | and every old one is gone                   | remove the objects)                    |         |
| record-release | put the release first in `status.releases`  | take it out again                      | 30 s    |

deprovision

| step            | run                                   | undo                                      | timeout |
| --------------- | ------------------------------------- | ----------------------------------------- | ------- |
| check           | nothing to validate                   | none: no side effect                      | 30 s    |
| remove-workload | delete the release's objects          | apply the release again, wait until ready | 10 min  |
| record-release  | mark the App Deprovisioned            | mark it Running again                     | 30 s    |

Zero downtime comes from the Deployments themselves (maxUnavailable 0: an old pod goes only when a
new one is Ready) and from undo re-applying the previous template: the old pods never left, so a
failed or cancelled deploy never drops below the desired ready count.

The plan (next and previous release) is computed once and stored in the Operation's
`status.plan` (which only Bosun can write) before any step runs, so a restarted operator resumes
or undoes exactly the same change even if the App was edited meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from bosun.engine.service import Plan, from_edit
from bosun.engine.steps import PermanentError, Skipped, Step, StepTable, TransientError, irreversible, no_side_effect
from bosun.engine.target import TargetFields
from bosun.kube import Kube, any_change
from bosun.models.app import AppSpec, AppStatus, Process, Release
from bosun.models.base import TargetPhase, stamp
from bosun.models.names import INSTANCE_LABEL, MANAGED_BY_LABEL
from bosun.models.operation import Operation, OperationType
from bosun.workloads import app as build
from bosun.workloads.app import Version, current_version

MAX_RELEASES = 10
RECHECK_SECONDS = 5.0  # a roll-out is judged on every change it sees, and at least this often
FAILING_WAIT_REASONS = {"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"}


@dataclass
class AppContext:
    kube: Kube
    namespace: str
    app: str
    uid: str
    operation: str
    type: OperationType
    next: Version | None
    previous: Version | None

    @property
    def status(self) -> TargetFields:
        """The App's status, as far as a step may change it."""
        return TargetFields.of(self.kube, "App", self.namespace, self.app)

    def objects(self, version: Version) -> list[dict[str, Any]]:
        return build.render(self.app, self.uid, version.spec, version.operation, version.restarted_at)


# planning -----------------------------------------------------------------------------------


def next_spec(operation: Operation, app_spec: AppSpec, current: Version | None) -> AppSpec:
    """The spec the operation deploys: the App spec for edits, else the running release changed by parameters."""
    from_spec_edit = from_edit(operation.status.initiator)  # decided once, by the engine, from trusted marks
    base = app_spec if from_spec_edit or current is None else current.spec
    params = operation.spec.parameters
    update: dict[str, Any] = {}
    if params is not None and not from_spec_edit:
        if params.image:
            update["image"] = params.image
        if params.env is not None:
            update["env"] = params.env
        if params.processes:
            scaled = {p.name: p for p in params.processes}
            unknown = sorted(set(scaled) - {p.name for p in base.processes})
            if unknown:
                raise PermanentError(f"no such process: {', '.join(unknown)}", "InvalidParameters")
            update["processes"] = [
                p.model_copy(
                    update={
                        k: v
                        for k, v in {"replicas": scaled[p.name].replicas, "resources": scaled[p.name].resources}.items()
                        if v is not None
                    }
                )
                if p.name in scaled
                else p
                for p in base.processes
            ]
    return base.model_copy(update=update)


async def plan_app(kube: Kube, operation: Operation, target: dict[str, Any]) -> Plan[AppContext]:
    stored = operation.status.plan
    meta = target.get("metadata") or {}
    if stored:
        plan = json.loads(stored)
        previous, nxt = Version.of(plan.get("previous")), Version.of(plan.get("next"))
    else:
        if not target:
            raise PermanentError("the App no longer exists", "TargetNotFound")
        status = AppStatus.model_validate(target.get("status") or {})
        previous = current_version(status)
        app_spec = AppSpec.model_validate(target.get("spec") or {})
        if operation.spec.type is OperationType.DEPROVISION:
            nxt = None
        else:
            restarted = (
                stamp() if operation.spec.type is OperationType.RESTART else (previous.restarted_at if previous else "")
            )
            nxt = Version(next_spec(operation, app_spec, previous), restarted, operation.name)
        plan = {"previous": previous.wire() if previous else None, "next": nxt.wire() if nxt else None}
    ctx = AppContext(
        kube=kube,
        namespace=operation.namespace,
        app=operation.spec.target.name,
        uid=meta.get("uid", ""),
        operation=operation.name,
        type=operation.spec.type,
        next=nxt,
        previous=previous,
    )
    if ctx.uid == "" and plan.get("next") is not None:
        raise PermanentError("the App no longer exists", "TargetNotFound")
    return Plan(DEPROVISION if nxt is None else RELEASE, ctx, json.dumps(plan), summary(ctx))


def summary(ctx: AppContext) -> str:
    """The plan in one sentence, for people (a dry run shows it)."""
    if ctx.next is None:
        return f"remove the Deployments, Services and PDBs of {ctx.app}"
    spec = ctx.next.spec
    processes = ", ".join(f"{p.name} x{p.replicas}" for p in spec.processes)
    before = f"image {ctx.previous.spec.image}" if ctx.previous else "nothing released yet"
    release = f"release image {spec.image} ({processes}), replacing {before}"
    return f"{ctx.type.value} {ctx.app}: {release}; rolling, zero downtime"


# steps --------------------------------------------------------------------------------------


MAX_SPEC_BYTES = 128 * 1024  # the spec is copied into annotations and release records: keep it well below limits
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


async def check(ctx: AppContext) -> str:
    """Everything that would make the release fail half-way, before anything runs (the migration)."""
    if ctx.next is None:
        return "nothing to check"
    spec = ctx.next.spec
    if not build.valid_image(spec.image):
        raise PermanentError(f"invalid image reference {spec.image!r}", "InvalidImage")
    for process in spec.processes:
        name = build.deployment_name(ctx.app, process.name)
        if len(name) > 63 or not DNS_LABEL.match(name):
            raise PermanentError(
                f"'{name}' cannot name a Deployment and Service (a DNS label of at most 63 characters): "
                "shorten the App or process name; nothing was changed",
                "InvalidName",
            )
    size = len(spec.model_dump_json(by_alias=True))
    if size > MAX_SPEC_BYTES:
        raise PermanentError(
            f"the App's spec is {size // 1024} KiB, more than {MAX_SPEC_BYTES // 1024} KiB: "
            "move large configuration into a ConfigMap or Secret; nothing was changed",
            "SpecTooLarge",
        )
    return f"image {spec.image} is a valid reference; names and size are valid"


def _job_name(ctx: AppContext) -> str:
    return f"{ctx.app[:40]}-release-{hashlib.sha256(ctx.operation.encode()).hexdigest()[:8]}"


async def will_run_before_release(ctx: AppContext) -> str:
    """What `before_release` would do (dry run): nothing to see on the cluster before it runs."""
    command = ctx.next.spec.before_release if ctx.next else None
    if ctx.type is not OperationType.DEPLOY or not command:
        return Skipped("no beforeRelease command: nothing would run")
    return f"would run {command!r} as a Job with image {ctx.next.spec.image if ctx.next else ''}"


async def before_release(ctx: AppContext) -> str:
    assert ctx.next is not None
    command = ctx.next.spec.before_release
    if ctx.type is not OperationType.DEPLOY or not command:
        return Skipped("no beforeRelease command: nothing ran")
    spec = ctx.next.spec
    name = _job_name(ctx)
    template = build.deployment(ctx.app, ctx.uid, spec, Process(name="release"), ctx.operation)["spec"]["template"]
    container = template["spec"]["containers"][0]
    container["command"] = command
    container.pop("readinessProbe", None)
    container.pop("ports", None)
    template["spec"]["restartPolicy"] = "Never"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": build.labels(ctx.app, "release"),
            "ownerReferences": build.owner(ctx.app, ctx.uid),
        },
        "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 86400, "template": template},
    }
    await ctx.kube.apply(ctx.namespace, job)
    async with ctx.kube.watched(ctx.namespace, "Job", name=name) as jobs:
        while True:
            status = (jobs.objects.get(name) or {}).get("status") or {}
            if status.get("succeeded"):
                output = await _job_output(ctx, name)
                return f"beforeRelease {command} completed (Job {name}); its effects cannot be rolled back. {output}"
            if status.get("failed"):
                failure = await _pod_failure(ctx, {"job-name": name})
                output = await _job_output(ctx, name)
                raise PermanentError(
                    f"beforeRelease {command} failed (Job {name}): {failure}. {output}", "BeforeReleaseFailed"
                )
            await jobs.changed(RECHECK_SECONDS)


async def _job_output(ctx: AppContext, job: str) -> str:
    """What the Job's pod printed, for the operation's log (or why it cannot be read)."""
    for pod in await ctx.kube.list_pods(ctx.namespace, {"job-name": job}):
        try:
            text = await ctx.kube.pod_log(ctx.namespace, pod["metadata"]["name"])
        except (PermanentError, TransientError) as error:
            return f"Output unavailable: {error}"
        return "Output:\n" + text.strip() if text.strip() else "It printed nothing."
    return "Output unavailable: no pod found"


async def _pod_failure(ctx: AppContext, selector: dict[str, str]) -> str:
    for pod in await ctx.kube.list_pods(ctx.namespace, selector):
        reason = _failing(pod)
        if reason:
            return reason
    return "no pod output"


def _failing(pod: dict[str, Any]) -> str:
    """Why a pod is failing to start, or ''. A pod being stopped (a scale-down, a replaced pod)
    is not failing, however its container ends: on a real node a server that ignores SIGTERM ends
    in SIGKILL (exit code 137) at the end of its grace period."""
    if pod["metadata"].get("deletionTimestamp"):
        return ""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        terminated = state.get("terminated")
        if terminated and terminated.get("exitCode", 0) != 0:
            code, why, said = terminated.get("exitCode"), terminated.get("reason", ""), terminated.get("message", "")
            return f"pod {name}: exit code {code}, {why}: {said}".strip(": ")
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FAILING_WAIT_REASONS:
            return f"pod {name}: {waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    if status.get("phase") == "Failed":
        return f"pod {name}: Failed: {status.get('message', '')}".strip(": ")
    return ""


async def _apply_version(ctx: AppContext, version: Version) -> None:
    objects = ctx.objects(version)
    for manifest in objects:
        await ctx.kube.apply(ctx.namespace, manifest)
    keep = {(o["kind"], o["metadata"]["name"]) for o in objects}
    others = [v for v in (ctx.next, ctx.previous) if v is not None and v is not version]
    for other in others:  # a process the other release had and this one has not
        for manifest in ctx.objects(other):
            if (manifest["kind"], manifest["metadata"]["name"]) not in keep:
                await ctx.kube.delete(ctx.namespace, manifest["kind"], manifest["metadata"]["name"])


async def _app_exists(ctx: AppContext) -> bool:
    app = await ctx.kube.read(ctx.namespace, "App", ctx.app)
    return (
        app is not None
        and (app.get("metadata") or {}).get("uid") == ctx.uid
        and not app["metadata"].get("deletionTimestamp")
    )


async def wait_available(ctx: AppContext, version: Version, *, undoing: bool = False) -> str:
    """Wait until every Deployment of the version runs only its new pods, all Ready.

    The App's Deployments and pods are read from the namespace's shared watches (`Kube.shared`:
    one list and watch of Bosun's Deployments, one of its pods, however many roll-outs wait on
    them), and judged again on every change to this App's. A Deployment the watch does not show
    as applied yet is not judged on its old status. While undoing, a progress deadline the failed
    roll-out left on a Deployment is no verdict on the undo: the undo is judged on the pods it
    brings back.
    """
    wanted = [o for o in ctx.objects(version) if o["kind"] == "Deployment"]
    managed = {MANAGED_BY_LABEL: build.labels(ctx.app)[MANAGED_BY_LABEL]}
    async with (
        ctx.kube.shared(
            ctx.namespace, "Deployment", index=INSTANCE_LABEL, value=ctx.app, labels=managed
        ) as deployments,
        ctx.kube.shared(ctx.namespace, "Pod", index=INSTANCE_LABEL, value=ctx.app, labels=managed) as pods,
    ):
        while True:
            deployments.check()
            pods.check()
            pending = await _pending(ctx, wanted, deployments.objects, list(pods.objects.values()), undoing)
            # The verdict is taken on a fresh list of the App's pods: the shared pod watch may lag
            # the Deployment's (an old pod still draining there would be missed). One read per verdict.
            if not pending and not await _pending(ctx, wanted, deployments.objects, await _pods(ctx), undoing):
                return f"{len(wanted)} deployment(s) available on {version.spec.image}"
            await any_change(RECHECK_SECONDS, deployments, pods)


async def _pending(
    ctx: AppContext,
    wanted: list[dict[str, Any]],
    deployments: dict[str, dict[str, Any]],
    pods: list[dict[str, Any]],
    undoing: bool,
) -> list[str]:
    pending = []
    for manifest in wanted:
        name = manifest["metadata"]["name"]
        current = deployments.get(name)
        if current is None:
            if await ctx.kube.read(ctx.namespace, "Deployment", name) is not None:
                pending.append(f"{name}: waiting to see the applied Deployment")  # the watch lags the apply
                continue
            if not await _app_exists(ctx):
                raise PermanentError(f"the App {ctx.app} was deleted during the operation", "TargetDeleted")
            raise TransientError(f"Deployment {name} is missing")
        problem = rollout_problem(manifest, current, pods, undoing=undoing)
        if problem:
            pending.append(problem)
    return pending


async def _pods(ctx: AppContext) -> list[dict[str, Any]]:
    mine = build.labels(ctx.app)
    return await ctx.kube.list_pods(ctx.namespace, {k: mine[k] for k in (INSTANCE_LABEL, MANAGED_BY_LABEL)})


def rollout_problem(
    manifest: dict[str, Any], current: dict[str, Any], pods: list[dict[str, Any]], *, undoing: bool = False
) -> str:
    """What the rollout still waits for ('' when done); raises when it cannot succeed.

    `pods` may hold other Deployments' pods: only those its selector matches count.
    """
    name = manifest["metadata"]["name"]
    if not _shows(current, manifest):
        # The shared watch has not shown the Deployment as applied yet: its status is the old one's.
        return f"{name}: waiting to see the applied Deployment"
    status = current.get("status") or {}
    for condition in status.get("conditions") or []:
        if (
            not undoing
            and condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            raise PermanentError(f"Deployment {name} exceeded its progress deadline", "ProgressDeadlineExceeded")
    template = manifest["spec"]["template"]
    match = manifest["spec"]["selector"]["matchLabels"]
    pods = [p for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in match.items())]
    new_pods = [p for p in pods if _same_template(p, template)]
    for pod in new_pods:
        reason = _failing(pod)
        if reason:
            raise PermanentError(f"new pods of {name} fail to start: {reason}", "PodsFailing")
    replicas = manifest["spec"]["replicas"]
    done = (
        (status.get("observedGeneration") or 0) >= (current["metadata"].get("generation") or 0)
        and (status.get("updatedReplicas") or 0) == replicas
        and (status.get("readyReplicas") or 0) == replicas
        and (status.get("availableReplicas") or 0) == replicas
        and (status.get("replicas") or 0) == replicas
        and len([p for p in pods if _active(p)]) == replicas
    )
    return "" if done else f"{name}: {status.get('readyReplicas') or 0}/{replicas} ready"


def _active(pod: dict[str, Any]) -> bool:
    """Running, starting or still draining: not ended (a ReplicaSet leaves its failed pods behind).

    A terminating old pod counts until it is gone: the deploy ends when every old pod has left.
    """
    return (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded")


def _shows(current: dict[str, Any], manifest: dict[str, Any]) -> bool:
    """Whether the Deployment as read carries what was applied: its release, replicas and template
    annotations (config hash, restart). Not the image: an admission webhook may pin it to a digest."""
    spec, wanted = current.get("spec") or {}, manifest["spec"]
    named = (current.get("metadata") or {}).get("annotations") or {}
    annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return (
        spec.get("replicas") == wanted["replicas"]
        and all(named.get(k) == v for k, v in (manifest["metadata"].get("annotations") or {}).items())
        and all(annotations.get(k) == v for k, v in wanted["template"]["metadata"]["annotations"].items())
    )


def _same_template(pod: dict[str, Any], template: dict[str, Any]) -> bool:
    annotations = pod["metadata"].get("annotations") or {}
    wanted = template["metadata"]["annotations"]
    image = template["spec"]["containers"][0]["image"]
    return (
        all(annotations.get(k) == v for k, v in wanted.items())
        and (pod.get("spec") or {}).get("containers", [{}])[0].get("image") == image
    )


async def roll_out(ctx: AppContext) -> str:
    assert ctx.next is not None
    await _apply_version(ctx, ctx.next)
    return await wait_available(ctx, ctx.next)


async def roll_back(ctx: AppContext) -> str:
    if not await _app_exists(ctx):
        return "the App was deleted: its Deployments, Services and PDBs went with it, nothing of this release stays"
    if ctx.previous is None:
        for manifest in ctx.objects(ctx.next) if ctx.next else []:
            await ctx.kube.delete(ctx.namespace, manifest["kind"], manifest["metadata"]["name"])
        return "first release removed"
    await _apply_version(ctx, ctx.previous)
    return "previous release restored: " + await wait_available(ctx, ctx.previous, undoing=True)


async def _app_status(ctx: AppContext) -> AppStatus:
    app = await ctx.kube.read(ctx.namespace, "App", ctx.app)
    if app is None:
        raise PermanentError(f"App {ctx.app} no longer exists", "TargetNotFound")
    return AppStatus.model_validate(app.get("status") or {})


async def record_release(ctx: AppContext) -> str:
    assert ctx.next is not None
    status = await _app_status(ctx)
    release = Release(
        image=ctx.next.spec.image,
        config_hash=build.config_hash(ctx.next.spec),
        operation=ctx.operation,
        deployed_at=stamp(),
        restarted_at=ctx.next.restarted_at,
        spec=ctx.next.spec,
    )
    releases = [release] + [r for r in status.releases if r.operation != ctx.operation]
    await ctx.status.set(
        phase=TargetPhase.RUNNING, image=release.image, releases=[r.wire() for r in releases[:MAX_RELEASES]]
    )
    return f"release {release.image} ({release.config_hash}) recorded"


async def unrecord_release(ctx: AppContext) -> str:
    if not await _app_exists(ctx):
        return "the App was deleted: its release record went with it"
    status = await _app_status(ctx)
    releases = [r for r in status.releases if r.operation != ctx.operation]
    image = releases[0].image if releases else ""
    await ctx.status.set(
        releases=[r.wire() for r in releases],
        image=image,
        phase=TargetPhase.RUNNING if releases else TargetPhase.PENDING,
    )
    return "release record removed"


async def remove_workload(ctx: AppContext) -> str:
    if ctx.previous is None:
        return Skipped("nothing was running")
    objects = ctx.objects(ctx.previous)
    for manifest in objects:
        await ctx.kube.delete(ctx.namespace, manifest["kind"], manifest["metadata"]["name"])
    return f"{len(objects)} object(s) removed"


async def restore_workload(ctx: AppContext) -> str:
    if ctx.previous is None:
        return "nothing was running"
    if not await _app_exists(ctx):
        return "the App was deleted: nothing to restore"
    await _apply_version(ctx, ctx.previous)
    return await wait_available(ctx, ctx.previous, undoing=True)


async def mark_deprovisioned(ctx: AppContext) -> str:
    await ctx.status.set(phase=TargetPhase.DEPROVISIONED, image="")
    return "App marked Deprovisioned; its operations stay in history"


async def mark_running(ctx: AppContext) -> str:
    image = ctx.previous.spec.image if ctx.previous else ""
    await ctx.status.set(phase=TargetPhase.RUNNING if image else TargetPhase.PENDING, image=image)
    return "App marked Running again"


RELEASE: StepTable[AppContext] = StepTable(
    "app-release",
    [
        no_side_effect("check", "check the image reference", check, timeout=30, check=check),
        irreversible(
            "before-release",
            "run the beforeRelease command with the new image and config",
            before_release,
            "a beforeRelease command's effects (e.g. a database migration) cannot be undone by Bosun",
            timeout=900,
            check=will_run_before_release,
        ),
        Step(
            "roll-out", "roll the Deployments to the new release, with zero downtime", roll_out, roll_back, timeout=600
        ),
        Step("record-release", "record the release in the App's status", record_release, unrecord_release, timeout=30),
    ],
)

DEPROVISION: StepTable[AppContext] = StepTable(
    "app-deprovision",
    [
        no_side_effect("check", "nothing to validate", check, timeout=30, check=check),
        Step(
            "remove-workload",
            "delete the App's Deployments, Services and PDBs",
            remove_workload,
            restore_workload,
            timeout=600,
        ),
        Step("record-release", "mark the App Deprovisioned", mark_deprovisioned, mark_running, timeout=30),
    ],
    ends_service=True,
)
