"""Simulated image pulls: the part of a kubelet that makes the first start of an image on a node slow.

KWOK plays kubelets that start every container at once, so pulling an image ahead of a move (what
Bosun's `pre-pull` step does) would change nothing measurable. On nodes named `kwok-pulls-<n>` the
local cluster's `pod-ready` stage waits for the annotation `pulls.bosun.dev/pulled` (see
`hack/cluster`); this simulator sets it:

- first the pod's volumes must be attached to the node (a kubelet mounts them before it pulls);
- then, if the node already has the image (its `status.images`, as a kubelet reports it), the
  containers start `start_seconds` later;
- if it does not, a pull starts (or the one already running for that image on that node is
  joined), and the containers start `pull_seconds` after the pull began, plus `start_seconds`; the
  image is then recorded in the node's `status.images`.

New nodes are always empty, so a benchmark that moves to a fresh node pays a real first pull.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

from kubernetes import client, watch

from tests.support.cluster import fake_node

PREFIX = "kwok-pulls-"
ZONE = "pulls"  # hack/cluster.d/stages-storage.yaml derives a node's zone from its name
PULLED = "pulls.bosun.dev/pulled"
READY_DELAY = "pod-ready.stage.kwok.x-k8s.io/delay"
READY_JITTER = "pod-ready.stage.kwok.x-k8s.io/jitter-delay"
CREATE_DELAY = "pod-create.stage.kwok.x-k8s.io/delay"
CREATE_JITTER = "pod-create.stage.kwok.x-k8s.io/jitter-delay"


@dataclass
class Pull:
    node: str
    image: str
    began: float
    done: float


@dataclass
class ImagePulls:
    api: client.ApiClient
    pull_seconds: float = 20.0
    start_seconds: float = 1.0
    pulls: list[Pull] = field(default_factory=list)
    _images: dict[str, set[str]] = field(default_factory=dict)  # node -> images it has
    _pulling: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, image) -> done at
    _handled: set[str] = field(default_factory=set)  # pod uids
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)

    # nodes -------------------------------------------------------------------------------------

    def add_nodes(self, count: int, cpu: str = "8", memory: str = "32Gi") -> list[str]:
        """Fresh nodes (no image pulled yet), numbered after the ones that exist."""
        existing = [n.metadata.name for n in self.core.list_node().items if n.metadata.name.startswith(PREFIX)]
        first = max((int(n.removeprefix(PREFIX)) for n in existing), default=0) + 1
        names = [f"{PREFIX}{first + i}" for i in range(count)]
        for name in names:
            self.core.create_node(fake_node(name, ZONE, cpu, memory))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = {n.metadata.name for n in self.core.list_node().items if _ready(n)}
            if ready.issuperset(names):
                return names
            time.sleep(0.2)
        raise TimeoutError(f"nodes {names} did not become Ready")

    def remove_nodes(self) -> None:
        for node in self.core.list_node().items:
            if node.metadata.name.startswith(PREFIX):
                self.core.delete_node(node.metadata.name)

    # the simulated kubelets ---------------------------------------------------------------------

    def __enter__(self) -> ImagePulls:
        for node in self.core.list_node().items:
            self._images[node.metadata.name] = {n for i in node.status.images or [] for n in i.names or []}
        self._thread = threading.Thread(target=self._watch, daemon=True, name="image-pulls")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            listed = self.core.list_pod_for_all_namespaces()
            for pod in listed.items:
                self._seen(pod)
            try:
                for event in watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=5,
                ):
                    self._seen(event["object"])
                    if self._stop.is_set():
                        return
            except client.ApiException:
                continue  # an expired resource version: list again

    def _seen(self, pod: client.V1Pod) -> None:
        node = pod.spec.node_name or ""
        if not node.startswith(PREFIX) or pod.metadata.deletion_timestamp or pod.metadata.uid in self._handled:
            return
        if PULLED in (pod.metadata.annotations or {}):
            return
        self._handled.add(pod.metadata.uid)
        threading.Thread(target=self._kubelet, args=(pod,), daemon=True).start()

    def _kubelet(self, pod: client.V1Pod) -> None:
        node, namespace, name = pod.spec.node_name, pod.metadata.namespace, pod.metadata.name
        claims = [v.persistent_volume_claim.claim_name for v in pod.spec.volumes or [] if v.persistent_volume_claim]
        if claims and not self._wait_attached(namespace, claims, node):
            return
        images = sorted({c.image for c in pod.spec.containers})
        now = time.monotonic()
        with self._lock:
            ready_at = now
            for image in images:
                if image in self._images.setdefault(node, set()):
                    continue
                done = self._pulling.get((node, image))
                if done is None:
                    done = self._pulling[(node, image)] = now + self.pull_seconds
                    self.pulls.append(Pull(node, image, now, done))
                    threading.Timer(done - now, self._pulled, (node, image)).start()
                ready_at = max(ready_at, done)
        threading.Timer(ready_at - now, self._start, (namespace, name, images)).start()

    def _wait_attached(self, namespace: str, claims: list[str], node: str) -> bool:
        storage = client.StorageV1Api(self.api)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                read = self.core.read_namespaced_persistent_volume_claim
                volumes = {read(c, namespace).spec.volume_name for c in claims}
            except client.ApiException:
                return False  # the claim is gone: so is the pod
            attached = {
                a.spec.source.persistent_volume_name
                for a in storage.list_volume_attachment().items
                if a.spec.node_name == node and a.status and a.status.attached
            }
            if None not in volumes and volumes <= attached:
                return True
            time.sleep(0.05)
        return False

    def _pulled(self, node: str, image: str) -> None:
        with self._lock:
            self._images.setdefault(node, set()).add(image)
            self._pulling.pop((node, image), None)
            listed = [{"names": [i], "sizeBytes": 1} for i in sorted(self._images[node])]
        with contextlib.suppress(client.ApiException):  # the node is gone
            self.core.patch_node_status(node, {"status": {"images": listed}})

    def _start(self, namespace: str, name: str, images: list[str]) -> None:
        delay = f"{int(self.start_seconds * 1000)}ms"
        timing = {CREATE_DELAY: "0ms", CREATE_JITTER: "0ms", READY_DELAY: delay, READY_JITTER: delay}
        patch = {"metadata": {"annotations": {PULLED: ",".join(images), **timing}}}
        with contextlib.suppress(client.ApiException):  # deleted before its images were there
            self.core.patch_namespaced_pod(name, namespace, patch)


def _ready(node: client.V1Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


def node_images(api: client.ApiClient, node: str) -> set[str]:
    """What the node reports it has pulled."""
    found = client.CoreV1Api(api).read_node(node).status.images or []
    return {name for image in found for name in image.names or []}
