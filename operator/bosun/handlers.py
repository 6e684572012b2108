"""Every Kopf decorator of Bosun, one thin line each into the services below.

This is also the composition root: `build_registry` wires the services with the planner that maps
operation types to step tables. `bosun run` passes the product's registry of tables; tests pass
their own tables through the same function.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import warnings
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from bosun import looplag, memory, metrics
from bosun.activity.service import ActivityService
from bosun.engine.service import OperationService, Planner
from bosun.errors import PermanentError, TransientError
from bosun.heartbeat import LABEL as HEARTBEAT_LABEL
from bosun.heartbeat import Heartbeat
from bosun.kube import Kube
from bosun.leader import LeaseElector, identity_of
from bosun.lifecycle import OperationLifecycle
from bosun.models.names import ARCHIVED_LABEL, FINALIZER, GROUP, KOPF_USER_AGENT, VERSION
from bosun.models.operation import TargetKind
from bosun.operations.changes import create_operations_for_edit
from bosun.reconcile.service import AppRepair
from bosun.serving import Endpoints
from bosun.settings import Settings
from bosun.store import Store, StoreUnavailable, store_from

logger = logging.getLogger(__name__)


@dataclass
class Memo:
    """What the handlers share: built once at start-up."""

    settings: Settings
    planner: Planner
    kube: Kube | None = None
    heartbeat: Heartbeat | None = None
    store: Store | None = None
    services: dict[str, Any] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def activity(self) -> ActivityService:
        return self.services["activity"]  # type: ignore[no-any-return]

    @property
    def operations(self) -> OperationService:
        return self.services["operations"]  # type: ignore[no-any-return]

    @property
    def lifecycle(self) -> OperationLifecycle:
        return self.services["lifecycle"]  # type: ignore[no-any-return]


def build_registry(settings: Settings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        return bounded(info, watches=4 * max(len(settings.namespaces), 2)) if info is not None else None

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: Memo, **_: Any) -> None:
        configure_kopf(settings, memo.settings)
        memo.kube = await Kube.connect(memo.settings.kubeconfig)
        config = memo.settings
        memo.store = store_from(config.store_url, config.s3_endpoint_url, config.s3_region)
        memo.services["operations"] = OperationService(
            memo.kube,
            memo.planner,
            queue_poll_seconds=config.queue_poll_seconds,
            queue_by_label=config.queue_by_label,
            max_running=config.max_running_operations,
            store=memo.store,
            identity=await memo.kube.whoami(),
            log_tail_lines=config.log_tail_lines,
        )
        memo.services["activity"] = ActivityService(
            memo.kube,
            memo.store,
            retention_seconds=config.operation_retention_seconds,
            namespaces=config.namespaces,
            live=memo.operations.unfinished.in_namespace,
        )
        memo.services["lifecycle"] = OperationLifecycle(memo.kube, memo.operations, memo.activity)
        _background(memo, _keep_history(memo))
        repair = AppRepair(
            memo.kube,
            config.namespaces,
            memo.operations.target_lock,
            memo.operations.unfinished.on_target,
            memo.operations.in_flight,
            full_seconds=config.repair_seconds,
        )
        memo.operations.unfinished.on_idle = lambda n, kind, name: repair.poke(n, name) if kind == "App" else None
        _background(memo, repair.run())
        if config.trim_seconds > 0:
            _background(memo, _give_memory_back(config.trim_seconds))
        _background(memo, looplag.probe())
        looplag.time_collections()
        memo.heartbeat = Heartbeat(memo.kube, memo.settings.heartbeat_home, memo.settings.heartbeat_seconds)
        memo.heartbeat.start()
        looplag.settle_startup()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: Memo, **_: Any) -> None:
        for task in memo.tasks:
            task.cancel()
        if memo.heartbeat is not None:
            await memo.heartbeat.stop()
        if memo.kube is not None:
            await memo.kube.close()

    @kopf.on.event("", "v1", "configmaps", labels={HEARTBEAT_LABEL: "true"}, registry=registry)
    async def heartbeat_seen(memo: Memo, **_: Any) -> None:
        if memo.heartbeat is not None:
            memo.heartbeat.seen()

    # Only unarchived Operations have a daemon, a deletion handler and so Kopf's finalizer: once
    # archived, nothing holds an Operation (or its namespace) back. No filter on the phase: Kopf
    # would stop the daemon the moment its own final status write lands, before it is archived.
    @kopf.daemon(
        GROUP,
        VERSION,
        "operations",
        when=_unarchived,
        cancellation_backoff=None,
        cancellation_timeout=10.0,  # then cancelled: the deletion handler (or the next process) takes over
        backoff=5.0,  # a daemon that broke (an API error before the engine caught it) is back in 5 s, not 60
        cancellation_polling=1.0,
        registry=registry,
    )
    async def operation(body: kopf.Body, memo: Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
        await memo.lifecycle.daemon(body, stopped)

    @kopf.on.event(GROUP, VERSION, "operations", registry=registry)
    async def operation_seen(body: kopf.Body, event: kopf.RawEvent, memo: Memo, **_: Any) -> None:
        gone = event.get("type") == "DELETED"  # deleted, or labelled archived: out of the watch
        memo.operations.unfinished.saw(body, gone=gone)
        if not gone:
            await memo.lifecycle.release(body)

    @kopf.on.delete(GROUP, VERSION, "operations", when=_unarchived, registry=registry)
    async def operation_deleted(body: kopf.Body, memo: Memo, **_: Any) -> None:
        await memo.lifecycle.deleted(body)

    for kind, plural in ((TargetKind.APP, "apps"), (TargetKind.DATABASE, "databases")):
        _register_spec_edits(registry, kind, plural)

    return registry


def _unarchived(status: kopf.Status, **_: Any) -> bool:
    return not status.get("archived")


def _background(memo: Memo, work: Coroutine[Any, Any, None]) -> None:
    """Start a loop that lives as long as the operator; one that ends by an error says so."""
    task = asyncio.get_running_loop().create_task(work)
    task.add_done_callback(_background_ended)
    memo.tasks.append(task)


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


async def _keep_history(memo: Memo) -> None:
    """Catch up missed weekly reports and tidy old Operations, at start-up and then periodically."""
    while True:
        for work in (memo.activity.catch_up, memo.activity.tidy):
            try:
                await work()
            except (StoreUnavailable, TransientError, PermanentError) as error:
                logger.warning("activity history not brought up to date (retried later): %s", error)
        await asyncio.sleep(memo.settings.activity_seconds)


def _register_spec_edits(registry: kopf.OperatorRegistry, kind: TargetKind, plural: str) -> None:
    """Creating or editing an App/Database creates the Operation that carries the change out."""

    @kopf.on.create(GROUP, VERSION, plural, id=f"{plural}-created", registry=registry)
    async def created(body: kopf.Body, spec: kopf.Spec, memo: Memo, retry: int, **_: Any) -> None:
        await _edit(memo, kind, body, None, dict(spec), retry)

    @kopf.on.update(GROUP, VERSION, plural, field="spec", id=f"{plural}-edited", registry=registry)
    async def edited(body: kopf.Body, old: Any, new: Any, memo: Memo, retry: int, **_: Any) -> None:
        await _edit(memo, kind, body, old, new, retry)


async def _edit(memo: Memo, kind: TargetKind, body: kopf.Body, old: Any, new: Any, retry: int = 0) -> None:
    assert memo.kube is not None
    try:
        made = await create_operations_for_edit(
            memo.kube, kind, dict(body), dict(old) if old else None, dict(new or {})
        )
        generation = body.metadata.get("generation")
        if not made and generation:
            await memo.operations.targets.observed(
                kind.value, body.metadata.namespace or "", body.metadata.name or "", int(generation)
            )
    except PermanentError as refused:  # the API server refused the Operation: say so once, never loop
        message = f"the Operation for this edit could not be created: {refused}"
        await memo.kube.emit_event(dict(body), reason="EditNotCarriedOut", message=message, warning=True)
        raise kopf.PermanentError(message) from refused
    except TransientError as busy:
        # Kopf's own retry comes after 60 s: one injected 500 held a Database's provision back that
        # long. Creating the Operation is idempotent (its name comes from the edit): try again soon.
        message = f"the Operation for this edit is not created yet: {busy}"
        raise kopf.TemporaryError(message, delay=edit_retry(retry)) from busy


def edit_retry(retry: int) -> float:
    """Seconds before an edit's Operation is tried again after a transient error: 1, 2, 4 ... 30."""
    return float(min(30, 2 ** min(retry, 5)))


