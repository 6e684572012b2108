"""Bad Operations are refused by the API server itself, with messages a person understands."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from bosun.models.names import API_VERSION, CONFIG_HASH_ANNOTATION
from tests.support.cluster import LocalCluster
from tests.support.real_nodes import REAL_NODE_TAINT

pytestmark = pytest.mark.cluster


def op(spec: dict[str, Any], name: str = "op") -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Operation", "metadata": {"name": name}, "spec": spec}


def apply(cluster: LocalCluster, namespace: str, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """kubectl apply; server-side for a big object, as it must be sent (a client-side apply copies
    the object into an annotation, whose 256 KiB limit would answer before Bosun's rules)."""
    server_side = len(json.dumps(manifest)) > 100_000
    return subprocess.run(
        [
            str(cluster.bin_dir / "kubectl"),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "apply",
            *(["--server-side"] if server_side else []),
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
    (
        {"target": DB, "type": "restart", "parameters": {"method": "Dump"}},
        "method: Database backup",  # a dump is a backup's method, never a restart's
    ),
    ({"target": DB, "type": "backup", "parameters": {"method": "Copy"}}, 'Unsupported value: "Copy"'),
    ({"target": {"kind": "Pod", "name": "x"}, "type": "restart"}, 'Unsupported value: "Pod"'),
    ({"target": APP, "type": "explode"}, 'Unsupported value: "explode"'),
    ({"target": {**APP, "namespace": "other"}, "type": "restart"}, 'unknown field "spec.target.namespace"'),
    ({"target": APP, "type": "restart", "timeoutSeconds": 1}, "should be greater than or equal to 10"),
    ({"type": "restart"}, "spec.target: Required value"),
    ({"target": DB, "type": "restart", "notBefore": "tomorrow"}, "spec.notBefore in body must be of type date-time"),
    ({"target": DB, "type": "restart", "maxDowntimeSeconds": -1}, "should be greater than or equal to 0"),
    ({"target": DB, "type": "restart", "override": {"maintenanceWindow": True}}, "spec.override.reason: Required"),
    ({"target": DB, "type": "restart", "override": {"reason": "why"}}, "spec.override waives nothing"),
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
        "apiVersion": API_VERSION,
        "kind": "App",
        "metadata": {"name": name},
        "spec": {"image": "example.com/app:1", **spec},
    }


def database_manifest(name: str = "pg", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Database",
        "metadata": {"name": name},
        "spec": {"engine": "postgresql", "version": "16", **spec},
    }


WEB = {"name": "web"}


def window(**changed: Any) -> dict[str, Any]:
    return {"days": ["Sun"], "start": "02:00", "durationMinutes": 60, **changed}


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
    (app_manifest(podAnnotations={CONFIG_HASH_ANNOTATION: "x"}), "podAnnotations cannot set bosun.dev/*"),
    (app_manifest(env=[{"name": f"V{n}", "value": "x" * 4000} for n in range(256)]), "hold over 65536 characters"),
    (
        app_manifest(
            processes=[{"name": f"p{n}", "env": [{"name": "V", "value": "x" * 4096}] * 1} for n in range(15)]
            + [{"name": "web", "command": ["x" * 4096] * 2}]
        ),
        "hold over 65536 characters",
    ),
    (app_manifest(command=["x" * 5000]), "may not be more than 4096"),
    (app_manifest(beforeRelease=["migrate", "x" * 5000]), "may not be more than 4096"),
    (database_manifest(storage={"size": "lots"}), "size must be a positive Kubernetes quantity"),
    (database_manifest(storage={"size": "0"}), "size must be a positive Kubernetes quantity"),
    (database_manifest("p" * 49), "at most 48 characters"),
    (database_manifest(resources={"requests": {"cpu": "lots"}}), "must be a Kubernetes quantity"),
    (database_manifest(placement={"nodeSelector": {"zone": "a b"}}), "label values must be"),
    # Tolerations the API server would refuse on the pod, refused here before any step runs.
    (database_manifest(placement={"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}),
     "a toleration with operator Exists takes no value"),
    (database_manifest(placement={"tolerations": [{"value": "v"}]}),
     "a toleration without a key must use operator Exists"),
    (app_manifest(placement={"tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]}),
     "tolerationSeconds applies only to effect NoExecute"),
    # Terms: a typo in a time zone or a time is refused, not found days later as a window that never opens.
    (database_manifest(operationPolicy={"maintenanceWindows": [
        {"days": ["Sun"], "start": "02:00", "durationMinutes": 60, "timeZone": "Europe/Pariss"}]}),
     "timeZone must be an IANA time zone name"),
    (database_manifest(operationPolicy={"maintenanceWindows": [window(start="25:00")]}),
     "spec.operationPolicy.maintenanceWindows[0].start"),
    (database_manifest(operationPolicy={"maintenanceWindows": [window(days=["Sunday"])]}),
     'Unsupported value: "Sunday"'),
    (database_manifest(operationPolicy={"maintenanceWindows": [window(durationMinutes=5)]}),
     "should be greater than or equal to 15"),
    (app_manifest(operationPolicy={"maxDowntimeSeconds": -5}), "should be greater than or equal to 0"),
]  # fmt: skip


def test_tolerations_the_api_server_takes_on_a_pod_are_accepted(cluster: LocalCluster, namespace: str) -> None:
    tolerations = [
        {"operator": "Exists"},
        {"key": REAL_NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
        {"key": "k", "value": "v"},
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 30},
    ]
    for manifest in (database_manifest(placement={"tolerations": tolerations}),
                     app_manifest(placement={"tolerations": tolerations})):  # fmt: skip
        result = apply(cluster, namespace, manifest)
        assert result.returncode == 0, result.stderr


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


OVERSIZED_OPERATIONS = [
    (
        {"target": APP, "type": "scale", "parameters": {"processes": [{"name": "w\n" * 10_000, "replicas": 1}]}},
        "may not be more than 40",
    ),
    (
        {
            "target": APP,
            "type": "deploy",
            "parameters": {"env": [{"name": f"V{n}", "value": "x" * 4000} for n in range(20)]},
        },
        "parameters.env holds over 65536 characters",
    ),
    (
        {
            "target": APP,
            "type": "restart",
            "dryRun": True,
            "proposed": {"env": [{"name": "V", "value": "x" * 4000}] * 20},
        },
        "hold over 65536 characters",
    ),
    (
        {"target": APP, "type": "restart", "dryRun": True, "proposed": {"command": ["x" * 5000]}},
        "may not be more than 4096",
    ),
]


@pytest.mark.parametrize(("spec", "message"), OVERSIZED_OPERATIONS, ids=[m for _, m in OVERSIZED_OPERATIONS])
def test_an_oversized_operation_is_refused_at_admission(
    cluster: LocalCluster, namespace: str, spec: dict[str, Any], message: str
) -> None:
    """Admitted, it could not be recorded (its status and Kopf's copy of its spec too large) and
    would hold its target's queue for good."""
    result = apply(cluster, namespace, op(spec))
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def largest_app() -> dict[str, Any]:
    """An App with every field at its bound and its free text at the spec-wide budget."""
    quantities = {f"example.com/r{n}": "9" * 64 for n in range(8)}
    resources = {"requests": quantities, "limits": quantities}
    ports = [{"name": f"port-{n}", "port": 1000 + n, "protocol": "SCTP"} for n in range(16)]
    processes = [
        {"name": f"p{n:02d}-" + "x" * 36, "replicas": 1000, "ports": ports, "resources": resources} for n in range(16)
    ]
    text = [{"name": f"V{n:02d}", "value": "x" * (4096 - 3)} for n in range(16)]  # 16 x 4096 = 65536 characters
    return app_manifest(
        "a",
        image="example.com/" + "x" * 1012,
        processes=processes,
        env=text,
        resources=resources,
        healthCheck={"path": "/" + "x" * 1023, "port": 65535, "periodSeconds": 300, "failureThreshold": 30},
        podLabels={f"example.com/{'k' * 40}{n:02d}": "v" * 63 for n in range(32)},
    )


def test_the_largest_app_admission_lets_through_is_under_128_kib(cluster: LocalCluster, namespace: str) -> None:
    """The promise behind every bound: what is admitted can always be handled and recorded."""
    manifest = largest_app()
    result = apply(cluster, namespace, manifest)
    assert result.returncode == 0, result.stderr[-2000:]
    size = len(json.dumps(manifest["spec"], separators=(",", ":")).encode())
    assert 64 * 1024 < size <= 128 * 1024, size
    one_more = largest_app()
    one_more["spec"]["env"][0]["value"] += "x"
    refused = apply(cluster, namespace, one_more)
    assert refused.returncode != 0 and "hold over 65536 characters" in refused.stderr, refused.stderr[-2000:]
