"""The one writer of Operation status.

Every status write goes through `StatusWriter.save`: it derives what can be derived (progress,
conditions, observedGeneration) so no caller can write a phase without the matching conditions,
then patches the status subresource. A write that fails transiently is retried until it lands:
the runner persists *before* acting, so waiting here is always safe, and acting without the
record would not be.

Status stays small whatever a message holds: every text copied into it is capped (the whole text
is in the operation's log), because a status the API server refuses for its size is a record that
never lands, and an operation that cannot be recorded would hold its target's queue for good. A
write refused for its size anyway is tried once more with tighter caps and without the log tail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bosun.engine import record
from bosun.engine.oplog import capped
from bosun.errors import TransientError
from bosun.kube import TooLarge
from bosun.kube_status import StatusWrites
from bosun.models.base import stamp
from bosun.models.operation import OperationLogStatus, OperationStatus

logger = logging.getLogger(__name__)

MESSAGE_BYTES = 2048  # the operation's message, copied into each of its conditions
STEP_MESSAGE_BYTES = 1024
TIGHT_BYTES = 256  # after a write refused for its size


def cap_texts(status: OperationStatus, message: int = MESSAGE_BYTES, step: int = STEP_MESSAGE_BYTES) -> None:
    status.message = capped(status.message, message)
    status.queued_behind = capped(status.queued_behind, 253)
    for each in status.steps:
        each.message = capped(each.message, step)
    if status.rollback is not None:
        status.rollback.message = capped(status.rollback.message, message)
        for kept in status.rollback.not_undone:
            kept.reason = capped(kept.reason, step)


class StatusWriter:
    def __init__(
        self, api: StatusWrites, namespace: str, name: str, generation: int | None, *, max_backoff: float = 5.0
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.generation = generation
        self.max_backoff = max_backoff
        self.writes = 0
        self.log: Callable[[], OperationLogStatus] | None = None  # the operation log's tail, when there is one

    def complete(self, status: OperationStatus) -> None:
        """Fill in the derived fields."""
        cap_texts(status)
        if status.steps:
            status.progress = record.progress(status)
        status.observed_generation = self.generation
        status.conditions = record.conditions(status, self.generation, stamp())
        if self.log is not None:
            status.log = self.log()

    async def save(self, status: OperationStatus) -> None:
        self.complete(status)
        body = status.wire()
        for field in CLEARED_WHEN_UNSET:  # a merge patch keeps what it does not name: null removes it
            body.setdefault(field, None)
        body.pop("notified", None)  # the notifier's: a copy read before its last write would undo it
        delay = 0.2
        while True:
            try:
                await self.api.patch_status("Operation", self.namespace, self.name, body)
                self.writes += 1
                return
            except TooLarge as error:
                if body.get("log") is None and all(len(str(v)) <= TIGHT_BYTES for v in _texts(status)):
                    raise  # nothing left to shrink that is not the record itself
                logger.warning("status of %s/%s too large, writing it smaller: %s", self.namespace, self.name, error)
                cap_texts(status, TIGHT_BYTES, TIGHT_BYTES)
                status.conditions = record.conditions(status, self.generation, stamp())
                status.log = None
                body = {**dict.fromkeys(CLEARED_WHEN_UNSET), **status.wire()}
                body.pop("notified", None)
            except TransientError as error:
                logger.warning("status write of %s/%s failed, retrying: %s", self.namespace, self.name, error)
                await asyncio.sleep(delay)
                delay = min(self.max_backoff, delay * 2)


CLEARED_WHEN_UNSET = ("startsAt",)  # set while an operation waits, gone once it starts


def _texts(status: OperationStatus) -> list[str]:
    return [status.message, *(s.message for s in status.steps)]
