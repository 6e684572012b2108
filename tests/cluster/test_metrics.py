"""/metrics after real operations: each counter and histogram says what status says happened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bosun.errors import PermanentError
from bosun.kube import Kube
from bosun.store import LocalStore, StoreUnavailable
from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.databases import NEIGHBOUR, database_manifest, move, ops_of, provision
from tests.support.fault_proxy import FaultProxy
from tests.support.install import apply_operator_rbac, token_kubeconfig
from tests.support.operator_process import OperatorProcess, module_operator
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    yield from module_operator(
        cluster.kubeconfig, tmp_path_factory.mktemp("bosun-metrics"), command=["-m", "bosun", "run"]
    )


def scrape(operator: OperatorProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def rollback_of(status: dict[str, object]) -> str:
    return str((status.get("rollback") or {}).get("state", "NotNeeded"))  # type: ignore[attr-defined]


def test_metrics_count_what_the_operations_did(
    api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    bosun = Bosun(api, cluster, namespace)
    bosun.app("web")
    deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the App's first deploy")[0]
    deployed = bosun.wait_phase(deploy, timeout=120)
    provisioned = provision(bosun, database_manifest(minReadySeconds=1))
    moved = move(bosun, "move-1", NEIGHBOUR)
    refused = move(bosun, "move-2", "no-such-node")
    assert [s["phase"] for s in (deployed, provisioned, moved, refused)] == ["Succeeded"] * 3 + ["Failed"]

    wait_for(lambda: value(scrape(operator), "bosun_operations_running") == 0, what="no operation being driven")
    wait_for(lambda: value(scrape(operator), "bosun_log_lines_buffered") == 0, timeout=15, what="every log line stored")
    samples = scrape(operator)
    ended = "bosun_operations_total"
    assert value(samples, ended, kind="App", type="deploy", phase="Succeeded", rollback=rollback_of(deployed)) == 1
    assert value(samples, ended, kind="Database", type="provision", phase="Succeeded", rollback="NotNeeded") == 1
    assert value(samples, ended, kind="Database", type="redeploy", phase="Succeeded", rollback="NotNeeded") == 1
    assert value(samples, ended, kind="Database", type="redeploy", phase="Failed", rollback=rollback_of(refused)) == 1
    assert sum(v for (name, _), v in samples.items() if name == ended) == 4

    redeploys = {"kind": "Database", "type": "redeploy"}
    assert value(samples, "bosun_queue_wait_seconds_count", **redeploys) == 2
    assert value(samples, "bosun_operation_duration_seconds_count", **redeploys, phase="Succeeded") == 1
    step = "bosun_step_duration_seconds_count"
    assert value(samples, step, type="redeploy", step="check-target", state="Succeeded") == 1
    assert value(samples, step, type="redeploy", step="check-target", state="Failed") == 1  # the refused move
    assert value(samples, step, type="redeploy", step="stop-old", state="Succeeded") == 1  # only the real move
    downtime = bosun.get("databases", "pg")["status"]["lastMoveDowntimeSeconds"]
    assert value(samples, "bosun_database_move_downtime_seconds_count") == 1
    assert value(samples, "bosun_database_move_downtime_seconds_sum") == pytest.approx(downtime, abs=0.06)
    assert value(samples, "bosun_leader") == 1  # no election: this process acts
    assert "process_resident_memory_bytes" in {name for name, _ in samples}


def counted(name: str, **labels: str) -> float:
    """This process's own metric (the in-process adapter, not the operator's)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def all_api_errors() -> float:
    return sum(
        s.value
        for f in REGISTRY.collect()
        if f.name == "bosun_kube_api_errors"
        for s in f.samples
        if s.name.endswith("_total")
    )


async def test_api_errors_are_counted_by_status_and_kind(cluster: LocalCluster, tmp_path: Path, namespace: str) -> None:
    apply_operator_rbac(cluster)
    kubeconfig = token_kubeconfig(cluster, tmp_path / "kubeconfig")  # the operator's own rights
    kube = await Kube.connect(str(kubeconfig), cluster.context)
    before = counted("bosun_kube_api_errors_total", code="403", kind="permanent")
    try:
        with pytest.raises(PermanentError):
            await kube.delete(namespace, "App", "web")  # the operator may never delete an App
        assert counted("bosun_kube_api_errors_total", code="403", kind="permanent") == before + 1
        total = all_api_errors()
        assert await kube.read(namespace, "App", "no-such-app") is None  # NotFound is an answer: not counted
        assert all_api_errors() == total
    finally:
        await kube.close()


async def test_store_failures_are_counted(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory should be")
    before = counted("bosun_store_failures_total", request="put")
    with pytest.raises(StoreUnavailable):
        await LocalStore(tmp_path / "blocked").put("logs/x", b"line\n")
    assert counted("bosun_store_failures_total", request="put") == before + 1


async def test_reads_failing_transiently_are_retried_and_counted(cluster: LocalCluster, tmp_path: Path) -> None:
    proxy = FaultProxy(cluster.kubeconfig, cluster.context, rate=0.3, seed=7)  # 500s, 429s, latency
    kube = await Kube.connect(str(proxy.kubeconfig(tmp_path / "kubeconfig")))
    before = counted("bosun_retries_total", where="read")
    try:
        for _ in range(30):
            assert await kube.node("kwok-zone-a-1") is not None  # each read gets through
    finally:
        await kube.close()
        proxy.close()
    failed = proxy.faults["500"] + proxy.faults["429"]
    assert failed > 0 and counted("bosun_retries_total", where="read") == before + failed
