"""The S3 store against a real S3-compatible server (SeaweedFS, over HTTP), which can die and come back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bosun.engine.oplog import OperationLog
from bosun.store import LocalStore, S3Store, StoreUnavailable
from tests.support.s3_server import CREDENTIALS, SeaweedFS, seaweedfs_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with seaweedfs_server(tmp_path_factory.mktemp("s3")) as running:
        running.client().create_bucket(Bucket="bosun")
        yield running


@pytest.fixture
def store(server: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)  # the standard AWS way
    return S3Store("bosun", "ops/", region="us-east-1", endpoint_url=server.endpoint)


async def test_put_get_and_list_under_the_prefix(store: S3Store, server: SeaweedFS) -> None:
    await store.put("logs/ns/a.log", b"one\n")
    await store.put("logs/ns/b.log", b"two\n")
    assert await store.get("logs/ns/a.log") == b"one\n"
    assert await store.get("logs/ns/missing.log") is None
    assert await store.keys("logs/ns/") == ["logs/ns/a.log", "logs/ns/b.log"]
    assert store.url("logs/ns/a.log") == "s3://bosun/ops/logs/ns/a.log"
    objects = server.client().list_objects_v2(Bucket="bosun", Prefix="ops/")["Contents"]
    assert {o["Key"] for o in objects} >= {"ops/logs/ns/a.log", "ops/logs/ns/b.log"}


async def test_a_killed_server_is_unavailable_and_after_its_restart_nothing_is_lost(
    store: S3Store, server: SeaweedFS
) -> None:
    log = OperationLog(store, "logs/ns/outage.log", flush_seconds=0.05)
    log.add("before the outage")
    await asyncio.sleep(0.5)
    server.kill()
    try:
        with pytest.raises(StoreUnavailable):
            await store.put("logs/ns/probe", b"x")
        for n in range(3):
            log.add(f"during the outage {n}")
        await asyncio.sleep(1)
        assert log.pending == 3
        log.close()
    finally:
        await asyncio.to_thread(server.start)
    for _ in range(200):
        if not log.pending:
            break
        await asyncio.sleep(0.1)
    stored = (await store.get("logs/ns/outage.log") or b"").decode().splitlines()
    assert [line.split(" ", 2)[2].strip() for line in stored] == [
        "before the outage",
        "during the outage 0",
        "during the outage 1",
        "during the outage 2",
    ]


def test_unknown_bucket_is_a_clear_error(store: S3Store, server: SeaweedFS) -> None:
    missing = S3Store("no-such-bucket", endpoint_url=server.endpoint, region="us-east-1")
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        asyncio.run(missing.put("x", b"x"))


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_stream_is_uploaded_in_parts_and_read_back_whole(store: S3Store, server: SeaweedFS) -> None:
    """A dump larger than two parts, streamed in small chunks: it arrives whole, in three parts."""
    from bosun.store import PART_BYTES

    data = bytes(range(256)) * ((2 * PART_BYTES + 12345) // 256)
    assert await store.put_stream("backups/ns/pg/dump", chunks_of(data, 64 * 1024)) == len(data)
    head = server.client().head_object(Bucket="bosun", Key="ops/backups/ns/pg/dump", PartNumber=1)
    assert head["PartsCount"] == 3
    read = b"".join([chunk async for chunk in store.read_stream("backups/ns/pg/dump")])
    assert read == data
    await store.delete("backups/ns/pg/dump")
    assert await store.get("backups/ns/pg/dump") is None


async def test_a_stream_that_fails_leaves_no_object(store: S3Store, server: SeaweedFS) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"half a dump"
        raise RuntimeError("pg_dump died")

    with pytest.raises(RuntimeError, match="pg_dump died"):
        await store.put_stream("backups/ns/pg/broken", broken())
    assert await store.get("backups/ns/pg/broken") is None
    uploads = server.client().list_multipart_uploads(Bucket="bosun").get("Uploads") or []
    assert not [u for u in uploads if u["Key"] == "ops/backups/ns/pg/broken"]  # aborted, not left to rot
    with pytest.raises(StoreUnavailable, match="does not exist"):
        [chunk async for chunk in store.read_stream("backups/ns/pg/broken")]


async def test_the_local_store_streams_the_same_way(tmp_path: Path) -> None:
    local = LocalStore(tmp_path)
    data = b"row\n" * 100_000
    assert await local.put_stream("backups/ns/pg/dump", chunks_of(data, 4096)) == len(data)
    assert b"".join([c async for c in local.read_stream("backups/ns/pg/dump")]) == data
    assert [p.name for p in (tmp_path / "backups/ns/pg").iterdir()] == ["dump"]  # no partial left

    async def broken() -> AsyncIterator[bytes]:
        yield b"half"
        raise RuntimeError("gone")

    with pytest.raises(RuntimeError):
        await local.put_stream("backups/ns/pg/other", broken())
    assert [p.name for p in (tmp_path / "backups/ns/pg").iterdir()] == ["dump"]
    await local.delete("backups/ns/pg/dump")
    assert await local.get("backups/ns/pg/dump") is None


async def test_a_dump_piped_into_the_store_is_whole_or_absent(tmp_path: Path) -> None:
    """The bridge between an exec's output and an upload (bosun.operations.database_dump.piped):
    many small pieces arrive whole; a command that fails half-way leaves no object."""
    from bosun.operations.database_dump import piped

    local = LocalStore(tmp_path)

    async def command(sink: Any) -> int:
        for n in range(1000):
            await sink(b"%04d\n" % n)
        return 0

    code, size = await piped(local, "dumps/ok", command)
    assert (code, size) == (0, 5000) and await local.get("dumps/ok") == b"".join(b"%04d\n" % n for n in range(1000))

    async def dies(sink: Any) -> int:
        await sink(b"half")
        raise ConnectionError("the kubelet went away")

    with pytest.raises(ConnectionError):
        await piped(local, "dumps/broken", dies)
    assert await local.get("dumps/broken") is None
    assert sorted(p.name for p in (tmp_path / "dumps").iterdir()) == ["ok"]
