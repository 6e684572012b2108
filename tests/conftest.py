"""Session-wide test wiring: the real local cluster, a namespace per test, the CRDs applied once.

`hack/test` runs the suite in two pytest-xdist workers, a test module each at a time. Every
module's operator watches all namespaces, and some tests change nodes or install the chart
cluster-wide, so the workers do not share a cluster: the first uses the usual one (`bosun`), each
other worker a cluster of its own (`bosun-gw1`, ...), named before anything reads the name.
"""

from __future__ import annotations

from tests.support.workers import use_own_cluster

use_own_cluster()

import os  # noqa: E402
import re  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from kubernetes import client, config  # noqa: E402

from tests.support.cluster import LocalCluster, find_or_start, serve_bosun_api, stop  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    local = find_or_start()
    serve_bosun_api(local)
    yield local
    if local.started_here and os.environ.get("BOSUN_KEEP_CLUSTER") != "1":
        stop()


@pytest.fixture(scope="session")
def api(cluster: LocalCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig), context=cluster.context)


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def storage(api: client.ApiClient) -> client.StorageV1Api:
    return client.StorageV1Api(api)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    core = client.CoreV1Api(api)
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    name = f"t-{stem}-{uuid.uuid4().hex[:5]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
        timeout=30,
        what=f"the default ServiceAccount of {name}",
    )
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as error:
        if error.status != 404:  # a test may have deleted it itself
            raise