# Kopf's own short requests (finalizers, events) share this many connections, on top of one per
# watch it holds open (4 per watched namespace: Operations, Apps, Databases, the heartbeat). Kopf's
# default has no limit: 10,000 Operations created at once opened hundreds of TLS connections for
# their finalizers, each with a 256 KiB buffer, and the memory stayed with the process.
KOPF_CONNECTIONS = 32


def bounded(info: kopf.ConnectionInfo, *, watches: int) -> kopf.AiohttpSession:
    """Kopf's session for these credentials, as Kopf makes it, but with a connection limit."""
    with warnings.catch_warnings():  # as Kopf does: aiohttp warns of any BasicAuth
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="kopf")
        auth = info.as_aiohttp_basic_auth()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=KOPF_CONNECTIONS + watches, ssl=info.as_ssl_context()),
        headers={**info.as_http_headers(), "User-Agent": KOPF_USER_AGENT},
        auth=auth,
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )


def configure_kopf(kopf_settings: kopf.OperatorSettings, settings: Settings) -> None:
    """Keep Kopf's own bookkeeping under bosun.dev and out of users' way."""
    kopf_settings.persistence.finalizer = FINALIZER
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="bosun.dev")
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="bosun.dev", key="last-handled-configuration"
    )
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.watching.server_timeout = settings.watch_timeout_seconds
    kopf_settings.watching.client_timeout = settings.watch_timeout_seconds + 10
    kopf_settings.peering.standalone = True
    # Watching a list of namespaces: no cluster-wide scanning, so no right to list namespaces is
    # needed (the chart grants none). Bosun's resources are then discovered once, at start-up.
    kopf_settings.scanning.disabled = bool(settings.namespaces)
    # Watch only the heartbeat ConfigMap, not every ConfigMap in the cluster.
    kopf_settings.watching.label_selectors["configmaps"] = f"{HEARTBEAT_LABEL}=true"
    # And only Operations whose records are not archived yet (bosun.lifecycle: `release`).
    kopf_settings.watching.label_selectors[GROUP, "operations"] = f"!{ARCHIVED_LABEL}"


