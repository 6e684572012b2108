"""Repair an App's objects towards its current release when no operation is running on it.

Operations are the only way a release changes; between them, someone may delete a Deployment or
edit its replicas by hand. Bosun puts back what the current release says (recorded in
`status.releases[0]`), never the spec: a spec edit is carried out by its Operation, with rollback.
While an operation runs on the App, the operation owns the objects and repair stands back: repair
holds the App's target lock (the one the engine holds from the moment it decides an operation may
start until it ends) and re-reads the App under it, so a deploy that starts meanwhile is never
reverted; and it skips an App while the operator's watch shows an unfinished Operation on it (a
queued one will set the App right itself). That look costs no request: listing the namespace's
Operations for every App each round grew with the namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bosun.kube import Kube
from bosun.models.app import AppStatus
from bosun.models.names import CONFIG_HASH_ANNOTATION
from bosun.workloads.app import current_version, render


def drift(wanted: dict[str, Any], current: dict[str, Any] | None) -> str:
    """What differs between an object as rendered and as found ('' when nothing that matters)."""
    name = f"{wanted['kind']} {wanted['metadata']['name']}"
    if current is None:
        return f"{name} was missing"
    if wanted["kind"] != "Deployment":
        return ""
    spec, found = wanted["spec"], current.get("spec") or {}
    if found.get("replicas") != spec["replicas"]:
        return f"{name} had {found.get('replicas')} replicas instead of {spec['replicas']}"
    template = found.get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    image = ((template.get("spec") or {}).get("containers") or [{}])[0].get("image")
    if image != spec["template"]["spec"]["containers"][0]["image"] or annotations.get(CONFIG_HASH_ANNOTATION) != spec[
        "template"
    ]["metadata"]["annotations"].get(CONFIG_HASH_ANNOTATION):
        return f"{name} ran another image or configuration"
    return ""


MANAGED = {"app.kubernetes.io/managed-by": "bosun"}
KINDS = ("Deployment", "Service", "PodDisruptionBudget")

Snapshot = dict[tuple[str, str], dict[str, Any]]  # (kind, name) -> the object as listed


async def snapshot(kube: Kube, namespace: str) -> Snapshot:
    """Every object Bosun manages for Apps in the namespace: one list per kind, for a whole round.

    Reading each App's objects one by one every round grew with the number of Apps; a round now
    costs three lists per namespace, and an App is re-read only when the snapshot shows drift.
    """
    found: Snapshot = {}
    for kind in KINDS:
        for item in await kube.list_labelled(namespace, kind, MANAGED):
            found[(kind, item["metadata"]["name"])] = item
    return found


def drifted(body: dict[str, Any], objects: Snapshot) -> list[str]:
    """What of the App's current release differs from the snapshot (pure)."""
    status = AppStatus.model_validate(body.get("status") or {})
    version = current_version(status)
    if version is None or status.phase == "Deprovisioned":
        return []
    meta = body["metadata"]
    wanted = render(meta["name"], meta["uid"], version.spec, version.operation, version.restarted_at)
    problems = (drift(m, objects.get((m["kind"], m["metadata"]["name"]))) for m in wanted)
    return [p for p in problems if p]


async def repair_app(
    kube: Kube,
    body: dict[str, Any],
    lock: asyncio.Lock,
    busy: Callable[[str, str, str], bool],
    objects: Snapshot,
    in_flight: Callable[[str, str, str], Awaitable[bool]],
) -> list[str]:
    """Re-apply what drifted from the current release; return what was repaired.

    `busy(namespace, kind, name)` says whether an unfinished Operation on the App is known (the
    operator's watch of Operations): a queued or running operation will set the App right itself.
    `objects` is the round's snapshot of the namespace: when it shows no drift, no request is made.
    Drift found, `in_flight` asks the API server the same question under the lock: just after a
    start, the watch has not shown the deploy that was running when the operator stopped (its
    objects carry the new release, `status.releases[0]` still the old one), and repair would
    revert it. A deleted App (foreground deletion: it stays while its objects go) is left alone.
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if lock.locked() or busy(namespace, "App", name) or meta.get("deletionTimestamp") or not drifted(body, objects):
        return []  # an operation is starting, queued or running on the App; or nothing drifted
    async with lock:
        fresh = await kube.read(namespace, "App", name)
        if not fresh or fresh["metadata"].get("deletionTimestamp") or await in_flight(namespace, "App", name):
            return []
        return await _repair(kube, fresh)


async def _repair(kube: Kube, body: dict[str, Any]) -> list[str]:
    meta = body["metadata"]
    status = AppStatus.model_validate(body.get("status") or {})
    version = current_version(status)
    if version is None or status.phase == "Deprovisioned":
        return []
    repaired = []
    for manifest in render(meta["name"], meta["uid"], version.spec, version.operation, version.restarted_at):
        current = await kube.read(meta["namespace"], manifest["kind"], manifest["metadata"]["name"])
        problem = drift(manifest, current)
        if problem:
            await kube.apply(meta["namespace"], manifest)
            repaired.append(problem)
    return repaired
