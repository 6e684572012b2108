"""`bosun run`: one operator process, from its health probe and leader election to Kopf.

The order matters: the probe answers from the first moment (a standby is healthy while its
election loop runs), Kopf starts only once this process leads, and the Lease is handed back only
after Kopf has stopped acting.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from bosun.election import Election
from bosun.engine.service import Planner
from bosun.handlers import Memo, build_registry
from bosun.serving import Endpoints
from bosun.settings import Settings
from bosun.store import store_from


def run(settings: Settings, planner: Planner | None = None) -> None:
    """Run the operator until SIGINT/SIGTERM: with leader election, only while holding the Lease."""
    from bosun.operations.registry import default_registry

    kopf.configure(
        verbose=settings.log_level.upper() == "DEBUG",
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger("kopf.objects").addFilter(QuietTicks())
    memo = Memo(
        settings=settings,
        planner=planner
        or default_registry(
            settings.database_image_registry,
            store_from(settings.store_url, settings.s3_endpoint_url, settings.s3_region),
        ),
    )
    asyncio.run(_operate(settings, memo))


class QuietTicks(logging.Filter):
    """Drop Kopf's line for each backup-schedule look that succeeded: it runs for every Database
    every minute, and a line a minute per Database would drown the log. Failures still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timer ") and "backup_schedule" in message and message.endswith(" succeeded."))


async def _operate(settings: Settings, memo: Memo) -> None:
    election = Election(settings)
    endpoints = Endpoints(lambda: health(memo, election))
    await endpoints.start(settings.liveness_port, settings.metrics_port)
    try:
        if not await election.lead():
            return  # told to stop while standing by
        await kopf.operator(
            registry=build_registry(settings),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            memo=memo,
        )
    finally:
        await election.step_down()
        await endpoints.stop()


async def health(memo: Memo, election: Election) -> tuple[bool, dict[str, Any]]:
    """Healthy: a standby whose election loop runs, or a leader whose API server answers and whose
    watch still delivers the heartbeat (a silently dead watch is the failure this catches)."""
    if election.standing_by:
        assert election.elector is not None
        return election.elector.alive(), {"role": "standby", "identity": election.elector.identity}
    services = memo.services
    if services is None:
        return False, {"role": "leader", "state": "starting"}
    api = await services.kube.healthz()
    stale = round(services.heartbeat.stale_for(), 1)
    return api and services.heartbeat.healthy(), {"role": "leader", "api": api, "watchStaleSeconds": stale}
