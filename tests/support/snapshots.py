"""Simulated volume snapshots: snapshot-controller and the snapshotter of KWOK's simulated CSI drivers.

The KWOK cluster serves the VolumeSnapshot API (external-snapshotter's CRDs, applied by
`hack/cluster`), but no controller takes snapshots there: its volumes hold no bytes. This plays
what snapshot-controller and a CSI driver's `csi-snapshotter` sidecar do for a dynamically
provisioned snapshot of `csi.bosun.local` or `shared.csi.bosun.local`:

- a VolumeSnapshot whose class names one of those drivers and whose source claim is bound gets a
  VolumeSnapshotContent (`snapcontent-<uid>`, the controller's naming) `delay_seconds` later, with
  the claim's volume handle, the class's deletion policy and a ready status;
- the VolumeSnapshot's status then says bound to it, ready to use, with the claim's capacity as
  its restore size (what a block driver reports);
- a VolumeSnapshot deleted takes its content with it when the policy is Delete.

`fail` makes the next snapshots report an error and never become ready (what a driver that cannot
snapshot does); `hold` keeps them not ready until released. The real snapshot-controller and a
real driver take snapshots on the real nodes (tests/cluster/test_real_nodes.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch

GROUP, VERSION = "snapshot.storage.k8s.io", "v1"
DRIVERS = {"csi.bosun.local", "shared.csi.bosun.local"}


@dataclass
class Snapshots:
    api: client.ApiClient
    delay_seconds: float = 1.0
    fail: str = ""  # an error message: snapshots report it and never become ready
    hold: threading.Event = field(default_factory=threading.Event)  # set: snapshots wait until cleared
    taken: list[str] = field(default_factory=list)  # namespace/name of every snapshot made ready
    _handled: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def __enter__(self) -> Snapshots:
        self._thread = threading.Thread(target=self._watch, daemon=True, name="snapshots")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                listed = self.custom.list_cluster_custom_object(GROUP, VERSION, "volumesnapshots")
                for snapshot in listed.get("items") or []:
                    self._seen("ADDED", snapshot)
                for event in watch.Watch().stream(
                    self.custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    "volumesnapshots",
                    resource_version=listed["metadata"]["resourceVersion"],
                    timeout_seconds=5,
                ):
                    self._seen(event["type"], event["object"])
                    if self._stop.is_set():
                        return
            except client.ApiException:
                time.sleep(0.5)  # an expired resource version, or the API not served yet: list again

    def _seen(self, kind: str, snapshot: dict[str, Any]) -> None:
        meta = snapshot["metadata"]
        if kind == "DELETED":
            threading.Thread(target=self._deleted, args=(snapshot,), daemon=True).start()
            return
        if meta["uid"] in self._handled or (snapshot.get("status") or {}).get("readyToUse"):
            return
        self._handled.add(meta["uid"])
        threading.Thread(target=self._take, args=(snapshot,), daemon=True).start()

    def _take(self, snapshot: dict[str, Any]) -> None:
        meta, spec = snapshot["metadata"], snapshot["spec"]
        namespace, name = meta["namespace"], meta["name"]
        klass = self.custom.get_cluster_custom_object(
            GROUP, VERSION, "volumesnapshotclasses", spec.get("volumeSnapshotClassName") or ""
        )
        if klass.get("driver") not in DRIVERS:
            return
        time.sleep(self.delay_seconds)
        while self.hold.is_set() and not self._stop.is_set():
            time.sleep(0.2)
        if self.fail:
            self._status(namespace, name, {"readyToUse": False, "error": {"message": self.fail, "time": _now()}})
            return
        claim = self.core.read_namespaced_persistent_volume_claim(
            spec["source"]["persistentVolumeClaimName"], namespace
        )
        volume = self.core.read_persistent_volume(claim.spec.volume_name)
        content = f"snapcontent-{meta['uid']}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "VolumeSnapshotContent",
            "metadata": {"name": content},
            "spec": {
                "deletionPolicy": klass.get("deletionPolicy", "Delete"),
                "driver": klass["driver"],
                "source": {"volumeHandle": volume.spec.csi.volume_handle},
                "volumeSnapshotClassName": klass["metadata"]["name"],
                "volumeSnapshotRef": {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "VolumeSnapshot",
                    "name": name,
                    "namespace": namespace,
                    "uid": meta["uid"],
                },
            },
        }
        with contextlib.suppress(client.ApiException):
            self.custom.create_cluster_custom_object(GROUP, VERSION, "volumesnapshotcontents", body)
        now = int(time.time() * 1e9)
        with contextlib.suppress(client.ApiException):
            self.custom.patch_cluster_custom_object_status(
                GROUP,
                VERSION,
                "volumesnapshotcontents",
                content,
                {"status": {"creationTime": now, "readyToUse": True, "snapshotHandle": f"snap-{meta['uid']}"}},
            )
        size = (claim.status.capacity or {}).get("storage", "")
        self._status(
            namespace,
            name,
            {
                "boundVolumeSnapshotContentName": content,
                "creationTime": _now(),
                "readyToUse": True,
                **({"restoreSize": size} if size else {}),
            },
        )
        self.taken.append(f"{namespace}/{name}")

    def _status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with contextlib.suppress(client.ApiException):  # deleted meanwhile
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, "volumesnapshots", name, {"status": status}
            )

    def _deleted(self, snapshot: dict[str, Any]) -> None:
        content = (snapshot.get("status") or {}).get("boundVolumeSnapshotContentName")
        if not content:
            return
        with contextlib.suppress(client.ApiException):
            found = self.custom.get_cluster_custom_object(GROUP, VERSION, "volumesnapshotcontents", content)
            if found["spec"].get("deletionPolicy") == "Delete":
                self.custom.delete_cluster_custom_object(GROUP, VERSION, "volumesnapshotcontents", content)

    def contents(self) -> list[dict[str, Any]]:
        return list(self.custom.list_cluster_custom_object(GROUP, VERSION, "volumesnapshotcontents").get("items") or [])


_RUNNING: list[Snapshots] = []  # the one this process runs (two would both act on each snapshot)


@contextlib.contextmanager
def played(api: client.ApiClient) -> Iterator[Snapshots]:
    """The snapshotter of this process: started here, or the one already running (shared)."""
    if _RUNNING:
        yield _RUNNING[0]
        return
    with Snapshots(api) as started:
        _RUNNING.append(started)
        try:
            yield started
        finally:
            _RUNNING.remove(started)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
