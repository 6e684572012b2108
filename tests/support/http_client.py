"""A client that requests an App's Service at a steady rate and counts every failed request.

The host runs no kube-proxy, so the client does what kube-proxy would: it reads the Service's
EndpointSlices every 100 ms and sends each request to the next ready address, round robin. A
request fails on a refused or reset connection, a timeout or a non-2xx answer; each failure is
kept with its time and reason.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from kubernetes import client


@dataclass
class RequestCounter:
    core: client.CoreV1Api
    namespace: str
    service: str
    port: int = 8080
    rate: float = 20.0
    ok: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> RequestCounter:
        threading.Thread(target=self._follow, daemon=True).start()
        deadline = time.monotonic() + 30
        while not self.addresses and time.monotonic() < deadline:  # the first read, before any request
            time.sleep(0.05)
        threading.Thread(target=self._request, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _follow(self) -> None:
        discovery = client.DiscoveryV1Api(self.core.api_client)
        while not self.stopped.is_set():
            with contextlib.suppress(Exception):
                slices = discovery.list_namespaced_endpoint_slice(
                    self.namespace, label_selector=f"kubernetes.io/service-name={self.service}"
                ).items
                self.addresses = sorted(
                    address
                    for piece in slices
                    for endpoint in piece.endpoints or []
                    if endpoint.conditions and endpoint.conditions.ready
                    for address in endpoint.addresses
                )
            self.stopped.wait(0.1)

    def _request(self) -> None:
        turn = itertools.count()
        while not self.stopped.is_set():
            began = time.monotonic()
            addresses = list(self.addresses)
            if addresses:
                address = addresses[next(turn) % len(addresses)]
                try:
                    with urllib.request.urlopen(f"http://{address}:{self.port}/", timeout=2) as answer:
                        answer.read()
                    self.ok += 1
                except (urllib.error.URLError, OSError) as error:
                    self.failures.append((time.monotonic(), f"{address}: {error}"))
            else:
                self.failures.append((time.monotonic(), "no ready endpoint"))
            self.stopped.wait(max(0.0, 1 / self.rate - (time.monotonic() - began)))
