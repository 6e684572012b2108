"""The Kubernetes objects a Database becomes: one pod on one node, its data on a PVC, a Service
and a credentials Secret.

A bare pod, not a StatefulSet: moving a database means stopping the old pod, waiting for the
volume to leave its node and starting the new pod on the chosen node, each as a recorded step. A
StatefulSet would do those steps itself, out of order and out of sight.
"""

from __future__ import annotations

from typing import Any

from bosun.models.base import API_VERSION
from bosun.models.database import DatabaseSpec, Engine
from bosun.models.names import DATABASE_LABEL, SERVING_LABEL, SNAPSHOT_GROUP

ENGINES: dict[Engine, tuple[str, int, str]] = {
    Engine.POSTGRESQL: ("postgres", 5432, "/var/lib/postgresql/data"),
    Engine.MYSQL: ("mysql", 3306, "/var/lib/mysql"),
    Engine.REDIS: ("redis", 6379, "/data"),
}
PASSWORD_ENV = {Engine.POSTGRESQL: "POSTGRES_PASSWORD", Engine.MYSQL: "MYSQL_ROOT_PASSWORD"}
# PostgreSQL as a real node runs it (proven there: tests/cluster/test_real_nodes.py):
# - its data in a subfolder of the volume: ext4's lost+found makes initdb refuse the volume's root;
# - Ready when it accepts queries (pg_isready), not when its port opens: a start replaying WAL after
#   a crash has the port open and refuses every query;
# - a *fast* shutdown (SIGINT to the server, PID 1 in the official image and in ours) before the
#   kubelet's SIGTERM, which is a *smart* shutdown that waits for every client to leave and so ends
#   in SIGKILL and a crash recovery (the server ignores the SIGTERM that follows: it only ever
#   escalates); the grace period leaves room for the shutdown checkpoint. The hook returns at once:
#   one still running when the server exits is killed with it, and the kubelet reports it failed.
POSTGRES_PGDATA = "/var/lib/postgresql/data/pgdata"
POSTGRES_READY = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
POSTGRES_FAST_STOP = ["/bin/sh", "-c", "kill -INT 1"]
GRACE_SECONDS = {Engine.POSTGRESQL: 60}
DEFAULT_GRACE_SECONDS = 10


def image(spec: DatabaseSpec, registry: str = "") -> str:
    """The Database's own image, else `<registry>/<engine image>:<version>` (Docker Hub's names when
    no registry: `postgres:16`). The plan fixes it when an operation starts (`resolved`)."""
    if spec.image:
        return spec.image
    default = f"{ENGINES[spec.engine][0]}:{spec.version}"
    return f"{registry.rstrip('/')}/{default}" if registry else default


def resolved(spec: DatabaseSpec, registry: str) -> DatabaseSpec:
    """The spec with the image it will run written in: what a plan stores and the undo restores."""
    return spec if spec.image or not registry else spec.model_copy(update={"image": image(spec, registry)})


def port(spec: DatabaseSpec) -> int:
    return ENGINES[spec.engine][1]


def labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "database",
        "app.kubernetes.io/managed-by": "bosun",
        DATABASE_LABEL: name,
    }


def owner(name: str, uid: str) -> list[dict[str, Any]]:
    return [{"apiVersion": API_VERSION, "kind": "Database", "name": name, "uid": uid, "controller": True}]


def claim_name(name: str) -> str:
    return f"{name}-data"


def secret_name(name: str) -> str:
    return f"{name}-credentials"


def claim(name: str, spec: DatabaseSpec, snapshot: str = "") -> dict[str, Any]:
    """The data volume. Not owned by the Database: deprovision keeps or deletes it by policy. With
    `snapshot`, the volume starts as that VolumeSnapshot (a restore)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim_name(name), "labels": labels(name)},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": spec.storage.size}}},
    }
    if spec.storage.storage_class_name:
        body["spec"]["storageClassName"] = spec.storage.storage_class_name
    if snapshot:
        body["spec"]["dataSource"] = {"apiGroup": SNAPSHOT_GROUP, "kind": "VolumeSnapshot", "name": snapshot}
    return body


def service(name: str, uid: str, spec: DatabaseSpec) -> dict[str, Any]:
    """Selects the pod only while it is marked serving: a stopping pod leaves the Service first."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels(name), "ownerReferences": owner(name, uid)},
        "spec": {
            "selector": {DATABASE_LABEL: name, SERVING_LABEL: "true"},
            "ports": [{"name": spec.engine.value, "port": port(spec), "targetPort": port(spec)}],
        },
    }


def pod(
    name: str, uid: str, spec: DatabaseSpec, pod_name: str, node: str | None, serving: bool = True
) -> dict[str, Any]:
    """The database pod, pinned to `node` by selector (the scheduler still checks fit and volume).
    Not `serving`, its Service leaves it out until a step marks it (a restore still replaying)."""
    engine = spec.engine
    container: dict[str, Any] = {
        "name": engine.value,
        "image": image(spec),
        "ports": [{"name": engine.value, "containerPort": port(spec)}],
        "volumeMounts": [{"name": "data", "mountPath": ENGINES[engine][2]}],
        "readinessProbe": {"tcpSocket": {"port": port(spec)}, "periodSeconds": 5},
    }
    if engine in PASSWORD_ENV:
        container["env"] = [
            {
                "name": PASSWORD_ENV[engine],
                "valueFrom": {"secretKeyRef": {"name": secret_name(name), "key": "password"}},
            }
        ]
    if engine is Engine.POSTGRESQL:
        container["env"].append({"name": "PGDATA", "value": POSTGRES_PGDATA})
        container["readinessProbe"] = {"exec": {"command": POSTGRES_READY}, "periodSeconds": 1, "timeoutSeconds": 5}
        container["lifecycle"] = {"preStop": {"exec": {"command": POSTGRES_FAST_STOP}}}
    if spec.resources is not None:
        container["resources"] = spec.resources.wire()
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name(name)}}],
        "terminationGracePeriodSeconds": GRACE_SECONDS.get(engine, DEFAULT_GRACE_SECONDS),
    }
    if spec.placement and spec.placement.tolerations:
        pod_spec["tolerations"] = tolerations(spec)
    selector = dict((spec.placement.node_selector or {}) if spec.placement else {})
    if node:
        selector["kubernetes.io/hostname"] = node
    if selector:
        pod_spec["nodeSelector"] = selector
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "labels": {**labels(name), SERVING_LABEL: "true" if serving else "false"},
            "ownerReferences": owner(name, uid),
        },
        "spec": pod_spec,
    }


def tolerations(spec: DatabaseSpec) -> list[dict[str, Any]]:
    return [t.wire() for t in (spec.placement.tolerations or [])] if spec.placement else []


def requests(spec: DatabaseSpec) -> dict[str, str]:
    return dict((spec.resources.requests or {}) if spec.resources else {})
