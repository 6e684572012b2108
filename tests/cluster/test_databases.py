"""Databases on the real cluster: provision and moves with every precondition checked first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from bosun.models.names import DATABASE_LABEL
from tests.support.bosun_objects import Bosun
from tests.support.databases import (
    HOME,
    MOVE_STEPS,
    NEIGHBOUR,
    database_manifest,
    extra_node,
    move,
    ops_of,
    pods,
    provision,
    run_op,
    steps,
)
from tests.support.endpoints import AttachedNodes
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


def test_provision_runs_the_database_on_its_volume(pg: Bosun) -> None:
    status = pg.get("databases", "pg")["status"]
    assert status["phase"] == "Running" and status["node"] == "kwok-zone-a-1"
    assert status["volume"]["volumeName"] and status["endpoint"] == f"pg.{pg.namespace}.svc:5432"
    secret = pg.core.read_namespaced_secret("pg-credentials", pg.namespace)
    assert secret.data["password"]


def test_move_checks_and_pre_pulls_before_stopping_and_never_double_attaches(pg: Bosun, api: client.ApiClient) -> None:
    volume = pg.get("databases", "pg")["status"]["volume"]["volumeName"]
    with AttachedNodes(api, volume) as attached:
        status = move(pg, "move-1", NEIGHBOUR)
    assert status["phase"] == "Succeeded", status
    done = steps(status)
    assert list(done) == MOVE_STEPS
    # No kubelet reports what it mounts on KWOK's nodes: the new pod comes after the detach.
    assert (
        done["place-new"]["state"] == "Skipped" and "does not report the volume in use" in done["place-new"]["message"]
    )
    assert done["check-target"]["finishedAt"] <= done["stop-old"]["startedAt"]
    assert done["pre-pull"]["finishedAt"] <= done["stop-old"]["startedAt"]
    assert max(len(nodes) for nodes in attached.samples) == 1  # never attached to two nodes at once
    database = pg.get("databases", "pg")["status"]
    assert database["node"] == NEIGHBOUR
    assert database["volume"]["volumeName"] == volume  # the same PV
    assert 0 < database["lastMoveDowntimeSeconds"] < 60
    assert [p.spec.node_name for p in pods(pg)] == [NEIGHBOUR]


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
    assert {s["state"] for s in status["steps"][1:]} == {"Pending"}, status["steps"]  # nothing stopped
    assert pg.get("databases", "pg")["status"]["node"] == "kwok-zone-a-1"


def test_move_to_a_cordoned_node_is_refused(pg: Bosun, cordoned: str) -> None:
    status = move(pg, "to-cordoned", cordoned)
    assert (status["phase"], status["reason"]) == ("Failed", "MoveRefused")
    assert "cordoned" in status["message"]


@pytest.fixture
def small_node(api: client.ApiClient) -> Iterator[str]:
    """A Ready node in the volume's zone with too little CPU for the database."""
    with extra_node(api, "kwok-zone-a-9", cpu="250m") as name:
        yield name


def test_move_to_a_node_too_small_is_refused(pg: Bosun, small_node: str) -> None:
    status = move(pg, "too-small", small_node)
    assert (status["phase"], status["reason"]) == ("Failed", "MoveRefused")
    assert "has no room: cpu 500m requested" in status["message"]


def test_restart_replaces_the_pod_in_place_on_the_same_volume(pg: Bosun) -> None:
    before = pods(pg)
    volume = pg.get("databases", "pg")["status"]["volume"]["volumeName"]
    status = run_op(pg, "restart-1", "restart")
    assert status["phase"] == "Succeeded", status
    assert list(steps(status)) == ["pre-pull", "stop", "start"]
    assert steps(status)["pre-pull"]["state"] == "Skipped"  # the image stays: nothing to pull
    after = pods(pg)
    assert [p.spec.node_name for p in after] == [HOME]
    assert after[0].metadata.uid != before[0].metadata.uid
    database = pg.get("databases", "pg")["status"]
    assert database["volume"]["volumeName"] == volume and database["running"]["version"] == "16"


