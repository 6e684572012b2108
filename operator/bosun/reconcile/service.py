"""Drift repair of Apps, driven by watches of what Bosun manages for them.

A periodic round that listed every App and its Deployments, Services and PodDisruptionBudgets was
the operator's only cost at rest: 2 % of a core at 2,000 Apps, every 30 s, for Apps nobody
touched. Now three followers (`kube.Follower`, one per kind, resumed where they left off) keep a
small summary of each managed object: what `drift` compares, nothing more. An App is checked when
a summary changes or an object goes, and when the last unfinished operation on it ends, if one of
them ran (a failed rollback may have left it off its release). A full round over every App still
runs at start-up, after a follower had to list again (it may have missed changes), and every
`full_seconds`, so nothing depends on an event never being lost.

A check costs no request unless the summaries show drift, or it was poked (one read of the App:
its current release is not kept here). Drift found, the App is re-read under its lock, the API
server is asked whether an operation on it is in flight (just after a start the watch may not
show one yet), and each object is read before it is put back. Apps busy with an operation are
skipped without a request; one whose lock is held is looked at again a second later; one whose
check or repair failed, five seconds later (its drift would send no new event).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bosun.errors import PermanentError, TransientError
from bosun.kube import Follower, Kube
from bosun.models.names import CONFIG_HASH_ANNOTATION, DATABASE_LABEL
from bosun.reconcile.app import KINDS, MANAGED, Snapshot, repair_app, snapshot

logger = logging.getLogger(__name__)

INSTANCE_LABEL = "app.kubernetes.io/instance"
RETRY_SECONDS = 5.0  # an App whose check or repair failed is looked at again after this
Key = tuple[str, str]  # (namespace, App name)


def summary(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The part of a managed object that `drift` compares, in the object's own shape (pure)."""
    meta = body.get("metadata") or {}
    kept: dict[str, Any] = {"metadata": {"name": meta.get("name")}}
    if kind == "Deployment":
        spec = body.get("spec") or {}
        template = spec.get("template") or {}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        containers = (template.get("spec") or {}).get("containers") or [{}]
        kept["spec"] = {
            "replicas": spec.get("replicas"),
            "template": {
                "metadata": {"annotations": {CONFIG_HASH_ANNOTATION: annotations.get(CONFIG_HASH_ANNOTATION)}},
                "spec": {"containers": [{"image": containers[0].get("image")}]},
            },
        }
    return kept


