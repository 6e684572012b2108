"""The invariants checked after every case: each returns the violations it found, in words."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from bosun.models.names import (
    DATABASE_LABEL,
    EDIT_PART,
    FINISHED_PHASES,
    GROUP,
    PREPULL_LABEL,
    TARGET_GENERATION,
    VERSION,
)

FINISHED = FINISHED_PHASES
UNDONE_OK = {"Succeeded", "NotNeeded", "NotApplicable"}


def operations(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    custom = client.CustomObjectsApi(api)
    return list(custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "operations")["items"])


def settle(api: client.ApiClient, namespace: str, timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Wait until every operation has ended; the ones that did not are violations."""
    deadline = time.monotonic() + timeout
    while True:
        ops = operations(api, namespace)
        open_ = [o for o in ops if (o.get("status") or {}).get("phase") not in FINISHED]
        if not open_:
            return ops, []
        if time.monotonic() > deadline:
            return ops, [
                f"{o['metadata']['name']} did not end within {timeout:.0f}s: "
                f"{(o.get('status') or {}).get('phase')} {(o.get('status') or {}).get('progress')}"
                for o in open_
            ]
        time.sleep(0.5)


def outcomes(ops: list[dict[str, Any]]) -> list[str]:
    """Succeeded, or ended with a reason and a rollback that restored things (or names what stays)."""
    found = []
    for op in ops:
        name, status = op["metadata"]["name"], op.get("status") or {}
        phase, rollback = status.get("phase"), status.get("rollback") or {}
        if phase == "Succeeded":
            continue
        if not status.get("reason") or not status.get("message"):
            found.append(f"{name} ended {phase} without a reason and message")
        state = rollback.get("state")
        if state is None:
            found.append(f"{name} ended {phase} with no rollback recorded: nobody can tell what was undone")
        elif state == "Failed" and not rollback.get("notUndone"):
            found.append(f"{name}: rollback Failed without naming what was not undone")
        elif state not in UNDONE_OK and state != "Failed":
            found.append(f"{name}: rollback ended {state}")
    return found


def one_at_a_time(ops: list[dict[str, Any]]) -> list[str]:
    """Never two operations acting on one target at once (from their recorded start and end)."""
    found = []
    by_target: dict[str, list[tuple[str, str, str]]] = {}
    for op in ops:
        status = op.get("status") or {}
        if status.get("startedAt") and status.get("finishedAt"):
            target = f"{op['spec']['target']['kind']}/{op['spec']['target']['name']}"
            by_target.setdefault(target, []).append((status["startedAt"], status["finishedAt"], op["metadata"]["name"]))
    for target, spans in by_target.items():
        spans.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(spans):
            if start < end:
                found.append(f"{first} and {second} acted on {target} at once ({start} < {end})")
    return found


def stored_lines(url: str, s3: Any = None) -> list[str] | None:
    """The lines a log store holds at `url` (file:// or, given a client, s3://); None if unreadable here."""
    if url.startswith("file://"):
        path = Path(url.removeprefix("file://"))
        return path.read_text().splitlines() if path.exists() else []
    if url.startswith("s3://") and s3 is not None:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        try:
            return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()).splitlines()
        except s3.exceptions.NoSuchKey:
            return []
    return None


def no_duplicate_operations(ops: list[dict[str, Any]]) -> list[str]:
    """A spec edit makes its Operation(s) once: never two for one generation and part of a target."""
    seen: dict[tuple[str, str, str, str], str] = {}
    found = []
    for op in ops:
        annotations = op["metadata"].get("annotations") or {}
        if TARGET_GENERATION not in annotations:
            continue
        target = op["spec"]["target"]
        key = (target["kind"], target["name"], annotations[TARGET_GENERATION], annotations.get(EDIT_PART, ""))
        if key in seen:
            found.append(f"{seen[key]} and {op['metadata']['name']} both carry out {key}")
        seen[key] = op["metadata"]["name"]
    return found


def logs_whole(ops: list[dict[str, Any]], s3: Any = None) -> list[str]:
    """The stored log holds every line status showed, and as many lines as status counted."""
    found = []
    for op in ops:
        log = (op.get("status") or {}).get("log") or {}
        stored = stored_lines(log.get("url", ""), s3)
        if stored is None:
            continue
        missing = [line for line in log.get("lines") or [] if line not in stored]
        if missing:
            found.append(
                f"{op['metadata']['name']}: {len(missing)} status log line(s) not in the store, e.g. {missing[0]!r}"
            )
        if len(stored) < int(log.get("total") or 0):
            found.append(
                f"{op['metadata']['name']}: the store has {len(stored)} lines, status counted {log.get('total')}"
            )
    return found


