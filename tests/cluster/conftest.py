"""Fixtures shared by the cluster test modules: one operator per module, a running `pg`, and the
operator's own API adapter for tests that call steps directly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes import client

from bosun.kube import Kube
from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.databases import HOME, database_manifest, provision
from tests.support.operator_process import OperatorProcess, ensure_running, module_operator
from tests.support.snapshots import Snapshots, played


@pytest.fixture(scope="module")
def database_operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    yield from module_operator(cluster.kubeconfig, tmp_path_factory.mktemp("bosun-db"), command=["-m", "bosun", "run"])


@pytest.fixture(scope="session")
def snapshot_controller(api: client.ApiClient) -> Iterator[Snapshots]:
    """The simulated drivers' snapshotter (tests/support/snapshots.py), beside the cluster's real
    snapshot-controller: backups, and the backups before changes that cannot be undone."""
    with played(api) as running:
        yield running


@pytest.fixture
def db(
    api: client.ApiClient,
    cluster: LocalCluster,
    namespace: str,
    database_operator: OperatorProcess,
    snapshot_controller: Snapshots,
) -> Bosun:
    """A Bosun helper in the test namespace, with the operator running and snapshots taken."""
    ensure_running(database_operator)
    return Bosun(api, cluster, namespace)


@pytest.fixture
def pg(db: Bosun) -> Bosun:
    """Database `pg` (PostgreSQL 16, 500m CPU) provisioned on kwok-zone-a-1. A new pod counts as
    started after 1 s Ready (the default is 5): modules whose failures must land inside that
    window provision their own."""
    status = provision(db, database_manifest(minReadySeconds=1))
    assert status["phase"] == "Succeeded", status
    assert db.get("databases", "pg")["status"]["node"] == HOME
    return db


@pytest.fixture
async def kube(cluster: LocalCluster) -> AsyncIterator[Kube]:
    connected = await Kube.connect(str(cluster.kubeconfig), cluster.context)
    yield connected
    await connected.close()