def test_version_edit_restarts_with_the_new_image(pg: Bosun) -> None:
    pg.apply(database_manifest(version="17"))
    name = wait_for(lambda: ops_of(pg, "pg", "restart"), what="the restart the edit calls for")[0]
    status = pg.wait_phase(name, timeout=120)
    assert status["phase"] == "Succeeded", status
    assert [c.image for p in pods(pg) for c in p.spec.containers] == ["postgres:17"]
    assert steps(status)["pre-pull"]["state"] == "Succeeded"  # the new image, pulled before the stop
    database = pg.get("databases", "pg")["status"]
    assert (database["version"], database["node"]) == ("17", HOME)


def test_scale_that_fits_restarts_in_place_with_the_new_requests(pg: Bosun) -> None:
    status = run_op(pg, "scale-1", "scale", resources={"requests": {"cpu": "2", "memory": "2Gi"}})
    assert status["phase"] == "Succeeded", status
    assert list(steps(status)) == ["pre-pull", "stop", "start"]
    (pod,) = pods(pg)
    assert pod.spec.node_name == HOME
    assert pod.spec.containers[0].resources.requests == {"cpu": "2", "memory": "2Gi"}


@pytest.fixture
def crowded_home(db: Bosun) -> Iterator[str]:
    """6 of kwok-zone-a-1's 8 CPUs taken by another pod."""
    hog = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hog"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": HOME},
            "containers": [{"name": "hog", "image": "hog", "resources": {"requests": {"cpu": "6"}}}],
        },
    }
    db.core.create_namespaced_pod(db.namespace, hog)
    wait_for(lambda: db.core.read_namespaced_pod("hog", db.namespace).status.phase == "Running", what="the hog")
    yield HOME
    db.core.delete_namespaced_pod("hog", db.namespace, grace_period_seconds=0)


def test_scale_that_no_longer_fits_becomes_a_move(pg: Bosun, crowded_home: str) -> None:
    volume = pg.get("databases", "pg")["status"]["volume"]["volumeName"]
    status = run_op(pg, "scale-big", "scale", resources={"requests": {"cpu": "3", "memory": "1Gi"}})
    assert status["phase"] == "Succeeded", status
    done = steps(status)
    assert next(iter(done)) == "check-target"
    assert f"node {crowded_home} has no room: cpu 3 requested" in done["check-target"]["message"]
    assert f"moving to {NEIGHBOUR}" in done["check-target"]["message"]
    (pod,) = pods(pg)
    assert pod.spec.node_name == NEIGHBOUR
    assert pod.spec.containers[0].resources.requests["cpu"] == "3"
    assert pg.get("databases", "pg")["status"]["volume"]["volumeName"] == volume


def test_storage_edit_resizes_the_volume(pg: Bosun) -> None:
    pg.apply(database_manifest(storage={"size": "3Gi"}))
    name = wait_for(lambda: ops_of(pg, "pg", "resize"), what="the resize the edit calls for")[0]
    status = pg.wait_phase(name, timeout=120)
    assert status["phase"] == "Succeeded", status
    assert steps(status)["restart"]["state"] == "Skipped"  # the (simulated) CSI driver grows it online
    claim = pg.core.read_namespaced_persistent_volume_claim("pg-data", pg.namespace)
    assert claim.status.capacity["storage"] == "3Gi"
    assert pg.get("databases", "pg")["status"]["volume"]["capacity"] == "3Gi"


def test_a_volume_whose_driver_attaches_nothing_moves_without_waiting_for_an_attachment(
    db: Bosun, api: client.ApiClient
) -> None:
    # shared.csi.bosun.local says attachRequired: false, as NFS-like drivers do: the attach/detach
    # controller makes no VolumeAttachment, so waiting for one would only end at the timeout.
    manifest = database_manifest(
        "shared", storage={"size": "1Gi", "storageClassName": "bosun-shared"}, minReadySeconds=1
    )
    provisioned = provision(db, manifest)
    assert provisioned["phase"] == "Succeeded", provisioned
    volume = db.get("databases", "shared")["status"]["volume"]["volumeName"]
    with AttachedNodes(api, volume) as attached:
        status = run_op(db, "move", "redeploy", target="shared", node=NEIGHBOUR)
    assert status["phase"] == "Succeeded", status
    done = steps(status)
    for step in ("detach", "attach"):
        assert "CSI driver shared.csi.bosun.local attaches nothing" in done[step]["message"], done[step]
    assert db.get("databases", "shared")["status"]["node"] == NEIGHBOUR
    assert attached.samples and not any(attached.samples), attached.samples  # no attachment, ever


