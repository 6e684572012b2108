"""Installing Bosun as users do, on the real cluster: `helm install/upgrade/uninstall` of the chart,
and the operator run from a wheel in a fresh virtualenv (what the image holds) as two replicas with
the chart's identity and settings: one acts, and the other takes over a database move when the
leader is SIGKILLed in the middle of it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.bosun_objects import Bosun
from tests.support.cluster import ROOT, LocalCluster
from tests.support.databases import NEIGHBOUR, database_manifest, ops_of, provision, start_op
from tests.support.endpoints import AttachedNodes
from tests.support.install import helm, token_kubeconfig
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster
CHART = str(ROOT / "charts" / "bosun")


def kubectl_json(cluster: LocalCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json"))


def exists(cluster: LocalCluster, *args: str) -> bool:
    return bool(cluster.kubectl("get", *args, "--ignore-not-found", "-o", "name").strip())


@pytest.fixture
def release(cluster: LocalCluster) -> Iterator[tuple[str, str]]:
    name, namespace = "bosun-ci", "bosun-ci-system"
    yield name, namespace
    helm(cluster, "uninstall", name, "-n", namespace, check=False)
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def test_helm_install_upgrade_and_uninstall(cluster: LocalCluster, namespace: str, release: tuple[str, str]) -> None:
    name, system = release
    helm(cluster, "install", name, CHART, "-n", system, "--create-namespace", "--set", "replicaCount=0")
    assert exists(cluster, "crd", "operations.bosun.dev", "apps.bosun.dev", "databases.bosun.dev")
    for policy in ("operation-created-by", "spec-editor", "operation-cancelled-by"):
        assert exists(cluster, "mutatingadmissionpolicy", f"{name}-{policy}")
    assert exists(cluster, "validatingadmissionpolicy", f"{name}-operation-provenance")
    account = f"system:serviceaccount:{system}:{name}"

    def can(verb: str, resource: str, where: str) -> bool:
        return (
            cluster.kubectl("auth", "can-i", verb, resource, *where.split(), "--as", account, check=False).strip()
            == "yes"
        )

    assert can("patch", "operations.bosun.dev/status", f"-n {namespace}")
    assert can("update", f"leases.coordination.k8s.io/{name}", f"-n {system}")
    assert not can("list", "secrets", f"-n {namespace}") and not can("patch", "nodes", "")
    deployment = kubectl_json(cluster, "get", "deployment", name, "-n", system)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name

    # An upgrade with changed values: watch one namespace only, two replicas.
    helm(
        cluster,
        "upgrade",
        name,
        CHART,
        "-n",
        system,
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        "replicaCount=2",
    )
    assert not exists(cluster, "clusterrolebinding", f"{name}-operator")
    assert exists(cluster, "rolebinding", f"{name}-operator", "-n", namespace)
    assert can("patch", "operations.bosun.dev/status", f"-n {namespace}")
    assert not can("patch", "operations.bosun.dev/status", "-n default")  # only the watched namespace
    assert kubectl_json(cluster, "get", "deployment", name, "-n", system)["spec"]["replicas"] == 2
    assert exists(cluster, "pdb", name, "-n", system)

    # Users' objects, then uninstall: they and the CRDs stay; the operator's objects go.
    bosun = Bosun(client.ApiClient(), cluster, namespace)
    bosun.app("kept")
    helm(cluster, "uninstall", name, "-n", system)
    assert exists(cluster, "crd", "operations.bosun.dev")
    assert exists(cluster, "app.bosun.dev", "kept", "-n", namespace)
    assert exists(cluster, "pvc", f"{name}-store", "-n", system)  # operation logs outlive an uninstall
    assert not exists(cluster, "clusterrole", f"{name}-operator")
    assert not exists(cluster, "mutatingadmissionpolicy", f"{name}-operation-created-by")
    assert not exists(cluster, "deployment", name, "-n", system)


# The operator from a wheel, with the chart's identity and settings ----------------------------------


@pytest.fixture(scope="module")
def installed_bosun(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`bosun` installed from its wheel into a fresh virtualenv: what the image's final stage holds."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for part in ("pyproject.toml", "README.md", "operator"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy2
        copy(ROOT / part, source / part)  # type: ignore[operator]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(source)], check=True
    )
    (wheel,) = (work / "dist").glob("bosun-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    subprocess.run([str(work / "venv" / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=600)
    return work / "venv" / "bin" / "bosun"


def chart_environment(manifest: str, pod: str, store: Path) -> dict[str, str]:
    """The operator container's environment as the chart sets it, with what the kubelet would fill in."""
    deployment = next(d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["run"]
    filled = {"metadata.name": pod, "metadata.namespace": deployment["metadata"]["namespace"]}
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = filled[item["valueFrom"]["fieldRef"]["fieldPath"]]
    assert env["BOSUN_STORE_URL"] == "/var/lib/bosun/store"
    env["BOSUN_STORE_URL"] = str(store)  # the claim, mounted by both replicas on one node
    return env


class Replicas:
    """Two operator processes started as the chart's Deployment would run them."""

    def __init__(self, program: Path, kubeconfig: Path, manifest: str, work: Path) -> None:
        self.processes = {}
        for index in range(2):
            pod = f"bosun-ha-{index}"
            logs = work / pod
            logs.mkdir()
            env = {**chart_environment(manifest, pod, work / "store"), "PYTHONPATH": ""}
            self.processes[pod] = OperatorProcess(
                kubeconfig, logs, program=[str(program), "run"], env=env, log_format="plain", all_namespaces=False
            )

    def role(self, pod: str) -> str:
        process = self.processes[pod]
        if process.process is None or process.process.poll() is not None:
            return "dead"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/healthz", timeout=5) as response:
                return str(json.loads(response.read())["role"])
        except OSError:
            return "unknown"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.process is not None and process.process.poll() is None:
                process.stop(timeout=30)


@pytest.fixture
def ha_release(cluster: LocalCluster, namespace: str) -> Iterator[tuple[str, str]]:
    name, system = "bosun-ha", "bosun-ha-system"
    # One Bosun per cluster: the test cluster's own policy lets only bosun-system:bosun write operation
    # logs, so it steps aside while this release (whose policy names its own account) is installed.
    cluster.kubectl("delete", "validatingadmissionpolicybinding", "bosun-operation-logs", "--ignore-not-found")
    helm(
        cluster, "install", name, CHART, "-n", system, "--create-namespace",
        "--set", "replicaCount=0", "--set", f"watchNamespaces={{{namespace}}}",
    )  # fmt: skip
    yield name, system
    helm(cluster, "uninstall", name, "-n", system, check=False)
    cluster.kubectl("delete", "namespace", system, "--ignore-not-found", "--wait=false")
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "manifests" / "admission-policies.yaml")
    )


