"""The S3 store against a real S3-compatible server (SeaweedFS, over HTTP), which can die and come back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bosun.engine.oplog import OperationLog
from bosun.store import S3Store, StoreUnavailable
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
