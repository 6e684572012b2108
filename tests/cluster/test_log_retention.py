"""Log copies in a namespace have a retention (the seeds keep logs 90 days): a log whose last line
is older goes, whole; a newer one, and ConfigMaps that are not log copies, stay. Run with the
operator's own rights (the chart's RBAC), reading only metadata."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubernetes import client

from bosun.activity.service import ActivityService
from bosun.kube import Kube
from bosun.models import logcopy
from bosun.store import LocalStore
from tests.support.cluster import LocalCluster
from tests.support.install import apply_operator_rbac, token_kubeconfig


def chunk(name: str, uid: str, labels: dict[str, str] | None = None) -> client.V1ConfigMap:
    tagged = {**logcopy.MANAGED_BY, logcopy.UID_LABEL: uid} if labels is None else labels
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=tagged), data={"log.gz": "x" * 1000})


async def test_a_log_copy_past_its_retention_goes_whole_and_nothing_else_does(
    cluster: LocalCluster, core: client.CoreV1Api, namespace: str, tmp_path: Path
) -> None:
    for name, uid in (("old-0", "u-old"), ("old-1", "u-old")):
        core.create_namespaced_config_map(namespace, chunk(name, uid))
    core.create_namespaced_config_map(namespace, chunk("mine", "", labels={"app": "mine"}))
    await asyncio.sleep(2.5)  # API times have whole seconds: the old log is now 2 s older than the new one
    core.create_namespaced_config_map(namespace, chunk("new-0", "u-new"))
    apply_operator_rbac(cluster)
    kube = await Kube.connect(str(token_kubeconfig(cluster, tmp_path / "kubeconfig")), cluster.context)
    try:
        new_written = core.read_namespaced_config_map("new-0", namespace).metadata.creation_timestamp
        activity = ActivityService(
            kube,
            LocalStore(tmp_path / "store"),
            retention_seconds=3600,
            log_retention_seconds=60,
            namespaces=[namespace],
            clock=lambda: new_written + timedelta(seconds=60) - timedelta(seconds=1),  # the old log is past 60 s
        )
        assert await activity.tidy_logs() == [f"{namespace}/log u-old"]
        left = sorted(c.metadata.name for c in core.list_namespaced_config_map(namespace).items)
        assert left == ["kube-root-ca.crt", "mine", "new-0"], left
        later = ActivityService(
            kube, LocalStore(tmp_path / "store"), retention_seconds=3600, log_retention_seconds=60,
            namespaces=[namespace], clock=lambda: datetime.now(UTC) + timedelta(days=1),
        )  # fmt: skip
        assert await later.tidy_logs() == [f"{namespace}/log u-new"]
    finally:
        await kube.close()
