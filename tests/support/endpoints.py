"""Sampling the cluster every 50 ms while something happens: the downtime and double-attach witnesses."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from kubernetes import client

T = TypeVar("T")


BLIND_SAMPLES = 10  # this many failed probes in a row (half a second) leave a window nobody watched


class Sampler(Generic[T]):
    """Calls `probe` every 50 ms in a thread while the `with` block runs; keeps every answer.

    A probe that fails is counted and the sampling goes on: a thread that died of one API error
    used to leave the samples cut short, and an invariant judged on them passed unseen."""

    def __init__(self, probe: Callable[[], T]) -> None:
        self.probe = probe
        self.samples: list[T] = []
        self.taken_at: list[float] = []  # monotonic time of each sample: a probe takes longer than its 50 ms
        self.failures: list[str] = []
        self.longest_blind = 0  # failed probes in a row, at worst
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        blind = 0
        while not self.stop.is_set():
            try:
                sample = self.probe()
                self.taken_at.append(time.monotonic())
                self.samples.append(sample)
                blind = 0
            except Exception as error:  # any failure is a sample missed, and said
                self.failures.append(f"{type(error).__name__}: {error}"[:300])
                blind += 1
                self.longest_blind = max(self.longest_blind, blind)
            time.sleep(0.05)

    def problems(self, what: str) -> list[str]:
        """Why the samples cannot vouch for the whole window ([] when they can)."""
        found = []
        if not self.samples:
            found.append(f"{what}: not one sample was taken")
        if self.longest_blind >= BLIND_SAMPLES:
            found.append(
                f"{what}: {self.longest_blind} probes in a row failed ({len(self.failures)} in all; "
                f"first: {self.failures[0]})"
            )
        return found

    def seconds_where(self, test: Callable[[T], bool]) -> float:
        """How long the samples said `test`: each sample holds until the next one was taken."""
        pairs = zip(self.taken_at, self.taken_at[1:], self.samples, strict=False)
        return sum(later - at for at, later, sample in pairs if test(sample))

    def __enter__(self) -> Sampler[T]:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def ReadyEndpoints(api: client.ApiClient, namespace: str, service: str) -> Sampler[int]:
    """How many ready endpoints the Service has, over time."""
    discovery = client.DiscoveryV1Api(api)

    def count() -> int:
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items
        return sum(1 for s in slices for e in s.endpoints or [] if e.conditions and e.conditions.ready)

    return Sampler(count)


def AttachedNodes(api: client.ApiClient, volume: str) -> Sampler[set[str]]:
    """The nodes the volume is attached to (VolumeAttachments), over time."""
    storage = client.StorageV1Api(api)

    def nodes() -> set[str]:
        items = storage.list_volume_attachment().items
        return {v.spec.node_name for v in items if v.spec.source.persistent_volume_name == volume}

    return Sampler(nodes)
