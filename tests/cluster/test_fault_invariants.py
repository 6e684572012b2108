"""The fault harness's invariants that read the cluster, shown to fail on violations injected on
purpose into a namespace no operator watches (the pure ones: tests/unit/test_fault_invariants.py).
A harness that reports 0 violations is worth something only if these can say otherwise."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from bosun.models.names import DATABASE_LABEL, GROUP, PLURALS, PREPULL_LABEL, VERSION
from tests.faults import invariants as check
from tests.support.databases import HOME, database_manifest


def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": HOME, "containers": [{"name": "c", "image": "example.com/c:1"}]},
    }


def test_leftovers_a_wrong_workload_and_a_doubled_database_are_each_reported(
    api: client.ApiClient, core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    assert check.no_orphans(api, namespace) == []
    core.create_namespaced_pod(namespace, pod("left-behind", {PREPULL_LABEL: "pg"}))
    assert "pre-pull placeholders left: ['left-behind']" in check.no_orphans(api, namespace)[0]

    labels = {"app.kubernetes.io/instance": "web"}
    container = {"name": "web", "image": "example.com/web:1"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-web", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    apps.create_namespaced_deployment(namespace, deployment)
    assert check.app_workloads(api, namespace, "web", {"web": 2}) == []
    assert "2 replicas, the App asks 1" in check.app_workloads(api, namespace, "web", {"web": 1})[0]
    assert "expected one per process" in check.app_workloads(api, namespace, "web", {"web": 2, "worker": 1})[0]

    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS["Database"], database_manifest())
    core.create_namespaced_pod(namespace, pod("pg-a", {DATABASE_LABEL: "pg"}))
    core.create_namespaced_pod(namespace, pod("pg-b", {DATABASE_LABEL: "pg"}))
    said = " | ".join(check.database_single(api, namespace, "pg", exists=True))
    assert "2 pods" in said and "0 claims" in said and "0 credentials Secrets" in said, said
    assert "deprovisioned but pods remain" in check.database_single(api, namespace, "pg", exists=False)[0]


def test_an_operation_never_archived_is_reported(api: client.ApiClient, namespace: str) -> None:
    operation = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Operation",
        "metadata": {"name": "never-archived"},
        "spec": {"target": {"kind": "App", "name": "web"}, "type": "restart"},
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS["Operation"], operation
    )
    assert check.archived(api, namespace, 1) == ["not archived within 1s: never-archived"]
