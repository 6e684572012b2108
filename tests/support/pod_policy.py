"""Make chosen pods misbehave, the way a real cluster lets you: a MutatingAdmissionPolicy that adds
KWOK's stage labels or annotations (fail, slow readiness) to the pods matching a CEL condition in
one namespace. Bosun's code has no test hooks; the API server changes the pods it creates."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from tests.support.cluster import LocalCluster
from tests.support.waiting import wait_for

FAIL_LABEL = {"pod-container-running-failed.stage.kwok.x-k8s.io": "true"}


def slow_ready(seconds: int) -> dict[str, str]:
    return {"pod-ready.stage.kwok.x-k8s.io/delay": f"{seconds}s"}


@contextmanager
def pod_policy(
    cluster: LocalCluster,
    api: client.ApiClient,
    namespace: str,
    condition: str,
    probe: dict[str, Any],
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    gate: str = "",
) -> Iterator[None]:
    """While open, pods created in `namespace` matching `condition` get these labels/annotations.

    `probe` is a pod body that matches the condition: a dry-run create of it shows when the policy
    has reached the API server's admission chain.
    """
    name = f"test-pods-{uuid.uuid4().hex[:6]}"
    meta = {k: v for k, v in (("labels", labels), ("annotations", annotations)) if v}
    fields = ", ".join(f"{k}: {json.dumps(v)}" for k, v in meta.items())
    # A scheduling gate holds the pod unscheduled until a test lifts it.
    held = f", spec: Object.spec{{schedulingGates: [Object.spec.schedulingGates{{name: {json.dumps(gate)}}}]}}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                ]
            },
            "matchConditions": [{"name": "chosen", "expression": condition}],
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "mutations": [
                {
                    "patchType": "ApplyConfiguration",
                    "applyConfiguration": {
                        "expression": f"Object{{metadata: Object.metadata{{{fields}}}{held if gate else ''}}}"
                    },
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    manifests = {"apiVersion": "v1", "kind": "List", "items": [policy, binding]}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifests))
    core = client.CoreV1Api(api)
    expected = {**(labels or {}), **(annotations or {})}

    def active() -> bool:
        made = core.create_namespaced_pod(namespace, probe, dry_run="All")
        got = {**(made.metadata.labels or {}), **(made.metadata.annotations or {})}
        gates = {g.name for g in made.spec.scheduling_gates or []}
        return all(got.get(k) == v for k, v in expected.items()) and (not gate or gate in gates)

    try:
        wait_for(active, timeout=60, what=f"admission policy {name} to take effect")
        yield
    finally:
        cluster.kubectl("delete", "mutatingadmissionpolicybinding,mutatingadmissionpolicy", name, "--wait=false")
