"""The operator works with only the RBAC of manifests/ (the chart's defaults), and that RBAC grants no more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.databases import NEIGHBOUR, database_manifest, ops_of, provision, run_op
from tests.support.install import apply_operator_rbac, token_kubeconfig
from tests.support.operator_process import OperatorProcess, module_operator
from tests.support.snapshots import Snapshots
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

SA = "system:serviceaccount:bosun-system:bosun"
# The test step table writes ledger ConfigMaps in the test namespace: a need of the test, not of Bosun.
TEST_ONLY = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: bosun-test-ledger}
rules:
- {apiGroups: [""], resources: ["configmaps"], verbs: ["get", "create", "update"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bosun-test-ledger}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bosun-test-ledger}
subjects: [{kind: ServiceAccount, name: bosun, namespace: bosun-system}]
"""


@pytest.fixture(scope="module")
def service_account_kubeconfig(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    apply_operator_rbac(cluster)
    cluster.kubectl("apply", "-f", "-", input=TEST_ONLY)
    return token_kubeconfig(cluster, tmp_path_factory.mktemp("sa") / "kubeconfig")


@pytest.fixture
def operator_as_service_account(service_account_kubeconfig: Path, tmp_path: Path) -> Iterator[OperatorProcess]:
    yield from module_operator(service_account_kubeconfig, tmp_path, env={"BOSUN_NAMESPACE": "bosun-system"})


def test_operator_runs_with_least_privilege(
    api: client.ApiClient, cluster: LocalCluster, namespace: str, operator_as_service_account: OperatorProcess
) -> None:
    bosun = Bosun(api, cluster, namespace)
    bosun.app("web")
    bosun.operation("restart-1", "web")
    status = bosun.wait_phase("restart-1")
    assert status["phase"] == "Succeeded", status
    assert operator_as_service_account.healthz() == 200  # its heartbeat works under these rules
    assert operator_as_service_account.refused() == []


@pytest.fixture
def product_as_service_account(service_account_kubeconfig: Path, tmp_path: Path) -> Iterator[OperatorProcess]:
    yield from module_operator(
        service_account_kubeconfig, tmp_path, command=["-m", "bosun", "run"], env={"BOSUN_NAMESPACE": "bosun-system"}
    )


def test_apps_and_databases_work_under_these_rules(
    api: client.ApiClient,
    cluster: LocalCluster,
    namespace: str,
    product_as_service_account: OperatorProcess,
    snapshot_controller: Snapshots,
) -> None:
    bosun = Bosun(api, cluster, namespace)
    bosun.app("web")
    assert provision(bosun, database_manifest(minReadySeconds=1))["phase"] == "Succeeded"
    assert run_op(bosun, "move", "redeploy", node=NEIGHBOUR)["phase"] == "Succeeded"
    # A backup: its record and status, its snapshot and class, and its CHECKPOINT through exec.
    assert run_op(bosun, "nightly", "backup")["phase"] == "Succeeded"
    assert run_op(bosun, "grow", "resize", volumeSize="2Gi")["phase"] == "Succeeded"  # backs up first
    assert run_op(bosun, "down", "deprovision")["phase"] == "Succeeded"
    deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the App's first deploy")[0]
    assert bosun.wait_phase(deploy, timeout=120)["phase"] == "Succeeded"
    assert product_as_service_account.refused() == []


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("list", "secrets"),
        ("watch", "secrets"),
        ("patch", "nodes"),
        ("delete", "persistentvolumes"),
        ("delete", "apps.bosun.dev"),
        ("delete", "databases.bosun.dev"),
        ("create", "clusterrolebindings"),
    ],
)
def test_service_account_is_refused_what_it_does_not_need(
    cluster: LocalCluster, service_account_kubeconfig: Path, verb: str, resource: str
) -> None:
    answer = cluster.kubectl("auth", "can-i", verb, resource, "-A", "--as", SA, check=False).strip()
    assert answer == "no"
