"""Bad Operations are refused by the API server itself, with messages a person understands."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.support.cluster import LocalCluster

pytestmark = pytest.mark.cluster


def op(spec: dict[str, Any], name: str = "op") -> dict[str, Any]:
    return {"apiVersion": "bosun.dev/v1alpha1", "kind": "Operation", "metadata": {"name": name}, "spec": spec}


def apply(cluster: LocalCluster, namespace: str, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(cluster.bin_dir / "kubectl"),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
        ],
        input=json.dumps(manifest),
        capture_output=True,
        text=True,
        check=False,
    )


APP = {"kind": "App", "name": "web"}
DB = {"kind": "Database", "name": "pg"}

REFUSED = [
    ({"target": APP, "type": "resize", "parameters": {"volumeSize": "2Gi"}}, "does not apply to this target kind"),
    ({"target": DB, "type": "deploy", "parameters": {"image": "x"}}, "does not apply to this target kind"),
    ({"target": APP, "type": "deploy"}, "a deploy needs parameters.image and/or parameters.env"),
    ({"target": APP, "type": "configure", "parameters": {"image": "x"}}, "a configure needs parameters.env"),
    ({"target": DB, "type": "resize"}, "a resize needs parameters.volumeSize"),
    ({"target": APP, "type": "scale", "parameters": {"resources": {}}}, "a scale needs parameters.processes"),
    (
        {"target": APP, "type": "restart", "parameters": {"image": "x"}},
        "a parameter was given that this type does not take",
    ),
    ({"target": {"kind": "Pod", "name": "x"}, "type": "restart"}, 'Unsupported value: "Pod"'),
    ({"target": APP, "type": "explode"}, 'Unsupported value: "explode"'),
    ({"target": {**APP, "namespace": "other"}, "type": "restart"}, 'unknown field "spec.target.namespace"'),
    ({"target": APP, "type": "restart", "timeoutSeconds": 1}, "should be greater than or equal to 10"),
    ({"type": "restart"}, "spec.target: Required value"),
]


@pytest.mark.parametrize(("spec", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_bad_operation_is_refused(cluster: LocalCluster, namespace: str, spec: dict[str, Any], message: str) -> None:
    result = apply(cluster, namespace, op(spec))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_good_operations_are_accepted(cluster: LocalCluster, namespace: str) -> None:
    good = [
        {"target": APP, "type": "deploy", "parameters": {"image": "example.com/a:2"}},
        {"target": APP, "type": "configure", "parameters": {"env": [{"name": "A", "value": "1"}]}},
        {"target": APP, "type": "scale", "parameters": {"processes": [{"name": "web", "replicas": 3}]}},
        {"target": DB, "type": "redeploy", "parameters": {"node": "kwok-zone-a-2"}},
        {"target": DB, "type": "resize", "parameters": {"volumeSize": "5Gi"}},
        {"target": DB, "type": "restart"},
    ]
    for index, spec in enumerate(good):
        result = apply(cluster, namespace, op(spec, f"ok-{index}"))
        assert result.returncode == 0, result.stderr


def test_spec_is_immutable_but_cancel(cluster: LocalCluster, namespace: str) -> None:
    first = op({"target": APP, "type": "deploy", "parameters": {"image": "example.com/a:1"}})
    assert apply(cluster, namespace, first).returncode == 0
    changed = op({"target": APP, "type": "deploy", "parameters": {"image": "example.com/a:2"}})
    refused = apply(cluster, namespace, changed)
    assert refused.returncode != 0
    assert "cannot be changed once created, except to set spec.cancel: true" in refused.stderr
    retargeted = op({"target": {**APP, "name": "other"}, "type": "deploy", "parameters": {"image": "example.com/a:1"}})
    assert "cannot be changed once created" in apply(cluster, namespace, retargeted).stderr

    cancelled = op({"target": APP, "type": "deploy", "parameters": {"image": "example.com/a:1"}, "cancel": True})
    assert apply(cluster, namespace, cancelled).returncode == 0
    uncancelled = op({"target": APP, "type": "deploy", "parameters": {"image": "example.com/a:1"}, "cancel": False})
    refused = apply(cluster, namespace, uncancelled)
    assert refused.returncode != 0
    assert "spec.cancel cannot go back to false" in refused.stderr


def app_manifest(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bosun.dev/v1alpha1",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {"image": "example.com/app:1", **spec},
    }


def database_manifest(name: str = "pg", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bosun.dev/v1alpha1",
        "kind": "Database",
        "metadata": {"name": name},
        "spec": {"engine": "postgresql", "version": "16", **spec},
    }


WEB = {"name": "web"}
BAD_TARGETS = [
    (app_manifest("a" * 60), "together must fit in 62 characters"),
    (app_manifest("1st-app"), "must start with a letter"),
    (app_manifest(processes=[WEB, WEB]), "Duplicate value"),
    (app_manifest(resources={"requests": {"cpu": "lots"}}), "must be a Kubernetes quantity of zero or more"),
    (app_manifest(resources={"requests": {"cpu": "-1"}}), "must be a Kubernetes quantity of zero or more"),
    (app_manifest(processes=[{"name": "web", "resources": {"limits": {"memory": "1 GB"}}}]), "Kubernetes quantity"),
    (app_manifest(env=[{"name": "BIG", "value": "x" * 300_000}]), "may not be more than 4096"),
    (app_manifest(podLabels={"team": "-bad-"}), "label values must be"),
    (app_manifest(podLabels={"bad key!": "x"}), "label keys must be"),
    (app_manifest(podAnnotations={"a": "x" * 5000}), "may not be more than 4096"),
    (app_manifest(podLabels={"app.kubernetes.io/instance": "other"}), "podLabels cannot set app.kubernetes.io/*"),
    (app_manifest(podAnnotations={"bosun.dev/config-hash": "x"}), "podAnnotations cannot set bosun.dev/*"),
    (database_manifest(storage={"size": "lots"}), "size must be a positive Kubernetes quantity"),
    (database_manifest(storage={"size": "0"}), "size must be a positive Kubernetes quantity"),
    (database_manifest("p" * 49), "at most 48 characters"),
    (database_manifest(resources={"requests": {"cpu": "lots"}}), "must be a Kubernetes quantity"),
    (database_manifest(placement={"nodeSelector": {"zone": "a b"}}), "label values must be"),
]


@pytest.mark.parametrize(("manifest", "message"), BAD_TARGETS, ids=[m for _, m in BAD_TARGETS])
def test_bad_apps_and_databases_are_refused_at_admission(
    cluster: LocalCluster, namespace: str, manifest: dict[str, Any], message: str
) -> None:
    result = apply(cluster, namespace, manifest)
    assert result.returncode != 0, f"accepted: {manifest['metadata']['name']}"
    assert message in result.stderr, result.stderr


def test_a_good_app_with_every_bounded_field_is_accepted(cluster: LocalCluster, namespace: str) -> None:
    manifest = app_manifest(
        "a" * 58,
        processes=[{"name": "web", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}],
        env=[{"name": "A", "value": "x" * 4096}],
        podLabels={"example.com/team": "shop_1.a"},
        podAnnotations={"example.com/note": "anything goes here"},
    )
    result = apply(cluster, namespace, manifest)
    assert result.returncode == 0, result.stderr


def test_a_database_keeps_its_engine_and_storage_class(cluster: LocalCluster, namespace: str) -> None:
    assert apply(cluster, namespace, database_manifest(storage={"storageClassName": "fast"})).returncode == 0
    engine = apply(cluster, namespace, database_manifest(engine="mysql", storage={"storageClassName": "fast"}))
    assert "spec.engine cannot change" in engine.stderr
    moved = apply(cluster, namespace, database_manifest(storage={"storageClassName": "slow"}))
    assert "storageClassName cannot change" in moved.stderr


def test_a_bad_volume_size_in_an_operation_is_refused(cluster: LocalCluster, namespace: str) -> None:
    result = apply(cluster, namespace, op({"target": DB, "type": "resize", "parameters": {"volumeSize": "lots"}}))
    assert result.returncode != 0 and "parameters.volumeSize must be a positive Kubernetes quantity" in result.stderr
