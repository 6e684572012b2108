"""The operation log: numbered lines, a tail for the status, and no line lost while the store is down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bosun.engine.oplog import LOST, OperationLog, held, log_key, merged
from bosun.store import LocalStore, StoreOutcomeUnknown, StoreUnavailable


class Outage(LocalStore):
    """A real directory store that can be switched off, as a network store goes away."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.down = False
        self.reads_down = False

    async def put(self, key: str, data: bytes) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")
        await super().put(key, data)

    async def get(self, key: str) -> bytes | None:
        if self.down and self.reads_down:
            raise StoreUnavailable("connection refused")
        return await super().get(key)


def stored_lines(store: LocalStore, key: str) -> list[str]:
    return (store.root / key).read_text().splitlines()


async def test_lines_reach_the_store_and_the_status_keeps_the_tail(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    log = OperationLog(store, log_key("ns", "op", "0123456789"), flush_seconds=0.01, tail=3)
    for n in range(5):
        log.add(f"line {n}", warning=n == 4)
    await asyncio.sleep(0.1)
    lines = stored_lines(store, "logs/ns/op-01234567.log")
    assert [line.split(" ", 2)[2].strip() for line in lines] == [f"line {n}" for n in range(5)]
    assert lines[4].split()[1] == "WARNING"
    status = log.status()
    assert status.total == 5 and [line.rsplit(" ", 1)[1] for line in status.lines] == ["2", "3", "4"]
    assert status.url == (tmp_path / "logs/ns/op-01234567.log").resolve().as_uri()


async def test_store_down_buffers_and_flushes_everything_when_it_returns(tmp_path: Path) -> None:
    store = Outage(tmp_path)
    log = OperationLog(store, "logs/ns/op.log", flush_seconds=0.01)
    log.add("before")
    await asyncio.sleep(0.05)
    store.down = True
    for n in range(3):
        log.add(f"during {n}")
    await asyncio.sleep(0.1)
    assert log.pending == 3
    assert len(stored_lines(store, "logs/ns/op.log")) == 1
    log.close()  # the operation ends while the store is still down
    store.down = False
    for _ in range(100):
        if not log.pending:
            break
        await asyncio.sleep(0.05)
    assert [line.split(" ", 2)[2].strip() for line in stored_lines(store, "logs/ns/op.log")] == [
        "before",
        "during 0",
        "during 1",
        "during 2",
    ]


async def test_a_resumed_operation_appends_to_the_log_of_the_process_before(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = OperationLog(store, "logs/ns/op.log", flush_seconds=0.01)
    first.add("one")
    first.add("two")
    await first.flush()
    second = OperationLog(store, "logs/ns/op.log", flush_seconds=0.01)
    await second.resume(first.status())
    second.add("three")
    await second.flush()
    assert [line.split(" ", 2)[2].strip() for line in stored_lines(store, "logs/ns/op.log")] == ["one", "two", "three"]
    assert second.status().total == 3
    assert [line.split(" ", 2)[2].strip() for line in second.status().lines] == ["one", "two", "three"]


async def test_lines_the_status_showed_survive_a_crash_before_their_flush(tmp_path: Path) -> None:
    """SIGKILL after a status write but before the store got the lines: the next process restores them."""
    store = LocalStore(tmp_path)
    first = OperationLog(store, "logs/ns/op.log", flush_seconds=3600, tail=2)
    for n in range(3):
        first.add(f"early {n}")
    await first.flush()
    for n in range(6):
        first.add(f"late {n}")  # never flushed: the process dies here
    shown = first.status()  # the last status written before the crash
    assert shown.total == 9 and len(shown.lines) == 6  # the tail grew to cover every unstored line
    second = OperationLog(store, "logs/ns/op.log", flush_seconds=3600)
    await second.resume(shown)
    second.add("resumed")
    await second.flush()
    texts = [line.split(" ", 2)[2].strip() for line in stored_lines(store, "logs/ns/op.log")]
    assert texts == [*(f"early {n}" for n in range(3)), *(f"late {n}" for n in range(6)), "resumed"]
    assert second.status().total == 10


async def test_a_finished_operation_log_is_settled_by_the_next_process(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = OperationLog(store, "logs/ns/op.log", flush_seconds=3600)
    first.add("only in status")
    shown = first.status()
    later = OperationLog(store, "logs/ns/op.log")
    await later.resume(shown)
    await later.settle()
    assert [line.split(" ", 2)[2].strip() for line in stored_lines(store, "logs/ns/op.log")] == ["only in status"]


async def test_memory_held_for_an_unreachable_store_is_bounded(tmp_path: Path) -> None:
    store = Outage(tmp_path)
    store.down = True
    log = OperationLog(store, "logs/ns/op.log", flush_seconds=3600, max_held=5, max_shown=4)
    for n in range(12):
        log.add(f"line {n}")
    assert len(log.lines) == 5 and log.dropped == 7
    assert len(log.status().lines) == 4
    store.down = False
    await log.flush()
    texts = [line.split(" ", 2)[2].strip() for line in stored_lines(store, "logs/ns/op.log")]
    assert texts[:5] == [f"line {n}" for n in range(5)]
    assert "7 line(s) were not kept" in texts[5]


def test_merge_marks_lines_nobody_kept_as_lost() -> None:
    assert merged(["a"], 4, ["c", "d"]) == ["a", LOST, "c", "d"]
    assert merged(["a", "b", "c"], 2, ["b"]) == ["a", "b", "c"]  # the store got lines status never showed


async def test_an_unwritable_directory_is_reported_as_unavailable(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("a file where a directory should be")
    with pytest.raises(StoreUnavailable):
        await LocalStore(tmp_path).put("logs/ns/op.log", b"x")


async def test_a_log_still_holding_lines_is_found_so_nobody_else_writes_over_it(tmp_path: Path) -> None:
    """Settling an ended operation must not write the store's copy while its driver's log still holds
    lines: that write could land after the driver's and keep fewer lines (the fault harness saw it)."""
    store = Outage(tmp_path)
    key = log_key("ns", "op", "abcdef0123")
    log = OperationLog(store, key, flush_seconds=10, unsure_seconds=0.05)  # its flusher will not come back in time
    store.down = True
    log.add("first")
    log.add("last")
    log.close()
    assert held(key) == [log] and held(log_key("ns", "other", "abcdef0123")) == []
    with pytest.raises(StoreUnavailable):
        await log.flush()
    store.down = False
    await log.flush()
    assert held(key) == [log]  # written to a store just back: read back before it counts
    await asyncio.sleep(0.06)
    await log.flush()
    assert held(key) == [] and log.settled
    assert [line.split(" ", 2)[2].strip() for line in stored_lines(store, key)] == ["first", "last"]


class MemoryCopy:
    """The namespace copy's contract (read back what was written), kept in memory; the ConfigMap
    implementation is exercised against the API server in tests/cluster/test_activity.py."""

    def __init__(self) -> None:
        self.body = b""
        self.down = False
        self.writes = 0

    @property
    def remembered(self) -> bool:
        return False  # as after a restart: settling reads it

    async def read(self) -> bytes:
        return self.body

    async def write(self, body: bytes) -> None:
        if self.down:
            raise StoreUnavailable("API server busy")
        self.body, self.writes = body, self.writes + 1


async def test_the_copy_gets_the_store_s_bytes_and_catches_up_after_an_outage(tmp_path: Path) -> None:
    store, copy = LocalStore(tmp_path), MemoryCopy()
    log = OperationLog(store, "logs/ns/op.log", flush_seconds=3600, copy=copy)
    log.add("one")
    copy.down = True
    with pytest.raises(StoreUnavailable):
        await log.flush()
    assert log.pending == 1 and (tmp_path / "logs/ns/op.log").read_bytes()  # the store was still written
    copy.down = False
    log.add("two")
    await log.flush()
    assert copy.body == (tmp_path / "logs/ns/op.log").read_bytes() and log.settled


async def test_a_message_of_several_lines_is_as_many_numbered_lines(tmp_path: Path) -> None:
    copy = MemoryCopy()
    log = OperationLog(LocalStore(tmp_path), "logs/ns/op.log", flush_seconds=3600, copy=copy)
    log.add("Output:\nfirst\r\nsecond")
    await log.flush()
    assert log.total == 3 and copy.body.count(b"\n") == 3
    assert [line.split(" ", 2)[2].strip() for line in log.status().lines] == ["Output:", "first", "second"]


async def test_settling_after_a_restart_fills_a_copy_the_store_outran(tmp_path: Path) -> None:
    store, copy = LocalStore(tmp_path), MemoryCopy()
    first = OperationLog(store, "logs/ns/op.log", flush_seconds=3600)  # the copy was unreachable then
    first.add("stored only")
    await first.flush()
    later = OperationLog(store, "logs/ns/op.log", copy=copy)
    await later.resume(first.status())
    await later.settle()
    assert copy.body == (tmp_path / "logs/ns/op.log").read_bytes()


async def test_without_a_store_the_copy_is_read_back_on_resume() -> None:
    copy = MemoryCopy()
    first = OperationLog(None, "logs/ns/op.log", flush_seconds=3600, tail=1, copy=copy)
    for n in range(3):
        first.add(f"line {n}")
    await first.flush()
    second = OperationLog(None, "logs/ns/op.log", flush_seconds=3600, copy=copy)
    await second.resume(first.status())  # the status shows only the last line
    second.add("after")
    await second.flush()
    assert [line.split(" ", 2)[2].strip() for line in copy.body.decode().splitlines()] == [
        "line 0",
        "line 1",
        "line 2",
        "after",
    ]


async def test_a_restart_with_the_store_unreachable_keeps_line_numbers(tmp_path: Path) -> None:
    """Lines numbered from the status's count while the store was down keep their numbers once it is back."""
    store = Outage(tmp_path)
    first = OperationLog(store, "logs/ns/op.log", flush_seconds=3600, tail=2)
    for n in range(4):
        first.add(f"old {n}")
    await first.flush()
    shown = first.status()  # total 4
    first.add("old 4")  # reached the store, never the status: the process dies
    await first.flush()
    stored_before = stored_lines(store, "logs/ns/op.log")
    store.down = store.reads_down = True
    second = OperationLog(store, "logs/ns/op.log", flush_seconds=3600, tail=2)
    await second.resume(shown)
    second.add("new 0")
    assert second.status().total == 5  # "new 0" is line 5, as the status says
    store.down = False
    await second.flush()
    texts = [line.split(" ", 2)[2].strip() for line in stored_lines(store, "logs/ns/op.log")]
    assert texts[:5] == ["old 0", "old 1", "old 2", "old 3", "new 0"] and len(texts) == 6
    assert texts[5].endswith("(written before the restart, shown late) " + stored_before[4])  # nothing lost


async def test_settling_after_a_crash_keeps_lines_only_the_copy_got(tmp_path: Path) -> None:
    store, copy = Outage(tmp_path), MemoryCopy()
    first = OperationLog(store, "logs/ns/op.log", flush_seconds=3600, copy=copy)
    first.add("one")
    await first.flush()
    shown = first.status()
    store.down = True
    first.add("two")  # the copy got it, the store did not; then the process died
    with pytest.raises(StoreUnavailable):
        await first.flush()
    store.down = False
    later = OperationLog(store, "logs/ns/op.log", copy=copy)
    await later.resume(shown)
    await later.settle()
    assert [line.split(" ", 2)[2].strip() for line in stored_lines(store, "logs/ns/op.log")] == ["one", "two"]
    assert copy.body == (tmp_path / "logs/ns/op.log").read_bytes()


class LateWrites(LocalStore):
    """A store that, while `hold` is set, keeps a write and answers nothing (the client times out),
    then carries it out whenever `land()` is called: after newer writes, as a starting S3 gateway did."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.hold = False
        self.held: list[tuple[str, bytes]] = []

    async def put(self, key: str, data: bytes) -> None:
        if self.hold:
            self.held.append((key, data))
            raise StoreOutcomeUnknown("Read timeout on endpoint URL")
        await super().put(key, data)

    async def land(self) -> None:
        for key, data in self.held:
            await super().put(key, data)
        self.held.clear()


async def test_a_write_that_lands_late_over_a_newer_one_is_found_and_repaired(tmp_path: Path) -> None:
    """The fault harness's store/app-restart case lost 4 lines this way: 7 stored, 11 in status."""
    store = LateWrites(tmp_path)
    key = log_key("ns", "op", "0123456789")
    log = OperationLog(store, key, flush_seconds=0.01, unsure_seconds=0.3)
    for n in range(7):
        log.add(f"line {n}")
    store.hold = True
    with pytest.raises(StoreUnavailable):
        await log.flush()  # sent, no answer: it may still land
    store.hold = False
    for n in range(7, 11):
        log.add(f"line {n}")
    await log.flush()
    assert len(stored_lines(store, key)) == 11
    await store.land()  # the old 7-line body lands after the newer one
    assert len(stored_lines(store, key)) == 7
    assert not log.settled and held(key) == [log]  # not archived on the word of the newer write
    with pytest.raises(StoreUnavailable, match="read again"):
        await log.flush()  # too soon to trust a read
    log.close()
    await asyncio.sleep(1.5)  # read back, then written again
    assert [line.split(" ", 2)[2].strip() for line in stored_lines(store, key)] == [f"line {n}" for n in range(11)]
    assert log.settled and held(key) == []


async def test_a_write_of_unknown_outcome_that_did_not_land_costs_one_read(tmp_path: Path) -> None:
    store = LateWrites(tmp_path)
    key = log_key("ns", "op", "abcdef0123")
    log = OperationLog(store, key, flush_seconds=0.01, unsure_seconds=0.1)
    log.add("first")
    store.hold = True
    with pytest.raises(StoreUnavailable):
        await log.flush()
    store.hold, store.held = False, []  # the gateway dropped it
    log.close()
    await asyncio.sleep(0.4)
    assert log.settled and len(stored_lines(store, key)) == 1


async def test_status_shows_long_lines_cut_and_stays_small_while_the_store_keeps_them_whole(tmp_path: Path) -> None:
    store = Outage(tmp_path)
    key = log_key("ns", "op", "0123456789")
    log = OperationLog(store, key, flush_seconds=3600, max_shown=500)
    log.add("one long line: " + "y" * 100_000)
    await log.flush()
    assert len(stored_lines(store, key)[0]) > 100_000
    shown = log.status()
    assert len(shown.lines[0].encode()) <= 4096 and shown.lines[0].endswith("more bytes in the log)")
    store.down = True
    for n in range(400):  # unstored: the status would show them all, but not past its byte budget
        log.add(f"{n} " + "z" * 3000)
    assert sum(len(line) for line in log.status().lines) <= 256 * 1024 and log.status().total == 401


class Recovering(LateWrites):
    """A store back from an outage that answers a write at once but carries it out again later."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.down = False
        self.replay = False

    async def get(self, key: str) -> bytes | None:
        if self.down:
            raise StoreUnavailable("Could not connect to the endpoint URL")
        return await super().get(key)

    async def put(self, key: str, data: bytes) -> None:
        if self.down:
            raise StoreUnavailable("Could not connect to the endpoint URL")
        if self.replay:
            self.held.append((key, data))
        await LocalStore.put(self, key, data)


async def test_a_write_answered_by_a_recovering_store_and_replayed_later_is_repaired(tmp_path: Path) -> None:
    """What the fault sample's store/app-restart case met: 7 lines stored, 11 in status."""
    store = Recovering(tmp_path)
    key = log_key("ns", "op", "fedcba9876")
    log = OperationLog(store, key, flush_seconds=0.01, unsure_seconds=0.3)
    store.down = True
    log.add("while the store is down")
    await asyncio.sleep(0.1)  # the flusher fails: the store failed this log
    store.down, store.replay = False, True
    await log.flush()  # answered, but carried out again later
    store.replay = False
    for n in range(4):
        log.add(f"later {n}")
    await log.flush()
    await store.land()  # the first body again, over the newer one
    assert len(stored_lines(store, key)) == 1 and not log.settled
    log.close()
    await asyncio.sleep(1.5)
    assert len(stored_lines(store, key)) == 5 and log.settled


async def test_writes_to_a_store_that_never_failed_are_trusted_at_once(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    log = OperationLog(store, log_key("ns", "op", "0000000000"), flush_seconds=0.01, unsure_seconds=30)
    log.add("one")
    await log.flush()
    assert log.settled  # no read-back wait when nothing went wrong


async def test_a_repair_the_copy_missed_is_written_again_before_the_log_counts(tmp_path: Path) -> None:
    store, copy = LateWrites(tmp_path), MemoryCopy()
    key = log_key("ns", "op", "1111111111")
    log = OperationLog(store, key, flush_seconds=0.01, unsure_seconds=0.1, copy=copy)
    for n in range(3):
        log.add(f"line {n}")
    store.hold = True
    with pytest.raises(StoreUnavailable):
        await log.flush()  # unanswered; lands later
    store.hold = False
    log.add("line 3")
    await log.flush()
    await store.land()  # the store is short again
    copy.body, copy.down = b"", True  # and the copy cannot take the repair
    log.close()
    await asyncio.sleep(0.5)
    assert not log.settled and len(stored_lines(store, key)) == 4  # the store took it, the copy did not
    copy.down = False
    await asyncio.sleep(1.0)
    assert log.settled and copy.body.decode().count("\n") == 4
