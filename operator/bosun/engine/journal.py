"""The operation's log as the engine writes it: Python logging plus Kubernetes Events.

Events make `kubectl describe` tell the story, on the Operation and on its target, but they
expire, so they are never the only record: the status keeps the outcome, and the log store
keeps the lines.

The Operation's events carry every line. Its target's carry the milestones (the operation's
start and end) and the warnings: `kubectl describe app` says which operations ran and how they
ended, as a Deployment's events say which ReplicaSets it scaled, not every pod. Every line
mirrored there doubled the events (an App deploy posted 20, each a write to the API server).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bosun.engine.oplog import OperationLog
from bosun.kube import Kube

logger = logging.getLogger("bosun.operation")


class KubeJournal:
    def __init__(
        self, kube: Kube, operation: dict[str, Any], target: dict[str, Any] | None, log: OperationLog | None = None
    ) -> None:
        self.kube = kube
        self.log = log
        self.operation = operation
        self.target = target
        self.lines: list[str] = []
        self._events: asyncio.Queue[tuple[dict[str, Any], str, bool]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        meta = operation["metadata"]
        self._extra = {"operation": meta["name"], "namespace": meta["namespace"]}

    def info(self, message: str) -> None:
        self._write(message, warning=False, milestone=False)

    def milestone(self, message: str) -> None:
        """A line the target's events carry too: the operation's start and end."""
        self._write(message, warning=False, milestone=True)

    def warning(self, message: str) -> None:
        self._write(message, warning=True, milestone=True)

    def _write(self, message: str, *, warning: bool, milestone: bool) -> None:
        self.lines.append(message)
        if self.log is not None:
            self.log.add(message, warning=warning)
        logger.log(logging.WARNING if warning else logging.INFO, message, extra=self._extra)
        name = self.operation["metadata"]["name"]
        self._events.put_nowait((self.operation, message, warning))
        if self.target and milestone:
            self._events.put_nowait((self.target, f"operation {name}: {message}", warning))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._post())

    async def _post(self) -> None:
        """Post events one by one, in order, so `kubectl describe` reads as the story went."""
        while not self._events.empty():
            involved, text, warning = self._events.get_nowait()
            reason = "OperationWarning" if warning else "OperationProgress"
            await self.kube.emit_event(involved, reason=reason, message=text, warning=warning)

    async def flush(self) -> None:
        """Wait until every event is posted, even if the caller is being cancelled meanwhile."""
        if self._worker is not None:
            await asyncio.shield(self._worker)
