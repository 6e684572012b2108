"""The composition root: every service of a leading operator process, built and wired in one place.

Kopf's handlers (`bosun.handlers`) stay one line each into the `Services` built here, the way
gafaelfawr's `startup.py` builds its factory; nothing else constructs a service. Tests get the same
wiring with their own step tables through the `planner`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from bosun import looplag, memory
from bosun.activity.service import ActivityService
from bosun.engine.service import OperationService, Planner
from bosun.errors import PermanentError, TransientError
from bosun.heartbeat import Heartbeat
from bosun.kube import Kube
from bosun.lifecycle import OperationLifecycle
from bosun.notify.service import Notifications
from bosun.operations.backup_schedule import BackupSchedules
from bosun.reconcile.service import AppRepair
from bosun.settings import Settings
from bosun.store import Store, StoreUnavailable, store_from

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """What the handlers act through: built once, when the process starts to lead."""

    settings: Settings
    kube: Kube
    store: Store
    operations: OperationService
    activity: ActivityService
    lifecycle: OperationLifecycle
    heartbeat: Heartbeat
    notifications: Notifications
    schedules: BackupSchedules
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.heartbeat.stop()
        await self.notifications.close()
        await self.kube.close()


async def start(settings: Settings, planner: Planner) -> Services:
    """Connect, build every service, and start the loops that live as long as the process."""
    kube = await Kube.connect(settings.kubeconfig)
    store = store_from(settings.store_url, settings.s3_endpoint_url, settings.s3_region)
    operations = OperationService(
        kube,
        planner,
        queue_poll_seconds=settings.queue_poll_seconds,
        queue_by_label=settings.queue_by_label,
        max_running=settings.max_running_operations,
        store=store,
        identity=await kube.whoami(),
        log_tail_lines=settings.log_tail_lines,
    )
    activity = ActivityService(
        kube,
        store,
        retention_seconds=settings.operation_retention_seconds,
        log_retention_seconds=settings.log_retention_seconds,
        namespaces=settings.namespaces,
        live=operations.unfinished.in_namespace,
    )
    notifications = Notifications(
        kube, retry_max_seconds=settings.notify_retry_max_seconds, give_up_seconds=settings.notify_give_up_seconds
    )
    services = Services(
        settings=settings,
        kube=kube,
        store=store,
        operations=operations,
        activity=activity,
        lifecycle=OperationLifecycle(kube, operations, activity, notifications=notifications),
        heartbeat=Heartbeat(kube, settings.heartbeat_home, settings.heartbeat_seconds),
        notifications=notifications,
        schedules=BackupSchedules(kube),
    )
    _background(services, _keep_history(services))
    repair = AppRepair(
        kube,
        settings.namespaces,
        operations.target_lock,
        operations.unfinished.on_target,
        operations.in_flight,
        full_seconds=settings.repair_seconds,
    )
    operations.unfinished.on_idle = lambda n, kind, name: repair.poke(n, name) if kind == "App" else None
    _background(services, repair.run())
    if settings.trim_seconds > 0:
        _background(services, _give_memory_back(settings.trim_seconds))
    _background(services, looplag.probe())
    looplag.time_collections()
    services.heartbeat.start()
    looplag.settle_startup()
    return services


def _background(services: Services, work: Coroutine[Any, Any, None]) -> None:
    """Start a loop that lives as long as the operator; one that ends by an error says so."""
    task = asyncio.get_running_loop().create_task(work)
    task.add_done_callback(_background_ended)
    services.tasks.append(task)


def _background_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.critical("background work %s ended: %r", task.get_coro(), task.exception())


async def _give_memory_back(every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(memory.trim)  # a fragmented heap takes a while to walk: not on the loop
        except Exception:
            logger.exception("memory not trimmed")


async def _keep_history(services: Services) -> None:
    """Catch up missed weekly reports and tidy old Operations, at start-up and then periodically."""
    while True:
        for work in (services.activity.catch_up, services.activity.tidy):
            try:
                await work()
            except (StoreUnavailable, TransientError, PermanentError) as error:
                logger.warning("activity history not brought up to date (retried later): %s", error)
        await asyncio.sleep(services.settings.activity_seconds)
