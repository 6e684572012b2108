"""Hostile input: malformed and hostile manifests, most generated from the CRD schemas.

For every field of App, Database and Operation the schema describes, the generator makes the
mutations that schema forbids: a value of the wrong type, a string past its maxLength or outside
its pattern or enum, an empty required string, a number past its bounds, a list past maxItems, an
unknown field, a missing required field. Hand-written cases add what schemas do not express:
names at and past the length limits, unicode, invalid quantities and label syntax, operation types
for the wrong target kind, targets in another namespace, `cancel` set back to false, edits of a
running operation's spec, forged `bosun.dev/*` annotations and a forged status.

Each is sent as `kubectl apply` sends it (strict field validation). It must be refused at admission
with a readable message, or be accepted and end Failed with a clear reason (or succeed, for the
cases marked valid-at-the-limit); the operator must stay up; bystanders must not change.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bosun.models.names import (
    CONFIG_HASH_ANNOTATION,
    CREATED_BY,
    GROUP,
    INITIATOR_SOURCE,
    INITIATOR_USER,
    REPORT_LABEL,
    VERSION,
)
from tests.faults import invariants as check
from tests.faults.harness import Case, World
from tests.support.cli import kubectl_bosun
from tests.support.cluster import ROOT
from tests.support.operator_process import OperatorProcess

PLURAL = {"App": "apps", "Database": "databases", "Operation": "operations"}
READABLE = ("Invalid value", "Unsupported value", "Required value", "unknown field", "must", "should", "Too long",
            "Too many", "cannot", "does not", "not allowed", "invalid", "is not", "exceeds")  # fmt: skip


def schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / f"{plural}.yaml").read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])


APP: dict[str, Any] = {
    "image": "example.com/shop:1",
    "command": ["serve"],
    "processes": [
        {
            "name": "web",
            "command": ["serve"],
            "replicas": 1,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "b"}],
            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "128Mi"}},
        }
    ],
    "env": [{"name": "MODE", "value": "x"}],
    "healthCheck": {"path": "/healthz", "port": 8080, "periodSeconds": 5, "failureThreshold": 3},
    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "128Mi"}},
    "minReadySeconds": 0,
    "terminationGracePeriodSeconds": 5,
    "podLabels": {"team": "a"},
    "podAnnotations": {"note": "x"},
    "beforeRelease": ["migrate"],
}
DATABASE: dict[str, Any] = {
    "engine": "postgresql",
    "version": "16",
    "storage": {"size": "1Gi", "storageClassName": "bosun-csi", "reclaim": "Delete"},
    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}},
    "placement": {"node": "kwok-zone-a-1", "nodeSelector": {"disk": "ssd"}},
    "minReadySeconds": 0,
}


def operation_base(path: str) -> dict[str, Any]:
    """A valid Operation whose type takes the parameter at `path`."""
    target = {"kind": "App", "name": "shop"}
    if ".parameters.processes" in path:
        resources = {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
        processes = [{"name": "web", "replicas": 1, "resources": resources}]
        return {"target": target, "type": "scale", "parameters": {"processes": processes}}
    if ".parameters.env" in path:
        return {"target": target, "type": "configure", "parameters": {"env": [{"name": "A", "value": "b"}]}}
    if ".parameters.resources" in path:
        resources = {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
        return {"target": {"kind": "Database", "name": "pg"}, "type": "scale", "parameters": {"resources": resources}}
    if ".parameters.node" in path:
        return {"target": {"kind": "Database", "name": "pg"}, "type": "redeploy", "parameters": {"node": "n"}}
    if ".parameters.volumeSize" in path:
        return {"target": {"kind": "Database", "name": "pg"}, "type": "resize", "parameters": {"volumeSize": "5Gi"}}
    return {"target": target, "type": "deploy", "parameters": {"image": "example.com/shop:2"}, "timeoutSeconds": 60,
            "cancel": False}  # fmt: skip


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[0]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{k}}")


def _set(spec: dict[str, Any], path: str, value: Any, *, delete: bool = False) -> bool:
    """Put `value` at `path` (`.a[0].b{k}`) in spec; False if the base has no such place."""
    parts = [p for p in path.replace("[0]", ".[0]").replace("{k}", ".{k}").split(".") if p]
    node: Any = spec
    for part in parts[:-1]:
        if part == "[0]":
            if not isinstance(node, list) or not node:
                return False
            node = node[0]
        elif part == "{k}":
            if not isinstance(node, dict) or not node:
                return False
            node = node[next(iter(node))]
        else:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
    last = parts[-1] if parts else ""
    if last == "[0]":
        if not isinstance(node, list) or not node:
            return False
        node[0] = value
    elif last == "{k}":
        if not isinstance(node, dict) or not node:
            return False
        node[next(iter(node))] = value
    elif delete:
        if not isinstance(node, dict) or last not in node:
            return False
        del node[last]
    else:
        if not isinstance(node, dict):
            return False
        node[last] = value
    return True


def _wrong_type(kind: str | None) -> Any:
    return {"string": 12345, "integer": "twelve", "boolean": "yes", "object": "an-object", "array": "a-list"}.get(
        kind or "", ["x"]
    )


def mutations(field_schema: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """(what, value) pairs that this field's schema forbids."""
    kind = field_schema.get("type")
    yield "wrong-type", _wrong_type(kind)
    if kind == "string":
        if "maxLength" in field_schema:
            yield "too-long", "x" * (int(field_schema["maxLength"]) + 1)
        if field_schema.get("minLength"):
            yield "empty", ""
        if "pattern" in field_schema:
            yield "bad-pattern", "Bad Value!"
        if "enum" in field_schema:
            yield "not-in-enum", "bogus"
    if kind == "integer":
        if "minimum" in field_schema:
            yield "below-minimum", int(field_schema["minimum"]) - 1
        if "maximum" in field_schema:
            yield "above-maximum", int(field_schema["maximum"]) + 1
    if kind == "array" and "maxItems" in field_schema:
        yield "too-many", "MAXITEMS"
    if kind == "object" and field_schema.get("properties"):
        yield "unknown-field", "UNKNOWN"
    if field_schema.get("required"):
        yield "missing-required", "MISSING"


