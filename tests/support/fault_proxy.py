"""An HTTP-aware fault-injecting proxy between the operator and the API server.

The operator talks plain HTTP to 127.0.0.1; the proxy forwards each request over TLS as the
kubeconfig's user, and fails a seeded share of them the ways an API server under load does: 500
and 429 (with Retry-After) before the request reaches the server, 409 Conflict on writes, a 500
*after* a write went through (the client thinks it failed; a retry finds its own work), added
latency, and watch streams cut part-way. Every fault is counted, so a run says what it survived.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "authorization"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _status(code: int, reason: str, message: str) -> bytes:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return json.dumps(body).encode()


class FaultProxy:
    def __init__(self, kubeconfig: Path, context: str, *, rate: float, seed: int, max_latency: float = 0.5) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        ctx = next(c for c in config["contexts"] if c["name"] == context)["context"]
        cluster = next(c for c in config["clusters"] if c["name"] == ctx["cluster"])["cluster"]
        user = next(u for u in config["users"] if u["name"] == ctx["user"])["user"]
        self.upstream = cluster["server"].rstrip("/")
        self.ssl = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.ssl.load_cert_chain(user["client-certificate"], user["client-key"])
        self.rate, self.max_latency = rate, max_latency
        self.rng = random.Random(seed)
        self.faults: Counter[str] = Counter()
        self.requests = 0
        self.kopf_merge_patch_conflicts = 0  # this many of Kopf's own merge-patches get a 409, whatever the rate
        self.port = 0
        self.enabled = threading.Event()
        self.enabled.set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl, limit=200))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "proxy", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "proxy", "user": {}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
            "current-context": "proxy",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def _pick(self, method: str, watching: bool) -> str:
        if not self.enabled.is_set() or self.rng.random() >= self.rate:
            return ""
        if watching:
            return "cut-watch"
        choices = ["500", "429", "latency"] + (["409", "500-after-write"] if method in WRITES else [])
        return self.rng.choice(choices)

    def _kopf_merge_patch(self, request: web.Request) -> bool:
        return (
            request.method == "PATCH"
            and request.content_type == "application/merge-patch+json"
            and "kopf" in request.headers.get("User-Agent", "")
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        watching = request.query.get("watch") in ("true", "1")
        fault = self._pick(request.method, watching)
        if self.kopf_merge_patch_conflicts > 0 and self._kopf_merge_patch(request):
            self.kopf_merge_patch_conflicts -= 1
            fault = "409"
        if fault:
            self.faults[fault] += 1
        if fault == "500":
            return web.Response(status=500, body=_status(500, "InternalError", "injected: internal error"),
                                content_type="application/json")  # fmt: skip
        if fault == "429":
            return web.Response(status=429, body=_status(429, "TooManyRequests", "injected: too many requests"),
                                headers={"Retry-After": "1"}, content_type="application/json")  # fmt: skip
        if fault == "409":
            message = "injected: the object has been modified; please apply your changes to the latest version"
            return web.Response(status=409, body=_status(409, "Conflict", message), content_type="application/json")
        if fault == "latency":
            await asyncio.sleep(self.rng.uniform(0.05, self.max_latency))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        try:
            upstream = await self._session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body or None,
                timeout=aiohttp.ClientTimeout(total=None if watching else 60),
            )  # fmt: skip
        except (aiohttp.ClientError, TimeoutError) as error:
            return web.Response(status=502, body=_status(502, "BadGateway", f"proxy: {error}"))
        async with upstream:
            if fault == "500-after-write":
                await upstream.read()  # the write happened; the client is told it did not
                return web.Response(status=500, body=_status(500, "InternalError", "injected: lost answer"),
                                    content_type="application/json")  # fmt: skip
            response = web.StreamResponse(status=upstream.status, headers=self._reply_headers(upstream))
            await response.prepare(request)
            cut_at = asyncio.get_running_loop().time() + self.rng.uniform(0.5, 5.0) if fault == "cut-watch" else None
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                    if cut_at is not None and asyncio.get_running_loop().time() > cut_at:
                        break
                if cut_at is not None and request.transport is not None:
                    request.transport.close()  # the watch stream ends mid-way, as a dropped connection
                else:
                    await response.write_eof()
            except (aiohttp.ClientError, ConnectionResetError, TimeoutError):
                pass  # the client went away (a watch it closed itself, say)
            return response

    @staticmethod
    def _reply_headers(upstream: aiohttp.ClientResponse) -> dict[str, Any]:
        return {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}

    def close(self) -> None:
        async def stop() -> None:
            await self._session.close()  # first: the open watch streams end, so their handlers return
            await self._runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        except TimeoutError:
            pass  # a handler that will not end: the loop stops under it (the thread is a daemon)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
