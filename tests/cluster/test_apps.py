"""Apps on the real cluster with the real operator: zero-downtime deploys, rollback, repair."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from bosun.models.names import API_VERSION, GROUP, PLURALS, VERSION
from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.crash import KillAtStep, restart_after
from tests.support.endpoints import ReadyEndpoints
from tests.support.operator_process import OperatorProcess, ensure_running, module_operator
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

FAIL = {"pod-container-running-failed.stage.kwok.x-k8s.io": "true"}
FAILING_MIN_READY = 3  # KWOK fails such a pod 1 to 2 s after it runs: never counted available first
REPLICAS = 3


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    yield from module_operator(
        cluster.kubeconfig,
        tmp_path_factory.mktemp("bosun"),
        command=["-m", "bosun", "run"],
        env={"BOSUN_REPAIR_SECONDS": "3600"},  # no full round during the tests: drift is repaired as it happens
    )


@pytest.fixture
def bosun(api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess) -> Bosun:
    ensure_running(operator)
    return Bosun(api, cluster, namespace)


def app_manifest(image: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "App",
        "metadata": {"name": "shop"},
        "spec": {
            "image": image,
            "healthCheck": {"path": "/healthz"},
            "minReadySeconds": 1,
            "terminationGracePeriodSeconds": 1,
            "processes": [{"name": "web", "replicas": REPLICAS, "ports": [{"port": 8080}]}],
            **extra,
        },
    }


@pytest.fixture
def shop(bosun: Bosun, api: client.ApiClient) -> Bosun:
    """App `shop` running release 1 with 3 ready endpoints."""
    bosun.apply(app_manifest("example.com/shop:1"))
    first = wait_for(lambda: bosun.list("operations"), what="the first deploy operation")[0]
    status = bosun.wait_phase(first["metadata"]["name"], timeout=120)
    assert status["phase"] == "Succeeded", status
    endpoints = ReadyEndpoints(api, bosun.namespace, "shop-web")
    wait_for(lambda: endpoints.probe() == REPLICAS, what="3 ready endpoints")
    return bosun


def pods(bosun: Bosun) -> list[client.V1Pod]:
    items = bosun.core.list_namespaced_pod(bosun.namespace, label_selector="app.kubernetes.io/component=web").items
    # Active pods: a ReplicaSet leaves its failed pods behind until they are garbage-collected.
    return [p for p in items if p.metadata.deletion_timestamp is None and p.status.phase not in ("Failed", "Succeeded")]


def images(bosun: Bosun) -> set[str]:
    return {p.spec.containers[0].image for p in pods(bosun)}


def deploy_op(bosun: Bosun) -> dict[str, Any]:
    return wait_for(
        lambda: [o for o in bosun.list("operations") if "-deploy-g2-" in o["metadata"]["name"]],
        what="the deploy operation of generation 2",
    )[0]


def test_deploy_keeps_serving_and_records_the_release(
    shop: Bosun, api: client.ApiClient, cluster: LocalCluster
) -> None:
    with ReadyEndpoints(api, shop.namespace, "shop-web") as endpoints:
        shop.apply(app_manifest("example.com/shop:2"))
        status = shop.wait_phase(deploy_op(shop)["metadata"]["name"], timeout=120)
    assert status["phase"] == "Succeeded", status
    assert min(endpoints.samples) >= REPLICAS, endpoints.samples
    wait_for(lambda: images(shop) == {"example.com/shop:2"} and len(pods(shop)) == REPLICAS, what="only new pods")
    app = shop.get("apps", "shop")
    assert [r["image"] for r in app["status"]["releases"]] == ["example.com/shop:2", "example.com/shop:1"]
    conditions = {c["type"]: c["status"] for c in app["status"]["conditions"]}
    assert conditions["Ready"] == "True" and conditions["Stalled"] == "False"
    row = cluster.kubectl("get", "apps.bosun.dev", "-n", shop.namespace).splitlines()[1].split()
    assert row[:4] == ["shop", "example.com/shop:2", "Running", "True"]
    described = cluster.kubectl("describe", "apps.bosun.dev", "shop", "-n", shop.namespace)
    name = deploy_op(shop)["metadata"]["name"]
    assert "example.com/shop:2" in described and name in described  # releases and last operation
    assert f"operation {name}: operation succeeded" in described  # the story, from its events


def test_failing_new_pods_roll_back_without_downtime(shop: Bosun, api: client.ApiClient) -> None:
    with ReadyEndpoints(api, shop.namespace, "shop-web") as endpoints:
        shop.apply(app_manifest("example.com/shop:2", podLabels=FAIL, minReadySeconds=FAILING_MIN_READY))
        status = shop.wait_phase(deploy_op(shop)["metadata"]["name"], timeout=120)
    assert status["phase"] == "Failed"
    assert status["reason"] == "PodsFailing"
    assert status["rollback"]["state"] == "Succeeded", status["rollback"]
    assert status["rollback"]["undone"] == ["roll-out"]
    assert min(endpoints.samples) >= REPLICAS, endpoints.samples
    wait_for(lambda: images(shop) == {"example.com/shop:1"} and len(pods(shop)) == REPLICAS, what="old pods only")
    app = shop.get("apps", "shop")
    stalled = next(c for c in app["status"]["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "RolledBack")
    assert status["phase"] and deploy_op(shop)["metadata"]["name"] in stalled["message"]
    assert [r["image"] for r in app["status"]["releases"]] == ["example.com/shop:1"]


def test_failing_before_release_leaves_the_old_release_untouched(shop: Bosun) -> None:
    before = {p.metadata.name for p in pods(shop)}
    shop.apply(app_manifest("example.com/shop:2", podLabels=FAIL, beforeRelease=["bin/migrate"]))
    status = shop.wait_phase(deploy_op(shop)["metadata"]["name"], timeout=120)
    assert (status["phase"], status["reason"]) == ("Failed", "BeforeReleaseFailed")
    step = next(s for s in status["steps"] if s["name"] == "before-release")
    assert "bin/migrate" in step["message"] and "exit code 1" in step["message"]  # the command's outcome
    assert next(s for s in status["steps"] if s["name"] == "roll-out")["state"] == "Pending"
    assert status["rollback"]["state"] == "Failed"  # a migration's effects cannot be undone, and it says so
    assert status["rollback"]["notUndone"][0]["step"] == "before-release"
    assert {p.metadata.name for p in pods(shop)} == before


def test_deploy_cancelled_half_way_rolls_back_without_downtime(
    shop: Bosun, api: client.ApiClient, cluster: LocalCluster
) -> None:
    slow = {"pod-ready.stage.kwok.x-k8s.io/delay": "4s"}
    with ReadyEndpoints(api, shop.namespace, "shop-web") as endpoints:
        shop.apply(app_manifest("example.com/shop:2", podAnnotations=slow))
        name = deploy_op(shop)["metadata"]["name"]
        shop.wait_step_state(name, 2, "Running")
        time.sleep(2)
        cluster.kubectl("patch", "op", name, "-n", shop.namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}')
        status = shop.wait_phase(name, timeout=120)
    assert status["phase"] == "Cancelled"
    assert status["rollback"]["state"] == "Succeeded"
    assert min(endpoints.samples) >= REPLICAS, endpoints.samples
    wait_for(lambda: images(shop) == {"example.com/shop:1"} and len(pods(shop)) == REPLICAS, what="old pods only")


def test_operator_killed_mid_deploy_resumes_without_downtime(
    shop: Bosun, api: client.ApiClient, operator: OperatorProcess
) -> None:
    slow = {"pod-ready.stage.kwok.x-k8s.io/delay": "3s"}
    with ReadyEndpoints(api, shop.namespace, "shop-web") as endpoints:
        shop.apply(app_manifest("example.com/shop:2", podAnnotations=slow))
        name = deploy_op(shop)["metadata"]["name"]
        shop.wait_step_state(name, 2, "Running")
        operator.kill()
        time.sleep(2)
        operator.start()
        status = shop.wait_phase(name, timeout=120)
    assert status["phase"] == "Succeeded", status
    assert status["steps"][2]["attempts"] == 2
    assert min(endpoints.samples) >= REPLICAS, endpoints.samples
    wait_for(lambda: images(shop) == {"example.com/shop:2"} and len(pods(shop)) == REPLICAS, what="new pods only")
    assert drift_repairs(api, shop.namespace) == []  # the restarted operator's first repair round left it alone


def drift_repairs(api: client.ApiClient, namespace: str) -> list[str]:
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [e.message or "" for e in events if e.reason == "DriftRepaired"]


def test_hand_made_drift_is_repaired(shop: Bosun, api: client.ApiClient) -> None:
    apps_api = client.AppsV1Api(api)
    apps_api.patch_namespaced_deployment("shop-web", shop.namespace, {"spec": {"replicas": 1}})
    wait_for(
        lambda: apps_api.read_namespaced_deployment("shop-web", shop.namespace).spec.replicas == REPLICAS,
        timeout=10,  # seen by the watch, not by a round every few minutes
        what="replicas put back",
    )
    apps_api.delete_namespaced_deployment("shop-web", shop.namespace)
    wait_for(
        lambda: any(d.metadata.name == "shop-web" for d in apps_api.list_namespaced_deployment(shop.namespace).items),
        timeout=10,
        what="the Deployment re-created",
    )
    assert any("shop-web" in message for message in drift_repairs(api, shop.namespace))


def test_failed_generation_is_not_retried_in_a_loop(shop: Bosun) -> None:
    shop.apply(app_manifest("example.com/shop:2", podLabels=FAIL, minReadySeconds=FAILING_MIN_READY))
    name = deploy_op(shop)["metadata"]["name"]
    assert shop.wait_phase(name, timeout=120)["phase"] == "Failed"
    time.sleep(6)  # the failed deploy's end pokes repair: nothing may start the same generation again
    generation_2 = [o["metadata"]["name"] for o in shop.list("operations") if "-g2-" in o["metadata"]["name"]]
    assert generation_2 == [name]
    assert images(shop) == {"example.com/shop:1"}  # repair keeps the running release, not the failed spec
    spec_writers = {
        m["manager"]
        for m in shop.get("apps", "shop")["metadata"]["managedFields"]
        if "f:spec" in (m.get("fieldsV1") or {})
    }
    assert spec_writers == {"kubectl-client-side-apply"}  # Bosun never writes the spec a GitOps tool owns


def test_scale_changes_replicas_without_restarting_pods(shop: Bosun) -> None:
    before = {p.metadata.name for p in pods(shop)}
    shop.operation("scale-up", "shop", type_="scale", parameters={"processes": [{"name": "web", "replicas": 5}]})
    status = shop.wait_phase("scale-up", timeout=120)
    assert status["phase"] == "Succeeded", status
    after = {p.metadata.name for p in pods(shop)}
    assert before < after and len(after) == 5


def test_restart_replaces_every_pod_without_downtime(shop: Bosun, api: client.ApiClient) -> None:
    before = {p.metadata.name for p in pods(shop)}
    with ReadyEndpoints(api, shop.namespace, "shop-web") as endpoints:
        shop.operation("restart-1", "shop", type_="restart")
        status = shop.wait_phase("restart-1", timeout=120)
    assert status["phase"] == "Succeeded", status
    assert min(endpoints.samples) >= REPLICAS, endpoints.samples
    wait_for(
        lambda: len(pods(shop)) == REPLICAS and not before & {p.metadata.name for p in pods(shop)}, what="new pods"
    )


def test_configure_rolls_out_the_new_environment(shop: Bosun) -> None:
    env = [{"name": "MODE", "value": "maintenance"}]
    shop.operation("configure-1", "shop", type_="configure", parameters={"env": env})
    assert shop.wait_phase("configure-1", timeout=120)["phase"] == "Succeeded"
    wait_for(
        lambda: (
            len(pods(shop)) == REPLICAS
            and all(
                (p.spec.containers[0].env or [None])[0] and p.spec.containers[0].env[0].value == "maintenance"
                for p in pods(shop)
            )
        ),
        what="pods with the new environment",
    )


def test_deprovision_removes_the_workload_and_keeps_history(shop: Bosun, api: client.ApiClient) -> None:
    shop.operation("bye", "shop", type_="deprovision")
    status = shop.wait_phase("bye", timeout=120)
    assert status["phase"] == "Succeeded", status
    assert not client.AppsV1Api(api).list_namespaced_deployment(shop.namespace).items
    assert shop.get("apps", "shop")["status"]["phase"] == "Deprovisioned"
    shop.custom.delete_namespaced_custom_object(GROUP, VERSION, shop.namespace, PLURALS["App"], "shop")
    wait_for(lambda: not [a for a in shop.list("apps")], what="the App gone")
    assert {o["metadata"]["name"] for o in shop.list("operations")} >= {"bye"}  # history outlives the App


def test_a_pod_label_edit_is_a_deploy_and_observed_only_once_in_force(shop: Bosun) -> None:
    shop.apply(app_manifest("example.com/shop:1", podLabels={"team": "checkout"}))
    name = deploy_op(shop)["metadata"]["name"]
    shop.wait_phase(name, {"Running"})
    assert shop.get("apps", "shop")["status"]["observedGeneration"] == 1  # not while the change runs
    assert shop.wait_phase(name, timeout=120)["phase"] == "Succeeded"
    wait_for(lambda: all(p.metadata.labels.get("team") == "checkout" for p in pods(shop)), what="labelled pods")
    app = wait_for(
        lambda: (a := shop.get("apps", "shop"))["status"].get("observedGeneration") == 2 and a,
        what="generation 2 observed once in force",
    )
    assert app["metadata"]["generation"] == 2
    ready = next(c for c in app["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_an_app_deleted_during_its_deploy_says_so_and_claims_nothing_stays(shop: Bosun) -> None:
    slow = {"pod-ready.stage.kwok.x-k8s.io/delay": "20s"}
    shop.apply(app_manifest("example.com/shop:2", podAnnotations=slow))
    name = deploy_op(shop)["metadata"]["name"]
    shop.wait_step_state(name, 2, "Running")
    shop.custom.delete_namespaced_custom_object(GROUP, VERSION, shop.namespace, PLURALS["App"], "shop")
    status = shop.wait_phase(name, timeout=120)
    assert (status["phase"], status["reason"]) == ("Failed", "TargetDeleted"), status
    assert "was deleted" in status["message"]
    assert status["rollback"]["state"] == "Succeeded" and status["rollback"]["notUndone"] == []
    assert "went with it" in status["steps"][2]["message"] or "deleted" in status["message"]


def test_apps_and_their_namespace_are_deleted_with_the_operator_down(
    bosun: Bosun, operator: OperatorProcess, cluster: LocalCluster
) -> None:
    bosun.apply(app_manifest("example.com/shop:1"))
    first = wait_for(lambda: bosun.list("operations"), what="the first deploy")[0]["metadata"]["name"]
    assert bosun.wait_phase(first, timeout=120)["phase"] == "Succeeded"
    wait_for(lambda: not bosun.get("operations", first)["metadata"].get("finalizers"), what="archived and let go")
    assert not bosun.get("apps", "shop")["metadata"].get("finalizers")
    operator.stop()
    try:
        bosun.core.delete_namespace(bosun.namespace)

        def gone() -> bool:
            try:
                bosun.core.read_namespace(bosun.namespace)
            except client.ApiException as error:
                return error.status == 404
            return False

        wait_for(gone, timeout=90, what="the namespace deleted with Bosun down")
    finally:
        operator.start()


def test_logs_into_a_closed_pipe_print_no_traceback(shop: Bosun, cluster: LocalCluster) -> None:
    name = wait_for(lambda: shop.list("operations"), what="the deploy")[0]["metadata"]["name"]
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"}
    piped = subprocess.run(
        # `true` reads nothing and exits at once: every write of the CLI meets a closed pipe.
        f"'{cluster.bin_dir / 'kubectl'}' bosun logs {name} -n {shop.namespace} | true",
        shell=True,
        capture_output=True,
        text=True,
        env={**env, "KUBECONFIG": str(cluster.kubeconfig)},
        timeout=60,
        check=False,
    )
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr


@pytest.mark.parametrize("step", ["before-release", "roll-out", "record-release"])
def test_deploy_killed_at_each_step_releases_once_without_downtime(
    shop: Bosun, api: client.ApiClient, operator: OperatorProcess, step: str
) -> None:
    with ReadyEndpoints(api, shop.namespace, "shop-web") as endpoints:
        with KillAtStep(shop, operator, step) as kill:
            shop.apply(app_manifest("example.com/shop:2", beforeRelease=["bin/migrate"]))
            restart_after(kill)
        status = shop.wait_phase(deploy_op(shop)["metadata"]["name"], timeout=120)
    assert status["phase"] == "Succeeded", status
    assert min(endpoints.samples) >= REPLICAS, endpoints.samples
    wait_for(lambda: images(shop) == {"example.com/shop:2"} and len(pods(shop)) == REPLICAS, what="new pods only")
    releases = shop.get("apps", "shop")["status"]["releases"]
    assert [r["image"] for r in releases] == ["example.com/shop:2", "example.com/shop:1"]  # recorded once
    # Killed before the release was recorded, the objects run :2 while releases[0] said :1: repair,
    # first after the restart, must not have taken the deploy for drift.
    assert drift_repairs(api, shop.namespace) == []
    jobs = client.BatchV1Api(api).list_namespaced_job(shop.namespace).items
    assert len(jobs) == 1  # the migration ran as one Job, whatever the crash


def test_configure_killed_mid_roll_out_rolls_out_once(shop: Bosun, operator: OperatorProcess) -> None:
    with KillAtStep(shop, operator, "roll-out", "configure-crash") as kill:
        shop.apply(
            {
                "apiVersion": API_VERSION,
                "kind": "Operation",
                "metadata": {"name": "configure-crash"},
                "spec": {
                    "target": {"kind": "App", "name": "shop"},
                    "type": "configure",
                    "parameters": {"env": [{"name": "MODE", "value": "fast"}]},
                },
            }
        )
        restart_after(kill)
    status = shop.wait_phase("configure-crash", timeout=120)
    assert status["phase"] == "Succeeded", status
    wait_for(
        lambda: (
            all({e.name: e.value for e in p.spec.containers[0].env or []}.get("MODE") == "fast" for p in pods(shop))
            and len(pods(shop)) == REPLICAS
        ),
        what="every pod on the new environment",
    )