def archived(api: client.ApiClient, namespace: str, timeout: float) -> list[str]:
    """Every ended operation reaches the activity record."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [
            o["metadata"]["name"]
            for o in operations(api, namespace)
            if not str((o.get("status") or {}).get("archived") or "").startswith(("file://", "s3://"))
        ]
        if not missing:
            return []
        if time.monotonic() > deadline:
            return [f"not archived within {timeout:.0f}s: {', '.join(missing)}"]
        time.sleep(0.5)


def no_orphans(api: client.ApiClient, namespace: str) -> list[str]:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    found = []
    placeholders = core.list_namespaced_pod(namespace, label_selector=PREPULL_LABEL).items
    if placeholders:
        found.append(f"pre-pull placeholders left: {[p.metadata.name for p in placeholders]}")
    active = [j.metadata.name for j in batch.list_namespaced_job(namespace).items if (j.status.active or 0) > 0]
    if active:
        found.append(f"Jobs still running: {active}")
    return found


def app_workloads(api: client.ApiClient, namespace: str, app: str, processes: dict[str, int]) -> list[str]:
    """One Deployment per process, at the replicas the App asks for; none twice."""
    apps = client.AppsV1Api(api)
    found = []
    deployments = apps.list_namespaced_deployment(namespace, label_selector=f"app.kubernetes.io/instance={app}").items
    names = sorted(d.metadata.name for d in deployments)
    if names != sorted(f"{app}-{p}" for p in processes):
        found.append(f"App {app}: Deployments {names}, expected one per process {sorted(processes)}")
    for deployment in deployments:
        process = deployment.metadata.name.removeprefix(f"{app}-")
        if process in processes and deployment.spec.replicas != processes[process]:
            found.append(
                f"{deployment.metadata.name}: {deployment.spec.replicas} replicas, the App asks {processes[process]}"
            )
    return found


def database_single(api: client.ApiClient, namespace: str, name: str, *, exists: bool) -> list[str]:
    """The database runs on exactly one node with its own claim and credentials (or on none, deprovisioned)."""
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    found = []
    selector = f"{DATABASE_LABEL}={name},!{PREPULL_LABEL}"
    pods = [
        p
        for p in core.list_namespaced_pod(namespace, label_selector=selector).items
        if not p.metadata.deletion_timestamp
    ]
    claims = core.list_namespaced_persistent_volume_claim(namespace, label_selector=f"{DATABASE_LABEL}={name}").items
    if not exists:
        if pods:
            found.append(f"Database {name} deprovisioned but pods remain: {[p.metadata.name for p in pods]}")
        return found
    if len(pods) != 1:
        found.append(
            f"Database {name}: {len(pods)} pods ({[(p.metadata.name, p.spec.node_name) for p in pods]}), expected 1"
        )
    if len(claims) != 1:
        found.append(f"Database {name}: {len(claims)} claims, expected its one")
    secrets = core.list_namespaced_secret(namespace, label_selector=f"{DATABASE_LABEL}={name}").items
    if len(secrets) != 1:
        found.append(f"Database {name}: {len(secrets)} credentials Secrets, expected 1")
    status = (custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "databases", name).get("status")) or {}
    if len(pods) == 1 and status.get("node") != pods[0].spec.node_name:
        found.append(
            f"Database {name}: status says node {status.get('node')}, its pod runs on {pods[0].spec.node_name}"
        )
    if claims and status.get("volume", {}).get("volumeName") not in (None, claims[0].spec.volume_name):
        found.append(f"Database {name}: status volume differs from its claim's")
    return found


def never_double_attached(samples: list[set[str]]) -> list[str]:
    if not samples:
        return ["the volume's attachments were never sampled: nothing shows it stayed on one node"]
    worst = max(len(s) for s in samples)
    return [f"the volume was attached to {worst} nodes at once"] if worst > 1 else []


def never_below(samples: list[int], desired: int, what: str) -> list[str]:
    if not samples:
        return [f"{what}: ready endpoints were never sampled: nothing shows they stayed up"]
    low = min(samples)
    return [f"{what}: ready endpoints fell to {low}, below {desired}"] if low < desired else []
