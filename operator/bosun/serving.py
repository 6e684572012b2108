"""The operator's HTTP endpoints: `/healthz` for the kubelet and `/metrics` for Prometheus.

Why Bosun serves these itself instead of Kopf's liveness endpoint: a standby replica does not run
Kopf at all (see `bosun.leader`), yet it must answer the kubelet's probes and show `bosun_leader 0`
to Prometheus. The two live on separate ports, as is usual, so a NetworkPolicy or a Service can
expose metrics without exposing the probes; the same number for both serves both on one port.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

Health = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


class Endpoints:
    def __init__(self, health: Health) -> None:
        self.health = health
        self._runners: list[web.AppRunner] = []

    async def _healthz(self, _: web.Request) -> web.Response:
        healthy, details = await self.health()
        return web.Response(status=200 if healthy else 500, text=json.dumps(details), content_type="application/json")

    async def _metrics(self, _: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def start(self, liveness_port: int, metrics_port: int, host: str = "0.0.0.0") -> None:
        routes: dict[int, list[tuple[str, Any]]] = {}
        if liveness_port:
            routes.setdefault(liveness_port, []).append(("/healthz", self._healthz))
        if metrics_port:
            routes.setdefault(metrics_port, []).append(("/metrics", self._metrics))
        for port, handlers in routes.items():
            app = web.Application()
            for path, handler in handlers:
                app.router.add_get(path, handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            self._runners.append(runner)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
