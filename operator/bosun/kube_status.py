"""Writes to the status subresource of Bosun's own kinds, kept out of `Kube` on purpose.

Status is the record people, `kubectl wait` and GitOps tools read, and each kind of it has one
writer: the engine's `StatusWriter` for an Operation's run, `engine.target.TargetStatus` for an
App's or a Database's, and the archive marker an Operation gets once stored. Steps hold a `Kube`,
which has no status write at all, and tell the target's writer what changes through
`engine.target.TargetFields`; an import-linter contract keeps `operations` and `workloads` from
importing this module. So a step that wants to write status directly does not type-check.
"""

from __future__ import annotations

from typing import Any

from bosun.kube import MERGE_PATCH, Kube, call
from bosun.models.names import GROUP, PLURALS, VERSION


class StatusWrites:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any], resource_version: str = ""
    ) -> dict[str, Any]:
        """Merge-patch `status` (lists are replaced whole); with a resourceVersion, only if unchanged (409 if not)."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        custom = self.kube.custom
        result: dict[str, Any] = await call(
            f"patch status of {kind} {namespace}/{name}",
            lambda: custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURALS[kind], name, body, **MERGE_PATCH
            ),
        )
        return result
