"""Databases on the real cluster: provision, and moves with every precondition checked first."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.operator_process import OperatorProcess, ensure_running, module_operator
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    yield from module_operator(cluster.kubeconfig, tmp_path_factory.mktemp("bosun-db"), command=["-m", "bosun", "run"])


@pytest.fixture
def pg(api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess) -> Bosun:
    """Database `pg` provisioned on kwok-zone-a-1."""
    ensure_running(operator)
    bosun = Bosun(api, cluster, namespace)
    bosun.apply(
        {
            "apiVersion": "bosun.dev/v1alpha1",
            "kind": "Database",
            "metadata": {"name": "pg"},
            "spec": {
                "engine": "postgresql",
                "version": "16",
                "placement": {"node": "kwok-zone-a-1"},
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
            },
        }
    )
    first = wait_for(lambda: bosun.list("operations"), what="the provision operation")[0]
    status = bosun.wait_phase(first["metadata"]["name"], timeout=120)
    assert status["phase"] == "Succeeded", status
    return bosun


def move(bosun: Bosun, name: str, node: str) -> dict[str, Any]:
    manifest = {
        "apiVersion": "bosun.dev/v1alpha1",
        "kind": "Operation",
        "metadata": {"name": name},
        "spec": {"target": {"kind": "Database", "name": "pg"}, "type": "redeploy", "parameters": {"node": node}},
    }
    bosun.apply(manifest)
    return bosun.wait_phase(name, timeout=180)


def test_provision_runs_the_database_on_its_volume(pg: Bosun) -> None:
    status = pg.get("databases", "pg")["status"]
    assert status["phase"] == "Running" and status["node"] == "kwok-zone-a-1"
    assert status["volume"]["volumeName"] and status["endpoint"] == f"pg.{pg.namespace}.svc:5432"
    secret = pg.core.read_namespaced_secret("pg-credentials", pg.namespace)
    assert secret.data["password"]


def test_move_checks_and_pre_pulls_before_stopping_and_never_double_attaches(pg: Bosun, api: client.ApiClient) -> None:
    volume = pg.get("databases", "pg")["status"]["volume"]["volumeName"]
    storage = client.StorageV1Api(api)
    attached_nodes: list[set[str]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            items = storage.list_volume_attachment().items
            attached_nodes.append({v.spec.node_name for v in items if v.spec.source.persistent_volume_name == volume})
            time.sleep(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        status = move(pg, "move-1", "kwok-zone-a-2")
    finally:
        stop.set()
        watcher.join()
    assert status["phase"] == "Succeeded", status
    steps = {s["name"]: s for s in status["steps"]}
    assert list(steps) == ["check-target", "pre-pull", "pre-provision", "stop-old", "detach", "attach", "start"]
    assert steps["check-target"]["finishedAt"] <= steps["stop-old"]["startedAt"]
    assert steps["pre-pull"]["finishedAt"] <= steps["stop-old"]["startedAt"]
    assert max(len(nodes) for nodes in attached_nodes) == 1  # never attached to two nodes at once
    database = pg.get("databases", "pg")["status"]
    assert database["node"] == "kwok-zone-a-2"
    assert database["volume"]["volumeName"] == volume  # the same PV
    assert 0 < database["lastMoveDowntimeSeconds"] < 60
    pods = [p for p in pg.core.list_namespaced_pod(pg.namespace, label_selector="bosun.dev/database=pg").items]
    assert [p.spec.node_name for p in pods] == ["kwok-zone-a-2"]


@pytest.fixture
def cordoned(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    core.patch_node("kwok-zone-a-2", {"spec": {"unschedulable": True}})
    yield "kwok-zone-a-2"
    core.patch_node("kwok-zone-a-2", {"spec": {"unschedulable": None}})


@pytest.mark.parametrize(
    ("node", "why"),
    [("kwok-zone-b-1", "a move across zones is refused"), ("no-such-node", "does not exist")],
)
def test_impossible_moves_are_refused_before_any_downtime(pg: Bosun, node: str, why: str) -> None:
    status = move(pg, "refused", node)
    assert (status["phase"], status["reason"]) == ("Failed", "MoveRefused")
    assert why in status["message"]
    assert [s["state"] for s in status["steps"]][1:] == ["Pending"] * 6  # nothing stopped
    assert pg.get("databases", "pg")["status"]["node"] == "kwok-zone-a-1"


def test_move_to_a_cordoned_node_is_refused(pg: Bosun, cordoned: str) -> None:
    status = move(pg, "to-cordoned", cordoned)
    assert (status["phase"], status["reason"]) == ("Failed", "MoveRefused")
    assert "cordoned" in status["message"]


@pytest.fixture
def small_node(api: client.ApiClient) -> Iterator[str]:
    """A Ready node in the volume's zone with too little CPU for the database (named by convention)."""
    core = client.CoreV1Api(api)
    name = "kwok-zone-a-9"
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
            "status": {
                "allocatable": {"cpu": "250m", "memory": "8Gi", "pods": "10"},
                "capacity": {"cpu": "250m", "memory": "8Gi", "pods": "10"},
            },
        }
    )
    wait_for(
        lambda: any(c.type == "Ready" and c.status == "True" for c in core.read_node(name).status.conditions or []),
        what="the small node to be Ready",
    )
    yield name
    core.delete_node(name)


def test_move_to_a_node_too_small_is_refused(pg: Bosun, small_node: str) -> None:
    status = move(pg, "too-small", small_node)
    assert (status["phase"], status["reason"]) == ("Failed", "MoveRefused")
    assert "has no room: cpu 500m requested" in status["message"]