class AppRepair:
    """Keeps the summaries, collects the Apps to look at, and repairs them one at a time."""

    def __init__(
        self,
        kube: Kube,
        namespaces: list[str],
        target_lock: Callable[[str, str, str], asyncio.Lock],
        busy: Callable[[str, str, str], bool],
        in_flight: Callable[[str, str, str], Awaitable[bool]],
        *,
        full_seconds: float,
        settle_seconds: float = 0.2,
    ) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.target_lock = target_lock
        self.busy = busy
        self.in_flight = in_flight
        self.full_seconds = full_seconds
        self.settle_seconds = settle_seconds
        self.objects: dict[str, Snapshot] = {}  # namespace -> (kind, name) -> summary
        self.followers = [
            # A Database's Service carries the same labels: it is not an App's to repair.
            Follower(kube, kind, namespace, MANAGED, self._listed(kind), self._changed(kind), without=(DATABASE_LABEL,))
            for kind in KINDS
            for namespace in (namespaces or [""])
        ]
        self._pending: set[Key] = set()
        self._full = True
        self._wake = asyncio.Event()
        self.rounds = 0  # full rounds done
        self.checks = 0  # single Apps looked at

    # what the followers report ------------------------------------------------------------------

    def _listed(self, kind: str) -> Callable[[str, list[dict[str, Any]]], None]:
        def listed(namespace: str, items: list[dict[str, Any]]) -> None:
            for name in [namespace] if namespace else list(self.objects):
                kept = self.objects.get(name, {})
                for key in [k for k in kept if k[0] == kind]:
                    del kept[key]
                if not kept:
                    self.objects.pop(name, None)
            for item in items:
                meta = item.get("metadata") or {}
                kept = self.objects.setdefault(str(meta.get("namespace", namespace)), {})
                kept[(kind, str(meta.get("name", "")))] = summary(kind, item)
            self._full = True  # a list may follow a gap in which anything changed
            self._wake.set()

        return listed

    def _changed(self, kind: str) -> Callable[[str, dict[str, Any]], None]:
        def changed(event: str, body: dict[str, Any]) -> None:
            meta = body.get("metadata") or {}
            namespace, key = str(meta.get("namespace", "")), (kind, str(meta.get("name", "")))
            kept = self.objects.setdefault(namespace, {})
            before = kept.get(key)
            if event == "DELETED":
                kept.pop(key, None)
                if not kept:
                    del self.objects[namespace]
            else:
                kept[key] = summary(kind, body)
                if kept[key] == before:
                    return  # its status moved, or a field repair does not look at
            app = (meta.get("labels") or {}).get(INSTANCE_LABEL)
            if app:
                self.poke(namespace, app)

        return changed

    def poke(self, namespace: str, app: str) -> None:
        """Look at this App soon (a managed object changed, or its last operation ended)."""
        self._pending.add((namespace, app))
        self._wake.set()

    def _later(self, namespace: str, app: str, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self.poke, namespace, app)

    # the work -----------------------------------------------------------------------------------

    async def run(self) -> None:
        tasks = [asyncio.get_running_loop().create_task(f.run()) for f in self.followers]
        waiting = [asyncio.ensure_future(f.ready.wait()) for f in self.followers]
        try:
            # The first round waits for the first lists (or 10 s: a kind that cannot be followed,
            # say a role without `watch`, is then listed by each round instead).
            await asyncio.wait(waiting, timeout=10)
            next_full = time.monotonic()
            while True:
                try:
                    next_full = await self._pass(next_full)
                except Exception:  # a bug must not end repair for the operator's life: say it, go on
                    logger.exception("drift repair failed (going on in %s s)", RETRY_SECONDS)
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            for task in [*tasks, *waiting]:
                task.cancel()
            await asyncio.wait([*tasks, *waiting])

    async def _pass(self, next_full: float) -> float:
        """One full round if one is due, else the pending Apps, else a wait; the next round's time."""
        if time.monotonic() >= next_full:
            self._full = True
        if self._full:
            self._full = False
            done = await self._round()
            # A round that could not list the Apps is tried again soon, not in `full_seconds`.
            return time.monotonic() + (self.full_seconds if done else min(30.0, self.full_seconds))
        while self._pending:
            namespace, app = self._pending.pop()
            await self._check(namespace, app)
        self._wake.clear()
        if not (self._pending or self._full):
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_full - time.monotonic()))
            except TimeoutError:
                return next_full
            await asyncio.sleep(self.settle_seconds)  # one look after a burst of events
        return next_full

    async def _snapshot(self, namespace: str) -> Snapshot:
        if all(f.ready.is_set() for f in self.followers):
            return self.objects.get(namespace, {})
        return await snapshot(self.kube, namespace)  # a kind not followed (yet): list the namespace

    async def _round(self) -> bool:
        """Every App against its objects: at start-up, after a list, and every `full_seconds`."""
        self.rounds += 1
        try:
            apps = (
                [a for n in self.namespaces for a in await self.kube.list_labelled(n, "App")]
                if self.namespaces
                else await self.kube.list_all("App")
            )
        except (TransientError, PermanentError) as error:
            logger.warning("drift repair skipped this round: %s", error)
            return False
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for body in apps:
            by_namespace.setdefault(body["metadata"]["namespace"], []).append(body)
        for namespace, bodies in by_namespace.items():
            try:
                objects = await self._snapshot(namespace)
            except (TransientError, PermanentError) as error:
                logger.warning("drift repair skipped namespace %s this round: %s", namespace, error)
                continue
            for number, body in enumerate(bodies):
                await self._repair(body, objects)
                if number % 100 == 99:
                    await asyncio.sleep(0)  # a round over thousands of Apps must not hold the loop
        return True

    async def _check(self, namespace: str, app: str) -> None:
        self.checks += 1
        if self.busy(namespace, "App", app):
            return  # the operation on it sets it right, and its end pokes it again
        if self.target_lock(namespace, "App", app).locked():
            self._later(namespace, app, 1.0)  # an operation is ending
            return
        try:
            body = await self.kube.read(namespace, "App", app)
            objects = await self._snapshot(namespace) if body is not None else {}
        except (TransientError, PermanentError) as error:
            logger.warning("drift of App %s/%s not looked at (again in %s s): %s", namespace, app, RETRY_SECONDS, error)
            self._later(namespace, app, RETRY_SECONDS)  # nothing else would bring it back
            return
        if body is not None:
            await self._repair(body, objects)

    async def _repair(self, body: dict[str, Any], objects: Snapshot) -> None:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            lock = self.target_lock(namespace, "App", name)
            repaired = await repair_app(self.kube, body, lock, self.busy, objects, self.in_flight)
            if repaired:
                await self.kube.emit_event(body, reason="DriftRepaired", message="; ".join(repaired), warning=True)
        except Exception as error:  # one App's trouble must not stop the others' repair
            logger.warning("drift of App %s/%s not repaired (again in %s s): %s", namespace, name, RETRY_SECONDS, error)
            self._later(namespace, name, RETRY_SECONDS)