def generated() -> list[tuple[str, str, dict[str, Any]]]:
    """(case id, kind, manifest) for every schema mutation that applies to the base manifests."""
    found = []
    for kind, plural, base in (
        ("App", "apps", APP),
        ("Database", "databases", DATABASE),
        ("Operation", "operations", None),
    ):
        for path, node in _walk(schema(plural), ""):
            for what, value in mutations(node, path):
                spec = copy.deepcopy(base if base is not None else operation_base(path))
                if value == "MAXITEMS":
                    current = _get(spec, path)
                    if not isinstance(current, list) or not current:
                        continue
                    value = [copy.deepcopy(current[0]) for _ in range(int(node["maxItems"]) + 1)]
                    if isinstance(current[0], dict) and "name" in current[0]:
                        for i, item in enumerate(value):
                            item["name"] = f"n{i}"
                if value == "UNKNOWN":
                    current = _get(spec, path) if path else spec
                    if not isinstance(current, dict):
                        continue
                    value = {**current, "surprise": True}
                if value == "MISSING":
                    current = _get(spec, path) if path else spec
                    if not isinstance(current, dict):
                        continue
                    value = {k: v for k, v in current.items() if k != node["required"][0]}
                if path == "":
                    spec = value if isinstance(value, dict) else spec
                    if not isinstance(value, dict):
                        continue
                elif not _set(spec, path, value):
                    continue
                found.append((f"hostile/{kind.lower()}{path or '.spec'}:{what}", kind, _manifest(kind, spec)))
    return found


def _get(spec: Any, path: str) -> Any:
    node = spec
    for part in [p for p in path.replace("[0]", ".[0]").replace("{k}", ".{k}").split(".") if p]:
        if part == "[0]":
            node = node[0] if isinstance(node, list) and node else None
        elif part == "{k}":
            node = node[next(iter(node))] if isinstance(node, dict) and node else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def _manifest(kind: str, spec: dict[str, Any], name: str = "hostile", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, **meta}, "spec": spec}