def test_resize_on_a_class_that_cannot_expand_is_refused_and_changes_nothing(db: Bosun) -> None:
    provision(db, database_manifest("fixed", storage={"size": "1Gi", "storageClassName": "bosun-fixed"}))
    status = run_op(db, "grow", "resize", target="fixed", volumeSize="2Gi")
    assert (status["phase"], status["reason"]) == ("Failed", "ResizeRefused")
    assert "StorageClass bosun-fixed does not allow volume expansion" in status["message"]
    assert {s["state"] for s in status["steps"][1:]} == {"Pending"}  # refused before any change, backup included
    claim = db.core.read_namespaced_persistent_volume_claim("fixed-data", db.namespace)
    assert claim.spec.resources.requests["storage"] == "1Gi"


def test_deprovision_with_retain_keeps_the_volume_for_a_later_provision(pg: Bosun, api: client.ApiClient) -> None:
    volume = pg.get("databases", "pg")["status"]["volume"]["volumeName"]
    status = run_op(pg, "down", "deprovision")
    assert status["phase"] == "Succeeded", status
    assert list(steps(status)) == ["stop", "remove-service", "keep-volume", "record"]
    assert pods(pg) == []
    assert pg.get("databases", "pg")["status"]["phase"] == "Deprovisioned"
    assert not [s for s in pg.core.list_namespaced_service(pg.namespace).items if s.metadata.name == "pg"]
    pv = client.CoreV1Api(api).read_persistent_volume(volume)
    assert pv.spec.persistent_volume_reclaim_policy == "Retain"
    pg.core.read_namespaced_secret("pg-credentials", pg.namespace)  # kept: the data needs its password
    again = run_op(pg, "up-again", "provision")
    assert again["phase"] == "Succeeded", again
    assert steps(again)["volume"]["state"] == "Skipped"  # the kept claim, the same volume
    assert pg.get("databases", "pg")["status"]["volume"]["volumeName"] == volume


def test_deprovision_with_delete_removes_volume_and_credentials(db: Bosun, api: client.ApiClient) -> None:
    provision(db, database_manifest("scratch", storage={"size": "1Gi", "reclaim": "Delete"}))
    volume = db.get("databases", "scratch")["status"]["volume"]["volumeName"]
    status = run_op(db, "drop", "deprovision", target="scratch")
    assert status["phase"] == "Succeeded", status
    assert steps(status)["delete-volume"]["state"] == "Succeeded"
    assert db.core.list_namespaced_persistent_volume_claim(db.namespace).items == []
    assert not [s for s in db.core.list_namespaced_secret(db.namespace).items if s.metadata.name.startswith("scratch")]
    core = client.CoreV1Api(api)
    wait_for(lambda: volume not in {v.metadata.name for v in core.list_persistent_volume().items}, what="PV gone")


def test_placement_edit_moves_the_database(pg: Bosun) -> None:
    pg.apply(database_manifest(placement={"node": NEIGHBOUR}))
    name = wait_for(lambda: ops_of(pg, "pg", "redeploy"), what="the redeploy the edit calls for")[0]
    status = pg.wait_phase(name, timeout=180)
    assert status["phase"] == "Succeeded", status
    assert [p.spec.node_name for p in pods(pg)] == [NEIGHBOUR]
    assert pg.get("databases", "pg")["status"]["node"] == NEIGHBOUR


def test_provision_on_a_node_that_does_not_exist_says_so_and_changes_nothing(db: Bosun) -> None:
    status = provision(db, database_manifest("ghost", placement={"node": "no-such-node"}))
    assert (status["phase"], status["reason"]) == ("Failed", "NodeNotFound"), status
    assert "node no-such-node does not exist" in status["message"]
    assert status["rollback"]["state"] == "NotNeeded"
    assert not db.core.list_namespaced_secret(db.namespace, label_selector=f"{DATABASE_LABEL}=ghost").items
    assert not db.core.list_namespaced_persistent_volume_claim(db.namespace).items
