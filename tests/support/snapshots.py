"""The csi-snapshotter sidecar of KWOK's simulated CSI drivers: it answers for their snapshots.

The KWOK cluster runs the VolumeSnapshot API and external-snapshotter's real snapshot-controller
(both started by `hack/cluster up`): it makes a VolumeSnapshotContent for each VolumeSnapshot,
binds them, guards the source claim and copies the content's status into the snapshot's. What it
waits for is a driver's sidecar, and KWOK's volumes hold no bytes, so this plays the sidecar of
`csi.bosun.local` and `shared.csi.bosun.local`, as csi-snapshotter does for a real driver:

- a content of one of those drivers with a source volume and no status gets, `delay_seconds`
  later, the status a driver's CreateSnapshot answers: a handle, ready to use, its creation time
  and its restore size (the source claim's capacity, as a block driver reports);
- a content the controller is deleting (its `volumesnapshot-being-deleted` annotation) loses its
  finalizer once the snapshot would be deleted from the storage.

`fail` makes the next snapshots report an error on their content and never become ready (a
driver that cannot snapshot); `hold` keeps them not ready until released. The real nodes run the
real csi-snapshotter beside their CSI driver (hack/real-nodes, hack/loop-csi).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch

GROUP, VERSION = "snapshot.storage.k8s.io", "v1"
DRIVERS = {"csi.bosun.local", "shared.csi.bosun.local"}
BEING_DELETED = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"
CONTENT_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
_UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


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
                listed = self.custom.list_cluster_custom_object(GROUP, VERSION, "volumesnapshotcontents")
                for content in listed.get("items") or []:
                    self._seen("ADDED", content)
                for event in watch.Watch().stream(
                    self.custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    "volumesnapshotcontents",
                    resource_version=listed["metadata"]["resourceVersion"],
                    timeout_seconds=5,
                ):
                    self._seen(event["type"], event["object"])
                    if self._stop.is_set():
                        return
            except client.ApiException:
                time.sleep(0.5)  # an expired resource version, or the API not served yet: list again

    def _seen(self, kind: str, content: dict[str, Any]) -> None:
        meta, spec = content["metadata"], content["spec"]
        if kind == "DELETED" or spec.get("driver") not in DRIVERS:
            return
        if meta.get("deletionTimestamp"):
            if BEING_DELETED in (meta.get("annotations") or {}) and CONTENT_FINALIZER in (meta.get("finalizers") or []):
                threading.Thread(target=self._release, args=(content,), daemon=True).start()
            return
        if meta["uid"] in self._handled or content.get("status") or not spec["source"].get("volumeHandle"):
            return
        self._handled.add(meta["uid"])
        threading.Thread(target=self._take, args=(content,), daemon=True).start()

    def _take(self, content: dict[str, Any]) -> None:
        name, ref = content["metadata"]["name"], content["spec"]["volumeSnapshotRef"]
        time.sleep(self.delay_seconds)
        while self.hold.is_set() and not self._stop.is_set():
            time.sleep(0.2)
        if self.fail:
            self._status(name, {"readyToUse": False, "error": {"message": self.fail, "time": _now()}})
            return
        size = 0
        with contextlib.suppress(client.ApiException):  # the restore size is optional in CSI
            snapshot = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, ref["namespace"], "volumesnapshots", ref["name"]
            )
            claim = self.core.read_namespaced_persistent_volume_claim(
                snapshot["spec"]["source"]["persistentVolumeClaimName"], ref["namespace"]
            )
            size = _bytes((claim.status.capacity or {}).get("storage", "0"))
        status: dict[str, Any] = {
            "creationTime": int(time.time() * 1e9),
            "readyToUse": True,
            "snapshotHandle": f"snap-{content['metadata']['uid']}",
        }
        if size:
            status["restoreSize"] = size
        if self._status(name, status):
            self.taken.append(f"{ref['namespace']}/{ref['name']}")

    def _status(self, name: str, status: dict[str, Any]) -> bool:
        try:
            self.custom.patch_cluster_custom_object_status(
                GROUP, VERSION, "volumesnapshotcontents", name, {"status": status}
            )
        except client.ApiException:  # deleted meanwhile
            return False
        return True

    def _release(self, content: dict[str, Any]) -> None:
        """The driver's snapshot is gone (nothing to delete on KWOK): let the content go."""
        finalizers = [f for f in content["metadata"].get("finalizers") or [] if f != CONTENT_FINALIZER]
        with contextlib.suppress(client.ApiException):
            self.custom.patch_cluster_custom_object(
                GROUP,
                VERSION,
                "volumesnapshotcontents",
                content["metadata"]["name"],
                {"metadata": {"finalizers": finalizers, "resourceVersion": content["metadata"]["resourceVersion"]}},
            )

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


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMGT]i?|k)?", quantity).groups()  # type: ignore[union-attr]
    return int(number) * _UNITS[unit or ""]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