def handwritten() -> list[tuple[str, str, dict[str, Any], str]]:
    """(id, kind, manifest, expectation): refused, or ends (Failed/any), or valid (may succeed)."""
    op = operation_base("")
    return [
        ("hostile/name:254-chars", "App", _manifest("App", dict(APP), "a" * 254), "refused"),
        ("hostile/name:253-chars-with-process", "App", _manifest("App", dict(APP), "a" * 253), "refused"),
        ("hostile/name:unicode", "App", _manifest("App", dict(APP), "shöp"), "refused"),
        ("hostile/name:uppercase", "Database", _manifest("Database", dict(DATABASE), "PG"), "refused"),
        (
            "hostile/name:at-the-limit",
            "App",
            _manifest("App", {"image": "x", "processes": [{"name": "w"}]}, "a" * 60),
            "valid",
        ),
        (
            "hostile/env:unicode-value",
            "App",
            _manifest("App", {"image": "x", "env": [{"name": "G", "value": "grüße ✓"}]}),
            "valid",
        ),
        (
            "hostile/quantity:words",
            "Database",
            _manifest("Database", {**DATABASE, "storage": {"size": "lots"}}),
            "refused",
        ),
        (
            "hostile/quantity:negative",
            "App",
            _manifest("App", {"image": "x", "resources": {"requests": {"cpu": "-1"}}}),
            "refused",
        ),
        (
            "hostile/quantity:units",
            "Database",
            _manifest("Database", {**DATABASE, "resources": {"requests": {"memory": "1 GB"}}}),
            "refused",
        ),
        (
            "hostile/quantity:zero-volume",
            "Database",
            _manifest("Database", {**DATABASE, "storage": {"size": "0"}}),
            "refused",
        ),
        (
            "hostile/annotation:reserved",
            "App",
            _manifest("App", {"image": "x", "podAnnotations": {CONFIG_HASH_ANNOTATION: "forged"}}),
            "refused",
        ),
        ("hostile/label:bad-key", "App", _manifest("App", {"image": "x", "podLabels": {"bad key!": "v"}}), "refused"),
        ("hostile/label:bad-value", "App", _manifest("App", {"image": "x", "podLabels": {"k": "-bad-"}}), "refused"),
        (
            "hostile/label:reserved",
            "App",
            _manifest("App", {"image": "x", "podLabels": {"app.kubernetes.io/instance": "other"}}),
            "refused",
        ),
        ("hostile/op:unknown-type", "Operation", _manifest("Operation", {**op, "type": "explode"}), "refused"),
        (
            "hostile/op:provision-an-app",
            "Operation",
            _manifest("Operation", {**op, "type": "provision", "parameters": None}),
            "refused",
        ),
        (
            "hostile/op:deploy-a-database",
            "Operation",
            _manifest("Operation", {**op, "target": {"kind": "Database", "name": "pg"}}),
            "refused",
        ),
        (
            "hostile/op:target-kind-pod",
            "Operation",
            _manifest("Operation", {**op, "target": {"kind": "Pod", "name": "x"}}),
            "refused",
        ),
        (
            "hostile/op:target-in-another-namespace",
            "Operation",
            _manifest("Operation", {**op, "target": {"kind": "App", "name": "default/shop"}}),
            "ends",
        ),
        (
            "hostile/op:target-missing",
            "Operation",
            _manifest("Operation", {**op, "target": {"kind": "App", "name": "ghost"}}),
            "ends",
        ),
        (
            "hostile/op:parameter-for-another-type",
            "Operation",
            _manifest("Operation", {**op, "type": "restart"}),
            "refused",
        ),
        (
            "hostile/op:forged-created-by",
            "Operation",
            _manifest("Operation", op, annotations={CREATED_BY: "system:serviceaccount:kube-system:root"}),
            "forged",
        ),
        (
            "hostile/op:forged-initiator",
            "Operation",
            _manifest("Operation", op, annotations={INITIATOR_USER: "alice", INITIATOR_SOURCE: "AppSpec"}),
            "forged",
        ),
        (
            "hostile/op:forged-status",
            "Operation",
            {**_manifest("Operation", op), "status": {"phase": "Succeeded"}},
            "ends",
        ),
        ("hostile/op:cancel-back-to-false", "Operation", _manifest("Operation", {**op, "cancel": True}), "uncancel"),
        ("hostile/op:edit-running-spec", "Operation", _manifest("Operation", op), "edit"),
        ("hostile/op:timeout-too-short", "Operation", _manifest("Operation", {**op, "timeoutSeconds": 1}), "refused"),
        (  # 1 MB: each value within its bound, the whole far past the spec's text budget
            "hostile/app:huge-env",
            "App",
            _manifest("App", {"image": "x", "env": [{"name": f"E{i}", "value": "v" * 4096} for i in range(256)]}),
            "refused",
        ),
        (
            "hostile/app:huge-commands-across-processes",
            "App",
            _manifest(
                "App",
                {"image": "x", "processes": [{"name": f"p{i}", "command": ["x" * 4096] * 2} for i in range(16)]},
            ),
            "refused",
        ),
        (  # a 10,000-line process name once wedged its App's queue: its status could not be written
            "hostile/op:scale-process-name-10000-lines",
            "Operation",
            _manifest(
                "Operation",
                {
                    "target": {"kind": "App", "name": "shop"},
                    "type": "scale",
                    "parameters": {"processes": [{"name": "web\n" * 10_000, "replicas": 1}]},
                },
            ),
            "refused",
        ),
        (
            "hostile/op:deploy-env-1MB",
            "Operation",
            _manifest(
                "Operation",
                {
                    "target": {"kind": "App", "name": "shop"},
                    "type": "deploy",
                    "parameters": {"env": [{"name": f"E{i}", "value": "v" * 4000} for i in range(256)]},
                },
            ),
            "refused",
        ),
        (
            "hostile/op:dry-run-proposed-1MB",
            "Operation",
            _manifest(
                "Operation",
                {
                    "target": {"kind": "App", "name": "shop"},
                    "type": "deploy",
                    "dryRun": True,
                    "parameters": {"image": "x"},
                    "proposed": {"image": "x", "env": [{"name": f"E{i}", "value": "v" * 4000} for i in range(256)]},
                },
            ),
            "refused",
        ),
        (
            "hostile/app:duplicate-processes",
            "App",
            _manifest("App", {"image": "x", "processes": [{"name": "web"}, {"name": "web"}]}),
            "refused",
        ),
        ("hostile/db:engine-change", "Database", _manifest("Database", dict(DATABASE)), "engine-change"),
    ]