def test_two_replicas_from_the_wheel_one_acts_and_the_standby_finishes_a_move(
    api: client.ApiClient,
    cluster: LocalCluster,
    namespace: str,
    installed_bosun: Path,
    ha_release: tuple[str, str],
    tmp_path: Path,
) -> None:
    name, system = ha_release
    manifest = helm(cluster, "get", "manifest", name, "-n", system).stdout
    kubeconfig = token_kubeconfig(cluster, tmp_path / "kubeconfig", namespace=system, account=name)
    replicas = Replicas(installed_bosun, kubeconfig, manifest, tmp_path)
    first, second = replicas.processes["bosun-ha-0"], replicas.processes["bosun-ha-1"]
    try:
        first.start()
        wait_for(lambda: replicas.role("bosun-ha-0") == "leader", timeout=30, what="the first replica to lead")
        second.start()
        assert replicas.role("bosun-ha-1") == "standby"
        lease = kubectl_json(cluster, "get", "lease", name, "-n", system)
        assert lease["spec"]["holderIdentity"] == "bosun-ha-0"

        bosun = Bosun(api, cluster, namespace)
        bosun.app("web")
        deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the App's first deploy")[0]
        assert bosun.wait_phase(deploy, timeout=120)["phase"] == "Succeeded"
        assert provision(bosun, database_manifest(minReadySeconds=8))["phase"] == "Succeeded"

        # Exactly one acts: the leader ended both operations; the standby did nothing at all.
        assert "bosun_operations_total{" in first.metrics()
        assert "bosun_operations_total{" not in second.metrics()
        assert re.search(r"^bosun_leader 0\.0$", second.metrics(), re.MULTILINE)
        assert "Handler" not in second.log_text()  # Kopf never started in the standby

        volume = bosun.get("databases", "pg")["status"]["volume"]["volumeName"]
        with AttachedNodes(api, volume) as attached:
            start_op(bosun, "move", "redeploy", node=NEIGHBOUR)
            index = ["stop-old", "detach", "attach", "start"]

            def in_downtime() -> bool:
                steps = {s["name"]: s["state"] for s in bosun.status("move").get("steps") or []}
                return any(steps.get(step) == "Running" for step in index)

            wait_for(in_downtime, timeout=60, interval=0.1, what="the move to be in its downtime")
            killed_during = next(s["name"] for s in bosun.status("move").get("steps") or [] if s["state"] == "Running")
            killed_at = time.monotonic()
            first.kill()
            wait_for(lambda: replicas.role("bosun-ha-1") == "leader", timeout=40, interval=0.2, what="a takeover")
            takeover = time.monotonic() - killed_at
            status = bosun.wait_phase("move", timeout=180)
            finished = time.monotonic() - killed_at
        assert status["phase"] == "Succeeded" or (status.get("rollback") or {}).get("state") == "Succeeded", status
        assert max(len(nodes) for nodes in attached.samples) <= 1  # never attached to two nodes at once
        database = bosun.get("databases", "pg")["status"]
        assert database["volume"]["volumeName"] == volume
        lease = kubectl_json(cluster, "get", "lease", name, "-n", system)
        assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("bosun-ha-1", 1)
        for process in (first, second):
            assert process.refused() == [], process.log_dir
        # Someone else takes the Lease (a partitioned leader's successor, say): the leader stops at once.
        cluster.kubectl(
            "patch", "lease", name, "-n", system, "--type=merge", "-p", '{"spec": {"holderIdentity": "intruder"}}'
        )
        assert second.process is not None
        assert second.process.wait(timeout=10) == 75, "the leader kept acting after losing its Lease"
        assert "leadership lost, exiting at once" in second.log_text()
        print(
            f"\nHA: takeover {takeover:.1f}s after SIGKILL; move {status['phase']} {finished:.1f}s after it; "
            f"recorded downtime {database.get('lastMoveDowntimeSeconds')}s"
        )
        results = os.environ.get("BOSUN_HA_RESULTS")  # `python -m benchmarks ha` publishes these
        if results:
            assert status["phase"] == "Succeeded", status  # a published figure says the move finished
            measured = {
                "takeover_seconds": round(takeover, 1),
                "finished_seconds": round(finished, 1),
                "phase": status["phase"],
                "recorded_downtime_seconds": database.get("lastMoveDowntimeSeconds"),
                "most_attached": max(len(nodes) for nodes in attached.samples),
                "killed_during": killed_during,
            }
            Path(results).write_text(json.dumps(measured))
    finally:
        replicas.stop()
