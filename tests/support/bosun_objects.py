"""Reading and writing Bosun objects in tests (sync client), and waiting on operations."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from bosun.models.names import FINISHED_PHASES, GROUP, VERSION
from tests.support.cluster import LocalCluster
from tests.support.waiting import wait_for

FINISHED = FINISHED_PHASES


class Bosun:
    def __init__(self, api: client.ApiClient, cluster: LocalCluster, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.cluster = cluster
        self.namespace = namespace

    def apply(self, manifest: dict[str, Any]) -> str:
        """kubectl apply, as a user would; returns kubectl's output."""
        return self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(manifest))

    def app(self, name: str, image: str = "example.com/app:1") -> dict[str, Any]:
        manifest = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "App",
            "metadata": {"name": name},
            "spec": {"image": image},
        }
        self.apply(manifest)
        return manifest

    def operation(
        self, name: str, target: str, type_: str = "restart", annotations: dict[str, str] | None = None, **spec: Any
    ) -> dict[str, Any]:
        """Apply an Operation on an App; extra keyword arguments go into its spec (parameters=...)."""
        manifest = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Operation",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"target": {"kind": "App", "name": target}, "type": type_, **spec},
        }
        self.apply(manifest)
        return manifest

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name))

    def list(self, plural: str) -> list[dict[str, Any]]:
        return list(self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)["items"])

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get("operations", name).get("status") or {})

    def wait_phase(self, name: str, phases: set[str] = FINISHED, timeout: float = 90) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.status(name)).get("phase") in phases and s,
            timeout=timeout,
            what=f"operation {name} to reach {sorted(phases)}",
        )

    def wait_settled(self, plural: str, name: str, operation: str, timeout: float = 60) -> dict[str, Any]:
        """The target once it shows the ended operation as its last (written just after the
        operation's own final phase): read "before" only then, to compare with an "after"."""

        def probe() -> dict[str, Any] | None:
            body = self.get(plural, name)
            last = (body.get("status") or {}).get("lastOperation") or {}
            return body if last.get("name") == operation and last.get("phase") in FINISHED else None

        return wait_for(probe, timeout=timeout, what=f"{plural}/{name} to show {operation} as its last operation")

    def wait_step_state(self, name: str, index: int, state: str, timeout: float = 60) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = self.status(name)
            steps = status.get("steps") or []
            return status if len(steps) > index and steps[index]["state"] == state else None

        return wait_for(probe, timeout=timeout, what=f"step {index} of {name} to be {state}")

    def wait_all_finished(self, timeout: float = 60) -> None:
        """Every App and Database here has its creation's operation (Bosun makes it a moment after the
        apply), and every operation has finished: an empty list is not "all finished"."""

        def probe() -> bool:
            operations = self.list("operations")
            targets = {(o["spec"]["target"]["kind"], o["spec"]["target"]["name"]) for o in operations}
            made = all(
                (kind, t["metadata"]["name"]) in targets
                for kind, plural in (("App", "apps"), ("Database", "databases"))
                for t in self.list(plural)
            )
            return made and all((o.get("status") or {}).get("phase") in FINISHED for o in operations)

        wait_for(probe, timeout=timeout, what="every App's and Database's operations to finish")

    def ledger(self, operation: str) -> list[str]:
        try:
            cm = self.core.read_namespaced_config_map(f"ledger-{operation}", self.namespace)
        except client.ApiException as error:
            if error.status == 404:
                return []
            raise
        return [e for e in (cm.data or {}).get("entries", "").split("\n") if e]