def _refusal(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or "")
    except ValueError:
        return str(error.body or "")


def create(world: World, namespace: str, manifest: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Create as kubectl does (strict field validation): the object, or the refusal's message."""
    custom = client.CustomObjectsApi(world.api)
    plural = PLURAL[manifest["kind"]]
    try:
        made = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, manifest, field_validation="Strict"
        )
        return dict(made), ""
    except ApiException as error:
        if error.status is not None and error.status >= 500:
            return None, f"SERVER ERROR {error.status}: {_refusal(error)}"
        return None, _refusal(error) or f"HTTP {error.status} without a message"


def readable(message: str) -> list[str]:
    if message.startswith("SERVER ERROR") or "Traceback" in message:
        return [f"refused with a server error instead of a message: {message[:300]}"]
    if len(message) > 6000 or not any(marker in message for marker in READABLE):
        return [f"refusal not readable: {message[:300]}"]
    return []


def operator_up(world: World) -> list[str]:
    operator = world.state["hostile-operator"]
    assert isinstance(operator, OperatorProcess)
    if operator.process is None or operator.process.poll() is not None:
        return ["the operator crashed"]
    if operator.healthz() != 200:
        return [f"the operator is unhealthy: /healthz answers {operator.healthz()}"]
    return []


def judge(world: World, namespace: str, manifest: dict[str, Any], expect: str) -> list[str]:
    violations: list[str] = []
    custom = client.CustomObjectsApi(world.api)
    made, refusal = create(world, namespace, manifest)
    if made is None:
        violations += readable(refusal)
        if expect in ("valid", "ends"):
            violations.append(f"refused, but it is valid input: {refusal[:200]}")
        return violations + operator_up(world)
    name, plural = manifest["metadata"]["name"], PLURAL[manifest["kind"]]
    if expect == "refused":
        violations.append("accepted, but it should be refused at admission")
    if expect == "forged":
        annotations = made["metadata"].get("annotations") or {}
        user = world.state["admin-user"]
        if annotations.get(CREATED_BY) != user:
            violations.append(f"{CREATED_BY} is {annotations.get(CREATED_BY)!r}, the creator is {user!r}")
    if expect == "uncancel":
        violations += _refused_update(custom, namespace, plural, name, {"spec": {"cancel": False}})
    if expect == "edit":
        violations += _refused_update(
            custom, namespace, plural, name, {"spec": {"type": "restart", "parameters": None}}
        )
    if expect == "engine-change":
        violations += _refused_update(custom, namespace, plural, name, {"spec": {"engine": "mysql"}})
    ops, late = check.settle(world.api, namespace, 120)
    violations += late
    for op in ops:
        status = op.get("status") or {}
        if (
            expect != "valid"
            and expect != "any"
            and status.get("phase") == "Succeeded"
            and manifest["kind"] == "Operation"
        ):
            violations.append(f"{op['metadata']['name']} succeeded on hostile input ({expect})")
    violations += check.outcomes(ops) + operator_up(world)
    if manifest["kind"] == "Operation":
        violations += queue_moves(world, namespace, manifest["spec"]["target"])
    return violations + activity_readable(world, namespace)


