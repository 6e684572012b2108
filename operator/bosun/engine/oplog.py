"""An operation's own log: numbered, timestamped lines, the tail in its status, the whole in the store.

The store may be down; the operation must not wait for it. Lines are kept in memory and the whole
log object is rewritten every `flush_seconds` while anything is new, so a store that comes back
gets every line.

No line the status ever showed is lost to a crash. The status shows the last `tail` lines and, on
top of them, every line the store is not known to hold yet (up to `max_shown`), so the status
written before a SIGKILL still carries whatever the store missed. A restarted operator `resume`s
the log: it reads the store's copy and completes it from that status tail, then numbers its own
lines on from there. Lines the store got but the status never showed are kept too. So that the
status stays writable, it shows a line over 4 KiB cut and 256 KiB of lines at most: a crash while
the store is down can then cost the end of a long line, or the oldest unstored lines.

Every flush also goes to the log's copy in the operation's namespace (`LogCopy`, ConfigMaps that
people read through the API server): each is tried even when the other is down, and the lines count
as written only once both have them.

A message of several lines becomes as many log lines, so that a line number means the same in
the status, the store and the copy.

A write whose outcome is unknown (sent, but no answer or an error answer) may still land later,
after a newer and longer body, and shorten the stored log again; so may a write a store answered
while it came back from an outage (seen with SeaweedFS: a 7-line body landed after the 11-line one
that followed it). Such a log is not settled, so its operation is not archived, until a read of
the store at least `unsure_seconds` after that write finds every line (else the whole log is
written again).

Memory held for an unreachable store is bounded: at most `max_held` lines per operation wait in
memory; beyond that, lines go to the operator's own log only, and the operation's log says how many
were not kept once the store is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Protocol

from bosun import metrics
from bosun.models.base import now
from bosun.models.operation import OperationLogStatus
from bosun.store import StillUnsure, Store, StoreOutcomeUnknown, StoreUnavailable

logger = logging.getLogger(__name__)
TAIL_LINES = 50
MAX_SHOWN = 500  # lines in status at most (about 75 kB): the tail plus what the store lacks
MAX_HELD = 20_000  # lines one operation holds in memory while the store is unreachable
UNSURE_SECONDS = 30.0  # after a write of unknown outcome, when a read of the store is trusted
RECOVERING_SECONDS = 120.0  # after the store failed this log, its writes count as of unknown outcome
LOST = "(this line was lost: the operator stopped while the log store was unreachable)"
_background: set[asyncio.Task[None]] = set()  # strong references to flushes that outlive their operation


STATUS_LINE_BYTES = 4096  # a line as the status shows it; the store and the copy keep it whole
STATUS_LOG_BYTES = 256 * 1024  # the lines in status at most, whatever they hold


def capped(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, saying how much more the log holds."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    kept = raw[: max(0, limit - 40)].decode(errors="ignore")
    return f"{kept} ... ({len(raw) - len(kept.encode())} more bytes in the log)"


def log_key(namespace: str, name: str, uid: str) -> str:
    return f"logs/{namespace}/{name}-{uid[:8]}.log"


def merged(stored: list[str], total: int, tail: list[str]) -> list[str]:
    """An earlier process's log: the store's copy, completed from the tail its status kept.

    `total` is how many lines the status counted; `tail` are its last lines. Lines neither kept
    are marked lost, so numbering never skips.
    """
    if len(stored) >= total:
        return list(stored)
    start = total - len(tail)
    out = list(stored) + [LOST] * max(0, start - len(stored))
    return out + tail[len(out) - start :]


class LogCopy(Protocol):
    """Where people read the log (see `engine.logcopy`); raises StoreUnavailable while unreachable."""

    async def read(self) -> bytes: ...

    async def write(self, body: bytes) -> None: ...

    @property
    def remembered(self) -> bool:
        """This process wrote the copy, so it knows what it holds without reading it."""
        ...


_LIVE: weakref.WeakSet[OperationLog] = weakref.WeakSet()  # every log this process still holds lines of


def held(key: str) -> list[OperationLog]:
    """This process's logs of `key` that still hold lines the store lacks (a driver's, after it ended)."""
    return [log for log in list(_LIVE) if log.key == key and log.writes and not log.settled]


def _buffered() -> float:
    return float(sum(log.pending for log in list(_LIVE) if log.writes))


metrics.LOG_LINES_BUFFERED.set_function(_buffered)


class OperationLog:
    def __init__(
        self,
        store: Store | None,
        key: str,
        *,
        flush_seconds: float = 1.0,
        tail: int = TAIL_LINES,
        max_shown: int = MAX_SHOWN,
        max_held: int = MAX_HELD,
        copy: LogCopy | None = None,
        unsure_seconds: float = UNSURE_SECONDS,
    ) -> None:
        self.store = store
        self.unsure_seconds = unsure_seconds
        self._unsure_at: float | None = None  # when a store write last ended with no answer
        self._failed_at: float | None = None  # when the store last failed this log
        self._rewriting = False  # a read-back found lines missing; not every sink has the whole log yet
        self.copy = copy
        self.key = key
        self.flush_seconds = flush_seconds
        self.tail = tail
        self.max_shown = max_shown
        self.max_held = max_held
        self.lines: list[str] = []  # this process's lines
        self.dropped = 0
        self._earlier: list[str] | None = []  # the earlier processes' lines; None until the store is read
        self._earlier_total = 0
        self._earlier_tail: list[str] = []
        self._flushed = 0
        self._warned = False
        self._flusher: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # one flush at a time: a later body never lands before an earlier one
        _LIVE.add(self)

    async def resume(self, earlier: OperationLogStatus | None) -> None:
        """Continue the log an earlier operator process wrote (its status says how far it got)."""
        if earlier is None or earlier.total == 0:
            return
        self._earlier_total, self._earlier_tail = earlier.total, list(earlier.lines)
        self._earlier = None
        try:
            await self.settle()  # the store gets what only the status kept, before anything new
        except StoreUnavailable as error:
            self._earlier = None
            self._failed_at = asyncio.get_running_loop().time()
            logger.warning("log store unavailable on resume of %s (merged later): %s", self.key, error)

    @property
    def writes(self) -> bool:
        """The log goes somewhere beyond the status (a store, a copy or both)."""
        return self.store is not None or self.copy is not None

    async def _stored(self) -> list[str]:
        if self.store is not None:
            try:
                data = await self.store.get(self.key)
            except StoreUnavailable:
                self._failed_at = asyncio.get_running_loop().time()  # the writes after it are read back
                raise
        else:
            data = await self.copy.read() if self.copy is not None else None
        text = (data or b"").decode(errors="replace")
        return text.split("\n")[:-1] if text else []

    async def _read_earlier(self) -> list[str]:
        if self._earlier is None:
            stored = await self._stored()
            if self.lines and len(stored) > self._earlier_total:
                # This process numbered its lines from the status's count: they keep their numbers,
                # and lines only the store got before the restart come after them, marked as late.
                late = stored[self._earlier_total :]
                stored = stored[: self._earlier_total]
                self.lines.extend(self.format(f"(written before the restart, shown late) {line}") for line in late)
            self._earlier = merged(stored, self._earlier_total, self._earlier_tail)
        return self._earlier

    @staticmethod
    def format(message: str, *, warning: bool = False) -> str:
        at = now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return f"{at} {'WARNING' if warning else 'INFO':<7} {message}"

    def add(self, message: str, *, warning: bool = False) -> None:
        for part in message.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            self._add(self.format(part, warning=warning))

    def _add(self, line: str) -> None:
        if self.writes and self.pending >= self.max_held:
            self.dropped += 1  # the operator's own log still has it
            metrics.LOG_LINES_DROPPED.inc()
            return
        self.lines.append(line)
        if self.writes and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    @property
    def _before(self) -> int:
        return len(self._earlier) if self._earlier is not None else self._earlier_total

    @property
    def total(self) -> int:
        return self._before + len(self.lines)

    def status(self) -> OperationLogStatus:
        earlier = self._earlier if self._earlier is not None else self._earlier_tail
        unstored = self.pending + (len(self._earlier_tail) if self._earlier is None else 0)
        shown = min(self.max_shown, max(self.tail, unstored))
        lines = [capped(line, STATUS_LINE_BYTES) for line in (earlier[-shown:] + self.lines)[-shown:]] if shown else []
        while sum(len(json.dumps(line)) for line in lines) > STATUS_LOG_BYTES:  # as sent (escapes count); oldest go
            lines = lines[len(lines) // 4 or 1 :]
        return OperationLogStatus(
            url=self.store.url(self.key) if self.store is not None else "",
            lines=lines,
            total=self.total,
        )

    @property
    def settled(self) -> bool:
        """The store holds every line this log knows of (its own, and the earlier processes')."""
        return not self._unfinished

    @property
    def _unfinished(self) -> bool:
        return bool(self.pending or self._earlier is None or self.dropped or self._unsure_at is not None)

    @property
    def pending(self) -> int:
        return len(self.lines) - self._flushed

    async def flush(self) -> None:
        """Write the whole log; raises StoreUnavailable (and keeps every line) if the store is down."""
        async with self._writing:
            await self._flush()

    async def _flush(self) -> None:
        if not self.writes or not self._unfinished:
            return
        if not self.pending and self._earlier is not None and not self.dropped:
            await self._check_unsure()
            return
        earlier = await self._read_earlier()
        if self.dropped:
            note = f"{self.dropped} line(s) were not kept: the log store was unreachable for too long"
            self.lines.append(self.format(note, warning=True))
            self.dropped = 0
        upto = len(self.lines)
        body = "".join(line + "\n" for line in [*earlier, *self.lines[:upto]]).encode()
        await self._write(body)
        self._flushed = upto
        if self._warned or self._unsure_at is not None:
            logger.info("log store: %s written (%d lines)", self.key, len(earlier) + upto)
            self._warned = False

    async def _write(self, body: bytes) -> None:
        """To the store and the copy: each is tried, and the first failure is raised after both."""
        failures: list[StoreUnavailable] = []
        for sink in (self.store and self._to_store, self.copy and self.copy.write):
            if sink:
                try:
                    await sink(body)
                except StoreUnavailable as error:
                    failures.append(error)
        if failures:
            raise failures[0]

    async def _to_store(self, body: bytes) -> None:
        if self.store is not None:
            try:
                await self.store.put(self.key, body)
                now = asyncio.get_running_loop().time()
                if self._failed_at is not None and now - self._failed_at < RECOVERING_SECONDS:
                    # A store coming back from an outage answered writes it carried out later,
                    # after newer ones (seen with SeaweedFS): trusted only once read back.
                    self._unsure_at = now
            except StoreOutcomeUnknown as error:
                self._unsure_at = self._failed_at = asyncio.get_running_loop().time()
                logger.warning(
                    "a write of %s may land later (checked again in %.0fs): %s", self.key, self.unsure_seconds, error
                )
                raise
            except StoreUnavailable:
                self._failed_at = asyncio.get_running_loop().time()
                raise

    async def _check_unsure(self) -> None:
        """Once a write of unknown outcome can no longer land, make sure the store has every line."""
        assert self._unsure_at is not None and self._earlier is not None
        waited = asyncio.get_running_loop().time() - self._unsure_at
        if waited < self.unsure_seconds:
            raise StillUnsure(
                f"a write of {self.key} got no answer: the store is read again {self.unsure_seconds:.0f}s after it",
                self.unsure_seconds - waited,
            )
        whole = [*self._earlier, *self.lines[: self._flushed]]
        stored = await self._stored()
        logger.info(
            "log store: %s read back %.0fs after its last write: %d of %d lines",
            self.key,
            waited,
            len(stored),
            len(whole),
        )
        if len(stored) < len(whole) or self._rewriting:
            logger.warning(
                "%s lost lines to a late write (%d of %d): writing it again", self.key, len(stored), len(whole)
            )
            self._rewriting = True  # until the store and the copy both took it (the copy may fail alone)
            await self._write("".join(line + "\n" for line in whole).encode())  # raises: checked again later
            self._rewriting = False
        # The repair is trusted once answered, though the store may still be coming back: reading it
        # back again would hold the archive past a minute after an outage (the fault harness's bound).
        self._unsure_at = None

    async def settle(self) -> None:
        """Make sure the store and the copy hold every line the status knows of (after a restart, say)."""
        if not self.writes or not self._earlier_total:
            return
        stored = await self._stored()
        best = stored
        if self.copy is not None and self.store is not None and not self.copy.remembered:
            # Another process wrote the copy: it may hold lines whose store write failed before a crash.
            copied = (await self.copy.read()).decode(errors="replace").split("\n")[:-1]
            best = copied if len(copied) > len(stored) else stored
        self._earlier = merged(best, self._earlier_total, self._earlier_tail)
        body = "".join(line + "\n" for line in self._earlier).encode()
        if len(stored) < len(self._earlier):
            await self._write(body)
        elif self.copy is not None:
            await self.copy.write(body)  # the store had it all; the copy may not have (a no-op if it has)

    async def _flush_soon(self) -> None:
        delay = self.flush_seconds
        while self._unfinished:
            await asyncio.sleep(delay)
            try:
                await self.flush()
                delay = self.flush_seconds
            except StillUnsure as unsure:
                delay = unsure.seconds + 0.1  # then the read is trusted: no backoff past it
            except StoreUnavailable as error:
                self._failed_at = asyncio.get_running_loop().time()
                if not self._warned:
                    logger.warning("log store unavailable, keeping %d lines in memory: %s", self.pending, error)
                    self._warned = True
                delay = min(30.0, delay * 2)

    def close(self) -> None:
        """The operation ended: make sure the last lines reach the store, however long it takes."""
        if not self.writes:
            return
        if self._flusher is None or self._flusher.done():
            if not self._unfinished:
                return
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())
        _background.add(self._flusher)
        self._flusher.add_done_callback(_background.discard)
