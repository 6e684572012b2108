"""The Kubernetes objects an App release becomes.

One Deployment per process (rolling, never below the desired ready count: maxUnavailable 0), a
Service for each process with ports, and a PodDisruptionBudget per process. Labels follow the
`app.kubernetes.io/*` conventions; every object is owned by the App (garbage-collected with it)
and carries the release it belongs to, so a repair can tell drift from a release in progress.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from bosun.models.app import AppSpec, AppStatus, Process
from bosun.models.base import API_VERSION
from bosun.models.names import CONFIG_HASH_ANNOTATION, RELEASE_ANNOTATION, RESTARTED_AT_ANNOTATION

MANAGER = "bosun"

# name[:tag][@digest], with an optional registry host: the shape `docker pull` accepts.
_IMAGE = re.compile(
    r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)


def valid_image(image: str) -> bool:
    return bool(_IMAGE.match(image))


def config_hash(spec: AppSpec) -> str:
    """A short hash of what a release's pods run with, but the image and replica counts.

    Replicas stay out: scaling must not change the pod template, or every scale would restart pods.
    """
    config = spec.wire()
    config.pop("image", None)
    for process in config.get("processes", []):
        process.pop("replicas", None)
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def labels(app: str, process: str | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app, "app.kubernetes.io/managed-by": "bosun"}
    if process:
        out["app.kubernetes.io/component"] = process
    return out


def selector(app: str, process: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": app, "app.kubernetes.io/component": process}


def owner(app: str, uid: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "App",
            "name": app,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def deployment_name(app: str, process: str) -> str:
    return f"{app}-{process}"


def _version(image: str) -> str:
    tag = image.rsplit("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    return re.sub(r"[^A-Za-z0-9_.-]", "", tag)[:63].strip("-_.") or "latest"


def _probe(spec: AppSpec, process: Process) -> dict[str, Any] | None:
    if spec.health_check is None or not process.ports:
        return None
    check = spec.health_check
    return {
        "httpGet": {"path": check.path, "port": check.port or process.ports[0].port},
        "periodSeconds": check.period_seconds,
        "failureThreshold": check.failure_threshold,
    }


def _container(spec: AppSpec, process: Process) -> dict[str, Any]:
    env = [e.wire() for e in spec.env] + [e.wire() for e in process.env]
    container: dict[str, Any] = {"name": process.name, "image": spec.image}
    command = process.command or spec.command
    if command:
        container["command"] = command
    if env:
        container["env"] = env
    if process.ports:
        container["ports"] = [{"name": p.name, "containerPort": p.port, "protocol": p.protocol} for p in process.ports]
    resources = process.resources or spec.resources
    if resources is not None:
        container["resources"] = resources.wire()
    probe = _probe(spec, process)
    if probe:
        container["readinessProbe"] = probe
    drain = drain_seconds(spec, process)
    if drain:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": drain}}}
    return container


# A stopping pod leaves its Service's endpoints at once, but every node's kube-proxy (and every
# client that follows endpoints) learns of it a moment later: a server that exits on SIGTERM right
# away refuses the requests still sent its way. Serving pods keep serving this long first (within
# their grace period), as real nodes showed (tests/cluster/test_real_nodes.py).
DRAIN_SECONDS = 5


def drain_seconds(spec: AppSpec, process: Process) -> int:
    """How long a stopping pod of this process keeps serving before it is told to stop (0: not at all)."""
    if not process.ports:
        return 0
    return min(DRAIN_SECONDS, spec.termination_grace_period_seconds // 2)


def placement(spec: AppSpec) -> dict[str, Any]:
    """The pod spec's nodeSelector and tolerations, as the App's placement says."""
    if spec.placement is None:
        return {}
    out: dict[str, Any] = {}
    if spec.placement.node_selector:
        out["nodeSelector"] = dict(spec.placement.node_selector)
    if spec.placement.tolerations:
        out["tolerations"] = [t.wire() for t in spec.placement.tolerations]
    return out


def deployment(
    app: str, uid: str, spec: AppSpec, process: Process, release: str, restarted_at: str = ""
) -> dict[str, Any]:
    pod_labels = {
        **(spec.pod_labels or {}),
        **labels(app, process.name),
        "app.kubernetes.io/version": _version(spec.image),
    }
    # The release is named on the Deployment, not on its pods: a scale must not restart them.
    annotations = {**(spec.pod_annotations or {}), CONFIG_HASH_ANNOTATION: config_hash(spec)}
    if restarted_at:
        annotations[RESTARTED_AT_ANNOTATION] = restarted_at
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(app, process.name),
            "labels": labels(app, process.name),
            "annotations": {RELEASE_ANNOTATION: release},
            "ownerReferences": owner(app, uid),
        },
        "spec": {
            "replicas": process.replicas,
            "selector": {"matchLabels": selector(app, process.name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "minReadySeconds": spec.min_ready_seconds,
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": {
                    "containers": [_container(spec, process)],
                    "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
                    **placement(spec),
                },
            },
        },
    }


def _process_metadata(app: str, uid: str, process: Process) -> dict[str, Any]:
    """Name, labels and owner shared by a process's Service and PodDisruptionBudget."""
    return {
        "name": deployment_name(app, process.name),
        "labels": labels(app, process.name),
        "ownerReferences": owner(app, uid),
    }


def service(app: str, uid: str, process: Process) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _process_metadata(app, uid, process),
        "spec": {
            "selector": selector(app, process.name),
            "ports": [
                {"name": p.name, "port": p.port, "targetPort": p.port, "protocol": p.protocol} for p in process.ports
            ],
        },
    }


def disruption_budget(app: str, uid: str, process: Process) -> dict[str, Any]:
    """At most one pod of a process evicted at a time (a single-pod process is not pinned forever)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _process_metadata(app, uid, process),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(app, process.name)}},
    }


def render(app: str, uid: str, spec: AppSpec, release: str, restarted_at: str = "") -> list[dict[str, Any]]:
    """Every object of one App release, in the order to apply them."""
    objects: list[dict[str, Any]] = []
    for process in spec.processes:
        objects.append(deployment(app, uid, spec, process, release, restarted_at))
        if process.ports:
            objects.append(service(app, uid, process))
        objects.append(disruption_budget(app, uid, process))
    return objects


@dataclass(frozen=True)
class Version:
    """A release to run: the App spec, and the restart stamp its pods carry."""

    spec: AppSpec
    restarted_at: str = ""
    operation: str = ""

    def wire(self) -> dict[str, Any]:
        return {"spec": self.spec.wire(), "restartedAt": self.restarted_at, "operation": self.operation}

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Version | None:
        if not data:
            return None
        return cls(AppSpec.model_validate(data["spec"]), data.get("restartedAt", ""), data.get("operation", ""))


def current_version(status: AppStatus) -> Version | None:
    if not status.releases or status.releases[0].spec is None:
        return None
    top = status.releases[0]
    assert top.spec is not None
    return Version(top.spec, top.restarted_at, top.operation)