def queue_moves(world: World, namespace: str, target: dict[str, str]) -> list[str]:
    """No queue waits behind an operation that could not be recorded: one more on its target ends."""
    custom = client.CustomObjectsApi(world.api)
    after = _manifest("Operation", {"target": target, "type": "restart"}, name="after-hostile")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "operations", after)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "operations", "after-hostile")
        if (status.get("status") or {}).get("phase") in check.FINISHED:
            return []
        time.sleep(0.5)
    phase = (status.get("status") or {}).get("phase")
    return [f"an ordinary operation on {target['name']} after the hostile one is still {phase} after 90s"]


def activity_readable(world: World, namespace: str) -> list[str]:
    """The namespace's activity stays readable after every case, whatever the case left in it."""
    read = kubectl_bosun(world.cluster, "activity", "-n", namespace, "-o", "table", timeout=60)
    if "Traceback" in read.stderr or read.returncode not in (0, 1):
        return [f"kubectl bosun activity failed after the case (exit {read.returncode}): {read.stderr[-300:]}"]
    if read.returncode == 1 and "no activity report" not in read.stderr:
        return [f"kubectl bosun activity failed after the case: {read.stderr[-300:]}"]
    return []


def forged_report(world: World, rng: random.Random, namespace: str) -> list[str]:
    """An editor's forged report for the week: refused; as it would be read, flagged."""
    week = datetime.now(UTC).strftime("%G-w%V")
    user = f"editor-{rng.randrange(10**6)}"
    kubectl = world.cluster.kubectl
    kubectl("create", "rolebinding", f"{user}-edit", "-n", namespace, "--clusterrole=edit", f"--user={user}")
    forged = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"bosun-activity-{week}", "labels": {REPORT_LABEL: "true"}},
        "data": {"activity.csv": "operation,initiator\nall-fine,someone-else\n"},
    }
    for _ in range(40):  # the binding takes a moment to count
        allowed = kubectl("auth", "can-i", "create", "configmaps", "-n", namespace, f"--as={user}", check=False)
        if allowed.strip() == "yes":
            break
        time.sleep(0.25)
    made = subprocess.run(
        [str(world.cluster.bin_dir / "kubectl"), "--kubeconfig", str(world.cluster.kubeconfig),
         "apply", "-n", namespace, f"--as={user}", "-f", "-"],
        input=json.dumps(forged), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if made.returncode == 0:
        return ["an editor wrote the week's activity report"]
    if "only Bosun writes" not in made.stderr:
        return [f"the forged report was refused, but not as Bosun's record: {made.stderr[-300:]}"]
    return activity_readable(world, namespace) + operator_up(world)


def yaml_bomb_to_plan(world: World, rng: random.Random, namespace: str) -> list[str]:
    """`kubectl bosun plan -f` refuses a YAML alias bomb at once, as kubectl does."""
    lines = ["a: &a [" + ", ".join(["lol"] * 9) + "]"]
    for n in range(1, 9):
        lines.append(f"{chr(97 + n)}: &{chr(97 + n)} [" + ", ".join([f"*{chr(96 + n)}"] * 9) + "]")
    started = time.monotonic()
    read = kubectl_bosun(world.cluster, "plan", "-f", "-", "-n", namespace, stdin="\n".join(lines) + "\n", timeout=60)
    took = time.monotonic() - started
    violations = []
    if read.returncode == 0 or "Traceback" in read.stderr or "refused" not in read.stderr:
        violations.append(f"plan -f took a YAML bomb (exit {read.returncode}): {read.stderr[-300:]}")
    if took > 20:
        violations.append(f"plan -f took {took:.0f}s to refuse a YAML bomb")
    return violations + operator_up(world)


def _refused_update(custom: Any, namespace: str, plural: str, name: str, patch: dict[str, Any]) -> list[str]:
    try:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, patch)
    except ApiException as error:
        return readable(_refusal(error))
    return [f"the update {patch} was accepted"]


