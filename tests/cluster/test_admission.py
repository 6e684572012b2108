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
