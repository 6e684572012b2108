"""Databases in tests: manifests, operations on them, and what runs for them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from bosun.models.names import API_VERSION, DATABASE_LABEL
from tests.support.bosun_objects import Bosun
from tests.support.waiting import wait_for

# A move's steps, as users see them in its status: written out here, not read from the operator.
MOVE_STEPS = [
    "check-target",
    "pre-pull",
    "pre-provision",
    "place-new",
    "recheck-target",
    "stop-old",
    "detach",
    "attach",
    "start",
]
HOME = "kwok-zone-a-1"  # where `pg` starts
NEIGHBOUR = "kwok-zone-a-2"  # the other node in its zone


def database_manifest(name: str = "pg", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Database",
        "metadata": {"name": name},
        "spec": {
            "engine": "postgresql",
            "version": "16",
            "placement": {"node": HOME},
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
            **spec,
        },
    }


def provision(bosun: Bosun, manifest: dict[str, Any]) -> dict[str, Any]:
    """Apply a Database and wait for the provision operation its creation starts."""
    name = manifest["metadata"]["name"]
    bosun.apply(manifest)
    # This Database's own provision (its name ends with the Database's uid): the history may hold
    # the provision of an earlier Database of the same name, ended long ago.
    uid = bosun.get("databases", name)["metadata"]["uid"]
    first = wait_for(
        lambda: [o for o in ops_of(bosun, name, "provision") if o.endswith(f"-{uid[:5]}")],
        what=f"the provision operation of {name} (uid {uid})",
    )[-1]
    status = bosun.wait_phase(first, timeout=120)
    bosun.wait_settled("databases", name, first)  # its target says so too: a later read compares alike
    return status


def ops_of(bosun: Bosun, target: str, type_: str) -> list[str]:
    """Names of the operations of this type on this target, oldest first."""
    found = [
        o for o in bosun.list("operations") if o["spec"]["target"]["name"] == target and o["spec"]["type"] == type_
    ]
    found.sort(key=lambda o: o["metadata"]["creationTimestamp"])
    return [o["metadata"]["name"] for o in found]


def start_op(bosun: Bosun, name: str, type_: str, target: str = "pg", **parameters: Any) -> None:
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "Operation",
        "metadata": {"name": name},
        "spec": {
            "target": {"kind": "Database", "name": target},
            "type": type_,
            **({"parameters": parameters} if parameters else {}),
        },
    }
    bosun.apply(manifest)


def run_op(bosun: Bosun, name: str, type_: str, target: str = "pg", **parameters: Any) -> dict[str, Any]:
    start_op(bosun, name, type_, target, **parameters)
    return bosun.wait_phase(name, timeout=180)


def move(bosun: Bosun, name: str, node: str) -> dict[str, Any]:
    return run_op(bosun, name, "redeploy", node=node)


def pods(bosun: Bosun, database: str = "pg") -> list[client.V1Pod]:
    return list(bosun.core.list_namespaced_pod(bosun.namespace, label_selector=f"{DATABASE_LABEL}={database}").items)


def steps(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in status.get("steps") or []}


@contextmanager
def extra_node(api: client.ApiClient, name: str, cpu: str = "4") -> Iterator[str]:
    """One more Ready KWOK node in zone-a while the block runs (named by convention: kwok-zone-a-<n>)."""
    core = client.CoreV1Api(api)
    capacity = {"cpu": cpu, "memory": "8Gi", "pods": "10"}
    core.create_node(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {
                    "kwok.x-k8s.io/node": "fake",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
                "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "zone-a", "type": "kwok"},
            },
            "status": {"allocatable": capacity, "capacity": capacity},
        }
    )
    try:
        wait_for(
            lambda: any(c.type == "Ready" and c.status == "True" for c in core.read_node(name).status.conditions or []),
            what=f"node {name} to be Ready",
        )
        yield name
    finally:
        core.delete_node(name)
