"""Repair an App's objects towards its current release when no operation is running on it.

Operations are the only way a release changes; between them, someone may delete a Deployment or
edit its replicas by hand. Bosun puts back what the current release says (recorded in
`status.releases[0]`), never the spec: a spec edit is carried out by its Operation, with rollback.
While an operation runs on the App, the operation owns the objects and repair stands back: repair
holds the App's target lock (the one the engine holds from the moment it decides an operation may
start until it ends) and re-reads the App and its Operations under it, so a deploy that starts
meanwhile is never reverted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bosun.kube import Kube
from bosun.models.app import AppStatus
from bosun.models.operation import Operation
from bosun.workloads.app import CONFIG_HASH_ANNOTATION, current_version, render


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


async def repair_app(kube: Kube, body: dict[str, Any], lock: asyncio.Lock) -> list[str]:
    """Re-apply what drifted from the current release; return what was repaired."""
    if lock.locked():
        return []  # an operation is starting or running on the App
    async with lock:
        fresh = await kube.find("App", body["metadata"]["namespace"], body["metadata"]["name"])
        return await _repair(kube, fresh) if fresh else []


async def _repair(kube: Kube, body: dict[str, Any]) -> list[str]:
    meta = body["metadata"]
    status = AppStatus.model_validate(body.get("status") or {})
    version = current_version(status)
    if version is None or status.phase == "Deprovisioned":
        return []
    for body_ in await kube.list_objects("Operation", meta["namespace"]):
        operation = Operation.of(body_)
        target = operation.spec.target
        if target.kind.value == "App" and target.name == meta["name"] and not operation.status.phase.finished:
            return []
    repaired = []
    for manifest in render(meta["name"], meta["uid"], version.spec, version.operation, version.restarted_at):
        current = await kube.read(meta["namespace"], manifest["kind"], manifest["metadata"]["name"])
        problem = drift(manifest, current)
        if problem:
            await kube.apply(meta["namespace"], manifest)
            repaired.append(problem)
    return repaired
