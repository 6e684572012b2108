"""A 409 on one of Kopf's own merge-patches (its finalizer, its progress annotations) is tried again:
Kopf would drop the event it was handling ("Throttling ... due to an unexpected error"), and a new
Database that sees no later event would wait for the next re-listing for its provision (the fault
harness found it: a provision that had not started after 60 s). See bosun.kopf_session."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.fault_proxy import FaultProxy
from tests.support.install import apply_operator_rbac
from tests.support.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster


def test_conflicts_on_kopfs_own_patches_are_tried_again_and_no_event_is_dropped(
    api: client.ApiClient, cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    apply_operator_rbac(cluster)
    proxy = FaultProxy(cluster.kubeconfig, cluster.context, rate=0.0, seed=1)
    proxy.kopf_merge_patch_conflicts = 3  # the next three of Kopf's merge-patches: more than one try
    operator = OperatorProcess(
        proxy.kubeconfig(tmp_path / "kubeconfig"), tmp_path, command=["-m", "bosun", "run"],
        env={"BOSUN_NAMESPACES": namespace}, all_namespaces=False,
    )  # fmt: skip
    operator.start()
    try:
        bosun = Bosun(api, cluster, namespace)
        bosun.app("web")
        bosun.wait_all_finished(timeout=90)
        provision = bosun.list("operations")
        assert [o["status"]["phase"] for o in provision] == ["Succeeded"]
        assert proxy.faults["409"] == 3 and proxy.kopf_merge_patch_conflicts == 0  # all three were met
        assert operator.process is not None and operator.process.poll() is None, "the operator stopped"
        log = operator.log_text()
        assert log.count("conflicted (409): trying again") == 3
        assert "due to an unexpected error" not in log  # Kopf dropped no event
    finally:
        operator.stop()
        proxy.close()
