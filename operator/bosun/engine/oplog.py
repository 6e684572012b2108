"""An operation's own log: numbered, timestamped lines, the tail in its status, the whole in the store.

The store may be down; the operation must not wait for it. Lines are kept in memory and the whole
log object is rewritten every `flush_seconds` while anything is new, so a store that comes back
gets every line. When the operation ends, a flush that fails keeps retrying in the background
until it lands. After an operator restart the log object is read back first and new lines are
appended to it, numbered on from the count the status recorded.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from bosun.models.operation import OperationLogStatus
from bosun.store import Store, StoreUnavailable

logger = logging.getLogger(__name__)
TAIL_LINES = 50
_background: set[asyncio.Task[None]] = set()  # strong references to flushes that outlive their operation


def log_key(namespace: str, name: str, uid: str) -> str:
    return f"logs/{namespace}/{name}-{uid[:8]}.log"


class OperationLog:
    def __init__(
        self,
        store: Store | None,
        key: str,
        *,
        first_line: int = 0,
        earlier_tail: list[str] | None = None,
        flush_seconds: float = 1.0,
        tail: int = TAIL_LINES,
    ) -> None:
        self.store = store
        self.key = key
        self.first_line = first_line
        self.flush_seconds = flush_seconds
        self.tail = tail
        self.lines: list[str] = []
        self.earlier_tail = list(earlier_tail or [])  # the tail a previous process left in the status
        self._earlier: bytes | None = None  # what a previous operator process stored
        self._flushed = 0
        self._warned = False
        self._flusher: asyncio.Task[None] | None = None

    def add(self, message: str, *, warning: bool = False) -> str:
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = f"{at} {'WARNING' if warning else 'INFO':<7} {message}"
        self.lines.append(line)
        if self.store is not None and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())
        return line

    @property
    def total(self) -> int:
        return self.first_line + len(self.lines)

    def status(self) -> OperationLogStatus:
        return OperationLogStatus(
            url=self.store.url(self.key) if self.store is not None else "",
            lines=(self.earlier_tail + self.lines)[-self.tail :],
            total=self.total,
        )

    @property
    def pending(self) -> int:
        return len(self.lines) - self._flushed

    async def flush(self) -> None:
        """Write the whole log; raises StoreUnavailable (and keeps every line) if the store is down."""
        if self.store is None or not self.pending:
            return
        if self._earlier is None:
            self._earlier = (await self.store.get(self.key) or b"") if self.first_line else b""
        upto = len(self.lines)
        body = self._earlier + "".join(line + "\n" for line in self.lines[:upto]).encode()
        await self.store.put(self.key, body)
        self._flushed = upto
        if self._warned:
            logger.info("log store reachable again: %s written (%d lines)", self.key, self.total)
            self._warned = False

    async def _flush_soon(self) -> None:
        delay = self.flush_seconds
        while self.pending:
            await asyncio.sleep(delay)
            try:
                await self.flush()
                delay = self.flush_seconds
            except StoreUnavailable as error:
                if not self._warned:
                    logger.warning("log store unavailable, keeping %d lines in memory: %s", self.pending, error)
                    self._warned = True
                delay = min(30.0, delay * 2)

    def close(self) -> None:
        """The operation ended: make sure the last lines reach the store, however long it takes."""
        if self.store is None:
            return
        if self._flusher is None or self._flusher.done():
            if not self.pending:
                return
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())
        _background.add(self._flusher)
        self._flusher.add_done_callback(_background.discard)
