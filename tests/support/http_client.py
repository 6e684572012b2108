"""A client that requests an App's Service at a steady rate and counts every failed request.

Each request is a new connection to the Service's ClusterIP: the host runs kube-proxy (hack/real-nodes),
so which pod answers is kube-proxy's choice, from the Service's EndpointSlices, as for any client
in the cluster. A request fails on a refused or reset connection, a timeout or a non-2xx answer;
each failure is kept with its time and reason.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from kubernetes import client

from tests.support.real_nodes import cluster_ip
from tests.support.waiting import wait_for


@dataclass
class RequestCounter:
    core: client.CoreV1Api
    namespace: str
    service: str
    port: int = 8080
    rate: float = 20.0
    ok: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    address: str = ""
    stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> RequestCounter:
        """Count from the first answer on: until kube-proxy has the Service's endpoints in its rules
        (it syncs at most once a second), a refusal says nothing about the App."""
        self.address = cluster_ip(self.core, self.namespace, self.service)
        wait_for(self._answers, timeout=60, interval=0.1, what=f"{self.service} to answer on {self.address}")
        threading.Thread(target=self._request, daemon=True).start()
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.address}:{self.port}/", timeout=2) as answer:
                answer.read()
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            return False
        return True

    def stop(self) -> None:
        self.stopped.set()

    def _request(self) -> None:
        while not self.stopped.is_set():
            began = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://{self.address}:{self.port}/", timeout=2) as answer:
                    answer.read()
                self.ok += 1
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                self.failures.append((time.monotonic(), str(error)))
            self.stopped.wait(max(0.0, 1 / self.rate - (time.monotonic() - began)))
