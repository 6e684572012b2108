"""What Operation a spec edit calls for.

When someone edits an App or a Database (kubectl apply, Argo CD), Bosun does not act on the edit
directly: it creates the Operation that carries it out, so the change is recorded, queued,
cancellable and rolled back like any other. The names are derived from the target's uid and
generation, so handling the same edit twice (after a restart) creates nothing new.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from bosun.kube import AlreadyExists, Kube
from bosun.models.names import (
    API_VERSION,
    EDIT_PART,
    INITIATOR_MANAGER,
    INITIATOR_SOURCE,
    INITIATOR_USER,
    SPEC_EDITED_BY,
    TARGET_GENERATION,
    TARGET_KIND_LABEL,
    TARGET_LABEL,
)
from bosun.models.operation import OperationType, TargetKind

MAX_NAME = 253
# App fields that change the pods: a (rolling, zero-downtime) deploy carries them out.
APP_RELEASE_FIELDS = (
    "image",
    "command",
    "healthCheck",
    "beforeRelease",
    "resources",
    "minReadySeconds",
    "terminationGracePeriodSeconds",
    "podLabels",
    "podAnnotations",
    "placement",
)
# The terms operations run under: read by each operation as it is about to start.
POLICY_WITHOUT_OPERATION = {
    f"operationPolicy.{field}": "read by every operation before it starts"
    for field in (
        "maxDowntimeSeconds",
        "requireApproval",
        *(f"maintenanceWindows[0].{w}" for w in ("days", "start", "durationMinutes", "timeZone")),
    )
}
# App fields that take effect without an operation of their own.
APP_WITHOUT_OPERATION = POLICY_WITHOUT_OPERATION
# Database fields that take effect without an operation of their own (README: Databases).
DATABASE_WITHOUT_OPERATION = {
    **POLICY_WITHOUT_OPERATION,
    "storage.reclaim": "read when the Database is deprovisioned",
    "backup.schedule": "read by the backup schedule every minute",
    "backup.timeZone": "read by the backup schedule every minute",
    "backup.method": "read when the schedule next makes a backup",
    "backup.retention.count": "read when the schedule next prunes",
    "backup.retention.maxAgeDays": "read when the schedule next prunes",
    "backup.beforeChanges": "read by the next operation that cannot be undone",
    "minReadySeconds": "read by the next operation that starts the database pod",
    **{
        f"placement.tolerations[0].{field}": "read by the next operation that starts the database pod"
        for field in ("key", "operator", "value", "effect", "tolerationSeconds")
    },
}
# Database fields the API server refuses to change (CEL rules on the Database spec).
DATABASE_IMMUTABLE = {"engine", "storage.storageClassName", "source.backup"}


def app_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[OperationType, dict[str, Any]]]:
    """The operations an App spec edit needs, in the order to run them."""
    if old is None:
        return [(OperationType.DEPLOY, {"image": new.get("image"), "env": new.get("env") or []})]
    out: list[tuple[OperationType, dict[str, Any]]] = []
    release_fields = APP_RELEASE_FIELDS
    release_changed = any(old.get(f) != new.get(f) for f in release_fields)
    process_shape = [
        (p.get("name"), p.get("command"), p.get("ports"), p.get("env")) for p in new.get("processes") or []
    ]
    old_shape = [(p.get("name"), p.get("command"), p.get("ports"), p.get("env")) for p in old.get("processes") or []]
    if release_changed or process_shape != old_shape:
        out.append((OperationType.DEPLOY, {"image": new.get("image"), "env": new.get("env") or []}))
    elif old.get("env") != new.get("env"):
        out.append((OperationType.CONFIGURE, {"env": new.get("env") or []}))
    old_scale = {p.get("name"): (p.get("replicas"), p.get("resources")) for p in old.get("processes") or []}
    scaled = [
        {
            k: v
            for k, v in {"name": p.get("name"), "replicas": p.get("replicas"), "resources": p.get("resources")}.items()
            if v is not None
        }
        for p in new.get("processes") or []
        if p.get("name") in old_scale and old_scale[p.get("name")] != (p.get("replicas"), p.get("resources"))
    ]
    if scaled:
        out.append((OperationType.SCALE, {"processes": scaled}))
    return out


def database_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[OperationType, dict[str, Any]]]:
    """The operations a Database spec edit needs, in the order to run them."""
    if old is None:
        return [(OperationType.PROVISION, {})]
    out: list[tuple[OperationType, dict[str, Any]]] = []
    old_storage, new_storage = old.get("storage") or {}, new.get("storage") or {}
    if old_storage.get("size") != new_storage.get("size"):
        out.append((OperationType.RESIZE, {"volumeSize": new_storage.get("size")}))
    if old.get("resources") != new.get("resources"):
        out.append((OperationType.SCALE, {"resources": new.get("resources") or {}}))
    old_node = (old.get("placement") or {}).get("node")
    new_node = (new.get("placement") or {}).get("node")
    if old_node != new_node or (old.get("placement") or {}).get("nodeSelector") != (new.get("placement") or {}).get(
        "nodeSelector"
    ):
        out.append((OperationType.REDEPLOY, {"node": new_node} if new_node else {}))
    if old.get("version") != new.get("version") or old.get("image") != new.get("image"):
        out.append((OperationType.RESTART, {}))
    return out


def label_value(text: str) -> str:
    """A valid label value: at most 63 characters, starting and ending alphanumeric."""
    return re.sub(r"[^A-Za-z0-9_.-]", "", text)[:63].strip("-_.")


def operation_name(target: str, type_: OperationType, generation: int, uid: str) -> str:
    suffix = f"-{type_.value}-g{generation}-{uid[:5]}"
    return target[: MAX_NAME - len(suffix)] + suffix


def operation_manifest(
    kind: TargetKind,
    target: dict[str, Any],
    type_: OperationType,
    parameters: dict[str, Any],
    manager: str,
    part: str = "1/1",
) -> dict[str, Any]:
    """The Operation Bosun creates for a spec edit. Not owned by the target: history outlives it."""
    meta = target["metadata"]
    params = {k: v for k, v in parameters.items() if v not in (None, [], {})}
    if type_ is OperationType.DEPLOY and not params:
        params = {"image": (target.get("spec") or {}).get("image")}
    return {
        "apiVersion": API_VERSION,
        "kind": "Operation",
        "metadata": {
            "name": operation_name(meta["name"], type_, int(meta.get("generation") or 1), meta.get("uid", "")),
            "namespace": meta["namespace"],
            "labels": {TARGET_KIND_LABEL: kind.value.lower(), TARGET_LABEL: label_value(meta["name"])},
            "annotations": {
                INITIATOR_SOURCE: f"{kind.value}Spec",
                INITIATOR_MANAGER: manager,
                INITIATOR_USER: (meta.get("annotations") or {}).get(SPEC_EDITED_BY, ""),
                TARGET_GENERATION: str(meta.get("generation") or 1),
                EDIT_PART: part,
            },
        },
        "spec": {
            "target": {"kind": kind.value, "name": meta["name"]},
            "type": type_.value,
            **({"parameters": params} if params else {}),
        },
    }


def spec_manager(target: dict[str, Any]) -> str:
    """The client that last wrote the spec (kubectl, argocd-controller, ...), from managedFields."""
    entries = [
        m
        for m in (target.get("metadata") or {}).get("managedFields") or []
        if "f:spec" in (m.get("fieldsV1") or {}) and m.get("subresource", "") == ""
    ]
    entries.sort(key=lambda m: m.get("time") or "")
    return str(entries[-1].get("manager", "")) if entries else ""


async def create_operations_for_edit(
    kube: Kube, kind: TargetKind, target: dict[str, Any], old: dict[str, Any] | None, new: dict[str, Any]
) -> list[str]:
    """Create (idempotently) the Operations a spec edit calls for; return their names."""
    planned = app_changes(old, new) if kind is TargetKind.APP else database_changes(old, new)
    manager = spec_manager(target)
    names = []
    for index, (type_, parameters) in enumerate(planned, start=1):
        manifest = operation_manifest(kind, target, type_, parameters, manager, f"{index}/{len(planned)}")
        with contextlib.suppress(AlreadyExists):  # handled before, by an earlier run
            await kube.create(target["metadata"]["namespace"], manifest)
        names.append(manifest["metadata"]["name"])
    return names
