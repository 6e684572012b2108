"""An Operation's whole life in the operator: driven to an end, settled, archived, and let go.

The engine ends the operation; this module is what happens around it, because it joins two
services that must not know each other (the engine and activity):

1. `OperationService.drive` runs it to a finished phase (or resumes it after a restart).
2. `settle`: the target shows the outcome, and the store holds every line of the log; the
   namespace's Notifiers have its last events (`bosun.notify`).
3. `ActivityService.archive` stores the record and marks it in `status.archived`.

Until step 3 the Operation carries Kopf's finalizer (its daemon and deletion handler match only
unarchived Operations), so deleting it is a cancel: the rollback runs, the record is archived, and
then the object goes. Archived Operations carry no finalizer, so a namespace can always be deleted
once its operations have ended, even with the operator down.

4. `release`: once Kopf has removed its finalizer, the `bosun.dev/archived` label takes the record out
   of the operator's watch. Kopf keeps a copy of every object it watches, and lists them all at each
   start: without the label, 10,000 kept records cost hundreds of MB and minutes of CPU at start-up
   for nothing. The label comes only after the finalizer is gone, so no object leaves the watch
   still held by it; a restart between the two labels it then. Archiving a deleted Operation is
retried for `deletion_archive_seconds` at most: a store that stays down does not hold a deletion
forever (the log tail and an Event say what was not archived).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from bosun.activity.service import ActivityService
from bosun.engine.service import OperationService
from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube, NotFound
from bosun.kube_status import StatusWrites
from bosun.models.names import ARCHIVED_LABEL, FINALIZER
from bosun.notify.service import Notifications
from bosun.store import StillUnsure, StoreUnavailable

logger = logging.getLogger(__name__)


class StopSignal(Protocol):
    """What Kopf gives a daemon to say it should stop (`stopped`), and why."""

    def wait(self) -> Awaitable[Any]: ...

    @property
    def reason(self) -> Any: ...


def only_deleted(reason: Any) -> bool:
    """Kopf stops the daemon because its Operation is being deleted (not because Bosun is exiting)."""
    names = {flag.name for flag in type(reason) if flag in reason} if reason is not None else set()
    return "RESOURCE_DELETED" in names and not names & {"OPERATOR_EXITING", "OPERATOR_PAUSING"}


RELEASE_SECONDS = 600.0  # the label is the last write an archived record gets: retried this long


class OperationLifecycle:
    def __init__(
        self,
        kube: Kube,
        operations: OperationService,
        activity: ActivityService,
        *,
        notifications: Notifications | None = None,
        retry_max_seconds: float = 60.0,
        deletion_archive_seconds: float = 120.0,
        retry_first_seconds: float = 1.0,
        release_seconds: float = RELEASE_SECONDS,
    ) -> None:
        self.kube = kube
        self.operations = operations
        self.activity = activity
        self.notifications = notifications
        self.retry_max_seconds = retry_max_seconds
        self.deletion_archive_seconds = deletion_archive_seconds
        self.retry_first_seconds = retry_first_seconds
        self.release_seconds = release_seconds

    async def daemon(self, body: Mapping[str, Any], stopped: StopSignal) -> None:
        """The per-Operation daemon: drive and archive; stop at once if the operator stops."""
        work = asyncio.ensure_future(self.to_archive(body))
        stop = asyncio.ensure_future(stopped.wait())
        try:
            done, _ = await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                return work.result()  # an error reaches Kopf, which starts the daemon again
            if only_deleted(stopped.reason):  # deletion is a cancel: the live body says so; let it end
                return await work  # (if the operator stops meanwhile, Kopf cancels this after 10 s)
            work.cancel()  # the operator stops: the next one resumes from status
            await asyncio.wait({work}, timeout=10)
        finally:
            stop.cancel()

    async def deleted(self, body: Mapping[str, Any]) -> None:
        """The deletion handler: also runs when the operator was down while the Operation was deleted."""
        await self.to_archive(body, deleting=True)

    async def to_archive(self, body: Mapping[str, Any], *, deleting: bool = False) -> None:
        status = await self.operations.drive(body, deleting=deleting)
        if not status.phase.finished:
            return
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        delay, give_up_at = 1.0, None
        while True:
            try:
                fresh = await self.kube.read(namespace, "Operation", name)
            except TransientError:
                fresh = {}  # not known this time: ask again after the delay
            if fresh is None:
                return  # gone
            if fresh:
                if (fresh.get("status") or {}).get("archived"):
                    return
                if (fresh.get("metadata") or {}).get("deletionTimestamp") and give_up_at is None:
                    give_up_at = time.monotonic() + self.deletion_archive_seconds
                try:
                    await self.operations.settle(fresh)
                    if self.notifications is not None and give_up_at is None:
                        # its last events leave before the record leaves the watch (a deletion does not wait)
                        await self.notifications.settle(fresh)
                    await self.activity.archive(fresh)
                    self.operations.forget(fresh)
                    return
                except StillUnsure as unsure:  # the log is checked again then: archive right after
                    await asyncio.sleep(unsure.seconds + 0.5)
                    continue
                except (StoreUnavailable, TransientError, PermanentError) as error:
                    logger.warning("operation %s/%s not archived yet (retrying): %s", namespace, name, error)
                    if give_up_at is not None and time.monotonic() >= give_up_at:
                        await self._let_go(fresh, error)
                        return
            await asyncio.sleep(delay)
            delay = min(self.retry_max_seconds, delay * 2)

    async def release(self, body: Mapping[str, Any]) -> bool:
        """Label an archived Operation that Kopf has let go, so that the watch drops it."""
        if not releasable(body):
            return False
        meta = body["metadata"]
        give_up_at = time.monotonic() + self.release_seconds
        delay = self.retry_first_seconds
        while True:
            try:
                await self.kube.patch_object(
                    meta["namespace"], "Operation", meta["name"], {"metadata": {"labels": {ARCHIVED_LABEL: "true"}}}
                )
                return True
            except NotFound:
                return False
            except TransientError as error:
                # An archived record gets no later event to retry on, and Kopf keeps its copy (about
                # 20 KB) while it stays watched: an API server down for minutes must not strand it.
                if time.monotonic() + delay < give_up_at:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)
                    continue
                failure: Exception = error
            except PermanentError as error:
                failure = error
            # Still watched, which costs memory only: labelled on its next event, or at the next start.
            logger.warning(
                "archived operation %s/%s not released from the watch: %s", meta["namespace"], meta["name"], failure
            )
            return False

    async def _let_go(self, body: dict[str, Any], error: Exception) -> None:
        message = (
            f"deleted before its record could be archived ({error}); the record is lost, "
            f"its outcome was: {(body.get('status') or {}).get('message', '')}"
        )
        logger.error("operation %s/%s %s", body["metadata"]["namespace"], body["metadata"]["name"], message)
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            await self.kube.emit_event(body, reason="NotArchived", message=message, warning=True)
            # Not an archive: a marker that lets Kopf release the object (its filters match unarchived ones).
            await StatusWrites(self.kube).patch_status(
                "Operation", namespace, name, {"archived": f"not archived: {error}"[:1000]}
            )
        except (TransientError, PermanentError) as failure:
            logger.error("operation %s/%s could not be let go: %s", namespace, name, failure)


def releasable(body: Mapping[str, Any]) -> bool:
    """Archived (really: not the let-go marker of a deleted one), free of Kopf's finalizer, not labelled."""
    meta = body.get("metadata") or {}
    archived = str((body.get("status") or {}).get("archived") or "")
    return (
        bool(archived)
        and not archived.startswith("not archived")
        and not meta.get("deletionTimestamp")
        and FINALIZER not in (meta.get("finalizers") or [])
        and ARCHIVED_LABEL not in (meta.get("labels") or {})
    )
