"""The one writer of Operation status.

Every status write goes through `StatusWriter.save`: it derives what can be derived (progress,
conditions, observedGeneration) so no caller can write a phase without the matching conditions,
then patches the status subresource. A write that fails transiently is retried until it lands:
the runner persists *before* acting, so waiting here is always safe, and acting without the
record would not be.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bosun.engine import record
from bosun.engine.runner import utc_now
from bosun.errors import TransientError
from bosun.kube import Kube
from bosun.models.operation import OperationLogStatus, OperationStatus

logger = logging.getLogger(__name__)


class StatusWriter:
    def __init__(
        self, kube: Kube, namespace: str, name: str, generation: int | None, *, max_backoff: float = 5.0
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.generation = generation
        self.max_backoff = max_backoff
        self.writes = 0
        self.log: Callable[[], OperationLogStatus] | None = None  # the operation log's tail, when there is one

    def complete(self, status: OperationStatus) -> None:
        """Fill in the derived fields."""
        if status.steps:
            status.progress = record.progress(status)
        status.observed_generation = self.generation
        status.conditions = record.conditions(status, self.generation, utc_now())
        if self.log is not None:
            status.log = self.log()

    async def save(self, status: OperationStatus) -> None:
        self.complete(status)
        body = status.wire()
        delay = 0.2
        while True:
            try:
                await self.kube.patch_status("Operation", self.namespace, self.name, body)
                self.writes += 1
                return
            except TransientError as error:
                logger.warning("status write of %s/%s failed, retrying: %s", self.namespace, self.name, error)
                await asyncio.sleep(delay)
                delay = min(self.max_backoff, delay * 2)