def run(settings: Settings, planner: Planner | None = None) -> None:
    """Run the operator until SIGINT/SIGTERM: with leader election, only while holding the Lease."""
    from bosun.operations.registry import default_registry

    kopf.configure(
        verbose=settings.log_level.upper() == "DEBUG",
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    memo = Memo(settings=settings, planner=planner or default_registry(settings.database_image_registry))
    asyncio.run(_operate(settings, memo))


async def _operate(settings: Settings, memo: Memo) -> None:
    election = Election(settings)
    endpoints = Endpoints(lambda: _health(memo, election))
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


class Election:
    """Leadership for `run`: wait for the Lease as a standby, keep it while acting, hand it back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.elector: LeaseElector | None = None
        self.kube: Kube | None = None
        self.keeper: asyncio.Task[None] | None = None

    @property
    def standing_by(self) -> bool:
        return self.elector is not None and not self.elector.leading

    async def lead(self) -> bool:
        """True once this process may act; False if SIGTERM/SIGINT came while standing by."""
        if not self.settings.leader_election:
            metrics.LEADER.set(1)
            return True
        config = self.settings
        self.kube = await Kube.connect(config.kubeconfig)
        identity = identity_of(os.environ.get("POD_NAME", ""), socket.gethostname())
        self.elector = LeaseElector(
            self.kube,
            config.lease_home,
            config.leader_election_name,
            identity,
            lease_seconds=config.lease_seconds,
            renew_deadline=config.renew_deadline_seconds,
            retry_period=config.lease_retry_seconds,
        )
        metrics.LEADER.set(0)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        acquiring = loop.create_task(self.elector.acquire())
        stopping = loop.create_task(stop.wait())
        try:
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)  # Kopf installs its own
            stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquiring  # a Lease write in flight lands (or not) before step_down releases it
            return False
        if stop.is_set():  # SIGTERM came in the same turn as the Lease: hand it back, do not lead
            return False
        self.keeper = loop.create_task(self.elector.keep(_leadership_lost))
        self.keeper.add_done_callback(_keeper_ended)
        return True

    async def step_down(self) -> None:
        if self.keeper is not None:
            self.keeper.cancel()
        if self.elector is not None:
            await self.elector.release()
        if self.kube is not None:
            await self.kube.close()


def _keeper_ended(keeper: asyncio.Task[None]) -> None:
    """The renewal loop must outlive the leader's work: if it dies of anything, stop acting at once."""
    if not keeper.cancelled() and keeper.exception() is not None:
        _leadership_lost(f"the Lease renewal loop broke: {keeper.exception()!r}")


def _leadership_lost(reason: str) -> None:
    """Stop acting at once: another replica may lead now. Kubernetes restarts this one as a standby."""
    logger.critical("leadership lost, exiting at once: %s", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(75)


async def _health(memo: Memo, election: Election) -> tuple[bool, dict[str, Any]]:
    """Healthy: a standby whose election loop runs, or a leader whose API server answers and whose
    watch still delivers the heartbeat (a silently dead watch is the failure this catches)."""
    if election.standing_by:
        assert election.elector is not None
        return election.elector.alive(), {"role": "standby", "identity": election.elector.identity}
    if memo.kube is None or memo.heartbeat is None:
        return False, {"role": "leader", "state": "starting"}
    api = await memo.kube.healthz()
    stale = round(memo.heartbeat.stale_for(), 1)
    return api and memo.heartbeat.healthy(), {"role": "leader", "api": api, "watchStaleSeconds": stale}