def snapshot(api: client.ApiClient, namespace: str) -> dict[str, str]:
    """Every object in the bystanders' namespace (its identity, labels, desired state and, for
    Bosun's kinds, status), and every node's spec and labels: what hostile input elsewhere must
    not change. Pods are there by name, so a pod replaced counts as changed too."""
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    found: dict[str, str] = {}
    for kind, items in (
        ("Deployment", apps.list_namespaced_deployment(namespace).items),
        ("Service", core.list_namespaced_service(namespace).items),
        ("Secret", core.list_namespaced_secret(namespace).items),
        ("ConfigMap", core.list_namespaced_config_map(namespace).items),
        ("PersistentVolumeClaim", core.list_namespaced_persistent_volume_claim(namespace).items),
        ("Pod", core.list_namespaced_pod(namespace).items),
        ("Node", core.list_node().items),
    ):
        for item in items:
            body = api.sanitize_for_serialization(item)
            kept = {"labels": item.metadata.labels or {}, "state": body.get("spec") or body.get("data")}
            found[f"{kind}/{item.metadata.name}"] = json.dumps(kept, sort_keys=True)
    for plural in ("apps", "databases"):
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
            kept = {"spec": item["spec"], "status": item.get("status") or {}}
            found[f"{plural}/{item['metadata']['name']}"] = json.dumps(kept, sort_keys=True)
    return found


def cases() -> list[Case]:
    found = [Case("hostile", cid, _run(manifest, "refused")) for cid, _, manifest in generated()]
    found += [Case("hostile", cid, _run(manifest, expect)) for cid, _, manifest, expect in handwritten()]
    found += [Case("hostile", "hostile/report:forged-by-an-editor", forged_report)]
    found += [Case("hostile", "hostile/plan:yaml-bomb", yaml_bomb_to_plan)]
    return found


def _run(manifest: dict[str, Any], expect: str) -> Callable[[World, random.Random, str], list[str]]:
    return lambda world, rng, namespace: judge(world, namespace, copy.deepcopy(manifest), expect)


def write_corpus(directory: Path) -> int:
    """Write every hostile manifest to `directory` (for people to try with kubectl)."""
    directory.mkdir(parents=True, exist_ok=True)
    items = [(cid, m) for cid, _, m in generated()] + [(cid, m) for cid, _, m, _ in handwritten()]
    for cid, manifest in items:
        (directory / (cid.replace("/", "_").replace(":", "-").strip("_")[:200] + ".yaml")).write_text(
            yaml.safe_dump(manifest)
        )
    return len(items)
