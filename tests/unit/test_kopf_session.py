"""Kopf's session as Bosun makes it, against a real HTTP server on loopback: a merge-patch answered 409
is sent again (Kopf would otherwise stop the operator), and nothing else is."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from aiohttp import web

from bosun.kopf_session import CONFLICT_RETRIES, bounded

pytestmark = pytest.mark.asyncio


class Server:
    """Answers 409 to the first `conflicts` requests, then 200; records each request's method."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.seen: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.content_type))
        if len(self.seen) <= self.conflicts:
            status = {"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409}
            return web.Response(status=409, text=json.dumps(status), content_type="application/json")
        return web.json_response({"metadata": {"name": "pg"}})


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(server: Server) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def send(url: str, method: str, content_type: str) -> int:
    session = bounded(kopf.ConnectionInfo(server=url), watches=2)
    try:
        async with session.aiohttp_session.request(
            method, f"{url}/apis/bosun.dev/v1alpha1/namespaces/a/databases/pg", data=b"{}",
            headers={"Content-Type": content_type},
        ) as response:  # fmt: skip
            return response.status
    finally:
        await session.aiohttp_session.close()


async def test_a_conflicted_merge_patch_is_sent_again_until_it_lands(serve: Any) -> None:
    server = Server(conflicts=2)
    assert await send(await serve(server), "PATCH", "application/merge-patch+json") == 200
    assert server.seen == [("PATCH", "application/merge-patch+json")] * 3


async def test_a_merge_patch_that_keeps_conflicting_is_answered_409_after_the_last_try(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bosun.kopf_session.CONFLICT_RETRIES", (0.01,) * len(CONFLICT_RETRIES))
    server = Server(conflicts=100)
    assert await send(await serve(server), "PATCH", "application/merge-patch+json") == 409
    assert len(server.seen) == 1 + len(CONFLICT_RETRIES)


@pytest.mark.parametrize(
    ("method", "content_type"),
    [("POST", "application/json"), ("PATCH", "application/json-patch+json"), ("PUT", "application/json")],
)
async def test_other_conflicts_are_answers_not_retried(serve: Any, method: str, content_type: str) -> None:
    server = Server(conflicts=1)
    assert await send(await serve(server), method, content_type) == 409  # AlreadyExists, a precondition: answers
    assert len(server.seen) == 1
