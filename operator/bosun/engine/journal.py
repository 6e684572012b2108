"""The operation's log as the engine writes it: Python logging plus Kubernetes Events.

Events make `kubectl describe` tell the story, on the Operation and on its target, but they
expire, so they are never the only record: the status keeps the outcome, and the log store
keeps the lines.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bosun.kube import Kube

logger = logging.getLogger("bosun.operation")


class KubeJournal:
    def __init__(self, kube: Kube, operation: dict[str, Any], target: dict[str, Any] | None) -> None:
        self.kube = kube
        self.operation = operation
        self.target = target
        self.lines: list[str] = []
        self._pending: set[asyncio.Task[None]] = set()
        meta = operation["metadata"]
        self._extra = {"operation": meta["name"], "namespace": meta["namespace"]}

    def info(self, message: str) -> None:
        self._write(message, warning=False)

    def warning(self, message: str) -> None:
        self._write(message, warning=True)

    def _write(self, message: str, *, warning: bool) -> None:
        self.lines.append(message)
        logger.log(logging.WARNING if warning else logging.INFO, message, extra=self._extra)
        reason = "OperationWarning" if warning else "OperationProgress"
        name = self.operation["metadata"]["name"]
        for involved, text in ((self.operation, message), (self.target, f"operation {name}: {message}")):
            if involved is None:
                continue
            task = asyncio.get_running_loop().create_task(
                self.kube.emit_event(involved, reason=reason, message=text, warning=warning)
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
