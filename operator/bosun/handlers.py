"""Every Kopf decorator of Bosun, one thin line each into the services of `bosun.startup`.

Kopf's memo carries only the settings, the planner and, once the process leads, the typed
`Services`; what the services are and how they are wired is `bosun.startup`, how a process comes
to lead is `bosun.election`, and `bosun.process` runs it all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import kopf

from bosun.backup_records import forget_dump, is_dump
from bosun.engine.service import Planner
from bosun.errors import PermanentError, TransientError
from bosun.heartbeat import LABEL as HEARTBEAT_LABEL
from bosun.kopf_session import bounded
from bosun.models.names import ARCHIVED_LABEL, FINALIZER, GROUP, VERSION
from bosun.models.operation import TargetKind
from bosun.operations.changes import create_operations_for_edit
from bosun.settings import Settings
from bosun.startup import Services, start

logger = logging.getLogger(__name__)
NOTIFIERS_INDEX = "notifiers_by_namespace"  # the kwarg Kopf hands every handler: Notifiers by namespace


@dataclass
class Memo:
    """What Kopf hands every handler: the services once started (None before, and in a standby)."""

    settings: Settings
    planner: Planner
    services: Services | None = None

    @property
    def ready(self) -> Services:
        if self.services is None:
            raise kopf.TemporaryError("the operator is still starting", delay=1)
        return self.services


def build_registry(settings: Settings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        return bounded(info, watches=5 * max(len(settings.namespaces), 2)) if info is not None else None

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: Memo, **_: Any) -> None:
        configure_kopf(settings, memo.settings)
        memo.services = await start(memo.settings, memo.planner)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: Memo, **_: Any) -> None:
        if memo.services is not None:
            await memo.services.close()

    @kopf.on.event("", "v1", "configmaps", labels={HEARTBEAT_LABEL: "true"}, registry=registry)
    async def heartbeat_seen(memo: Memo, **_: Any) -> None:
        if memo.services is not None:
            memo.services.heartbeat.seen()

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
    async def operation(body: kopf.Body, memo: Memo, stopped: kopf.DaemonStopped, **kwargs: Any) -> None:
        memo.ready.notifications.notifiers = kwargs[NOTIFIERS_INDEX]
        await memo.ready.lifecycle.daemon(body, stopped)

    @kopf.on.event(GROUP, VERSION, "operations", registry=registry)
    async def operation_seen(body: kopf.Body, event: kopf.RawEvent, memo: Memo, **kwargs: Any) -> None:
        gone = event.get("type") == "DELETED"  # deleted, or labelled archived: out of the watch
        memo.ready.operations.unfinished.saw(body, gone=gone)
        if gone:
            memo.ready.notifications.forget(body)
        else:
            memo.ready.notifications.notifiers = kwargs[NOTIFIERS_INDEX]
            memo.ready.notifications.saw(body)
            await memo.ready.lifecycle.release(body)

    # Every minute, each Database: its scheduled backup, retention and BackupOverdue condition
    # (bosun.operations.backup_schedule); without a schedule it only clears what one left.
    @kopf.timer(GROUP, VERSION, "databases", interval=settings.schedule_tick_seconds, registry=registry)
    async def backup_schedule(body: kopf.Body, memo: Memo, **_: Any) -> None:
        await memo.ready.schedules.tick(dict(body))

    # Kopf fills every index from its first listing before it runs any other handler: an operation
    # seen at start-up finds its namespace's Notifiers already here, and no request is made for them.
    @kopf.index(GROUP, VERSION, "notifiers", id=NOTIFIERS_INDEX, registry=registry)
    def notifiers_by_namespace(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str, Any]:
        return {namespace or "": dict(body)}

    @kopf.on.delete(GROUP, VERSION, "operations", when=_unarchived, registry=registry)
    async def operation_deleted(body: kopf.Body, memo: Memo, **_: Any) -> None:
        await memo.ready.lifecycle.deleted(body)

    # A Dump record's object is in the store, beyond the garbage collector: Kopf's finalizer holds
    # the record's deletion (by hand, by retention, with its namespace) until the object is gone.
    @kopf.on.delete(GROUP, VERSION, "backups", when=_a_dump, registry=registry)
    async def dump_record_deleted(body: kopf.Body, namespace: str | None, name: str, memo: Memo, **_: Any) -> None:
        where = await forget_dump(memo.ready.store, dict(body))
        logger.info("Backup %s/%s deleted: its dump %s too", namespace, name, where)

    for kind, plural in ((TargetKind.APP, "apps"), (TargetKind.DATABASE, "databases")):
        _register_spec_edits(registry, kind, plural)

    return registry


def _a_dump(spec: kopf.Spec, **_: Any) -> bool:
    return is_dump(dict(spec))


def _unarchived(status: kopf.Status, **_: Any) -> bool:
    return not status.get("archived")


def _register_spec_edits(registry: kopf.OperatorRegistry, kind: TargetKind, plural: str) -> None:
    """Creating or editing an App/Database creates the Operation that carries the change out."""

    @kopf.on.create(GROUP, VERSION, plural, id=f"{plural}-created", registry=registry)
    async def created(body: kopf.Body, spec: kopf.Spec, memo: Memo, retry: int, **_: Any) -> None:
        await _edit(memo.ready, kind, body, None, dict(spec), retry)

    @kopf.on.update(GROUP, VERSION, plural, field="spec", id=f"{plural}-edited", registry=registry)
    async def edited(body: kopf.Body, old: Any, new: Any, memo: Memo, retry: int, **_: Any) -> None:
        await _edit(memo.ready, kind, body, old, new, retry)


async def _edit(services: Services, kind: TargetKind, body: kopf.Body, old: Any, new: Any, retry: int = 0) -> None:
    try:
        made = await create_operations_for_edit(
            services.kube, kind, dict(body), dict(old) if old else None, dict(new or {})
        )
        generation = body.metadata.get("generation")
        if not made and generation:
            await services.operations.targets.observed(
                kind.value, body.metadata.namespace or "", body.metadata.name or "", int(generation)
            )
    except PermanentError as refused:  # the API server refused the Operation: say so once, never loop
        message = f"the Operation for this edit could not be created: {refused}"
        await services.kube.emit_event(dict(body), reason="EditNotCarriedOut", message=message, warning=True)
        raise kopf.PermanentError(message) from refused
    except TransientError as busy:
        # Kopf's own retry comes after 60 s: one injected 500 held a Database's provision back that
        # long. Creating the Operation is idempotent (its name comes from the edit): try again soon.
        message = f"the Operation for this edit is not created yet: {busy}"
        raise kopf.TemporaryError(message, delay=edit_retry(retry)) from busy


def edit_retry(retry: int) -> float:
    """Seconds before an edit's Operation is tried again after a transient error: 1, 2, 4 ... 30."""
    return float(min(30, 2 ** min(retry, 5)))


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
