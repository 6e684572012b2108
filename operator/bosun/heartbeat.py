"""Liveness that notices dead watch streams.

A watch can stop delivering events without closing. The operator therefore writes a heartbeat
(an annotation on its own ConfigMap) every few seconds and watches that ConfigMap through the
same Kopf machinery as its resources; `/healthz` fails when no heartbeat has come back for three
periods, or when the API server does not answer. Kubernetes then restarts the pod, and the
restarted operator resumes every operation from its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube
from bosun.models.base import now

LABEL = "bosun.dev/heartbeat"
NAME = "bosun-heartbeat"

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, kube: Kube, namespace: str, period: float) -> None:
        self.kube = kube
        self.namespace = namespace
        self.period = period
        self.started = time.monotonic()
        self.last_seen: float | None = None
        self._task: asyncio.Task[None] | None = None

    def seen(self) -> None:
        """Called by the watch handler when the heartbeat ConfigMap's event arrives."""
        self.last_seen = time.monotonic()

    def stale_for(self) -> float:
        return time.monotonic() - (self.last_seen or self.started)

    def healthy(self) -> bool:
        return self.stale_for() < 3 * self.period + 5

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _beat(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._touch(), timeout=max(1.0, self.period))
            except (TransientError, PermanentError, TimeoutError) as error:
                logger.warning("heartbeat write failed: %s", error)
            await asyncio.sleep(self.period)

    async def _touch(self) -> None:
        stamp = now().isoformat()
        current = await self.kube.read_config_map(self.namespace, NAME)
        if current is None:
            await self.kube.create_config_map(self.namespace, NAME, {"beat": stamp}, labels={LABEL: "true"})
        else:
            current["data"] = {"beat": stamp}
            await self.kube.replace_config_map(self.namespace, current)
