"""Watches that spare the API server: a step waiting on objects reads them once, not once per poll.

`Watched` keeps one list-then-watch of a kind current; `Shared` is one such watch per namespace,
kind and labels, shared by every waiter (500 roll-outs in a namespace cost one watch of its
pods, not 500); `Follower` follows one pod by name. `bosun.kube.Kube` hands them out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException

from bosun.errors import PermanentError, TransientError
from bosun.kube_calls import _json, call, map_error

if TYPE_CHECKING:
    from bosun.kube import Kube

logger = logging.getLogger(__name__)


class Watched:
    """Objects kept current by a list and then a watch, so that a step waiting on them reads the
    API server once, not once per poll. The watch is reopened from a fresh list whenever it ends
    (the server closes it every minute, or it drops); a list that fails for good is raised to the
    waiter by `changed`.
    """

    def __init__(self, kube: Kube, what: str, lister: Callable[..., Any], namespace: str, selectors: dict[str, str]):
        self.kube = kube
        self.what = what
        self.lister = lister
        self.namespace = namespace
        self.selectors = selectors
        self.objects: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()
        self._failed: Exception | None = None
        self._task: asyncio.Task[None] | None = None

    async def _list(self) -> str:
        listed = await call(
            f"list {self.what}",
            lambda: self.kube._raw(self.lister(self.namespace, _preload_content=False, **self.selectors)),
        )
        self.objects = {o["metadata"]["name"]: o for o in listed.get("items") or []}
        self._changed.set()
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def _follow(self, version: str) -> None:
        failures = 0
        while True:
            opened = time.monotonic()
            ended: object = "it ended"
            try:
                async with watch.Watch(return_type="object").stream(
                    self.lister, self.namespace, resource_version=version, timeout_seconds=60,
                    _request_timeout=75,  # a half-open connection ends too, and is reopened
                    **self.selectors,
                ) as stream:  # fmt: skip
                    async for event in stream:
                        body = event.get("raw_object") or {}
                        name = (body.get("metadata") or {}).get("name")
                        if event.get("type") in ("ADDED", "MODIFIED") and name:
                            self.objects[name] = body
                        elif event.get("type") == "DELETED" and name:
                            self.objects.pop(name, None)
                        else:
                            continue
                        self._changed.set()
            except Exception as error:  # any end of the watch: read again and reopen it
                ended = error
            # A watch that keeps ending at once, by an error or not (one the role does not grant,
            # a proxy closing it), backs off: the waiter still sees a fresh list each time.
            failures = 0 if time.monotonic() - opened > 5 else failures + 1
            if failures == 3:
                logger.warning("the watch of %s keeps ending at once (read every 5 s instead): %s", self.what, ended)
            if failures:
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
            try:
                version = await self._list()
            except Exception as error:  # raised to the waiter, never a silent end
                self._failed = (
                    error
                    if isinstance(error, (TransientError, PermanentError))
                    else TransientError(f"list {self.what}: {type(error).__name__}: {error}")
                )
                self._changed.set()
                return

    async def changed(self, every: float) -> None:
        """Wait for a change, or `every` seconds; raise if the objects can no longer be read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), every)
        self._changed.clear()
        if self._failed is not None:
            raise self._failed
        if self._task is not None and self._task.done():  # never judge a copy nobody updates
            raise TransientError(f"the watch of {self.what} ended")

    async def __aenter__(self) -> Watched:
        version = await self._list()
        self._changed.clear()
        self._task = asyncio.get_running_loop().create_task(self._follow(version))
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # not `await task`: a cancel aimed at the caller must reach it


class Shared:
    """One kind's objects in a namespace, followed by one list and watch (`Follower`) for every
    step that waits on some of them.

    Each App roll-out used to list and watch its own Deployments and pods (`Watched`): 500 roll-outs
    held 1,000 watches open, each with its own TLS connection in the operator (about 256 KiB of
    buffers), and listed again each time one ended, every minute. The API server filtered every
    pod event against each of them. Now a namespace's Bosun-managed Deployments (and pods) are one
    watch, and an event wakes only the waiters of its `index` label's value (its App). Objects are
    kept without `managedFields`, which no waiter reads.
    """

    def __init__(
        self, kube: Kube, kind: str, namespace: str, labels: dict[str, str], index: str, *, linger: float
    ) -> None:
        self.what = f"{kind} in {namespace}"
        self.index = index
        self.linger = linger
        self.by_value: dict[str, dict[str, dict[str, Any]]] = {}  # index value -> name -> object
        self.value_of: dict[str, str] = {}  # name -> its index value, as last seen
        self.views: dict[str, set[SharedView]] = {}
        self.follower = Follower(kube, kind, namespace, labels, self._listed, self._changed)
        self.stopped = False
        self.on_stop: Callable[[], object] = lambda: None
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.TimerHandle | None = None

    def _value(self, body: dict[str, Any]) -> str:
        return str(((body.get("metadata") or {}).get("labels") or {}).get(self.index) or "")

    def _listed(self, _: str, items: list[dict[str, Any]]) -> None:
        fresh: dict[str, dict[str, dict[str, Any]]] = {}
        for body in items:
            fresh.setdefault(self._value(body), {})[body["metadata"]["name"]] = _slim(body)
        self.by_value = fresh
        self.value_of = {name: value for value, objects in fresh.items() for name in objects}
        for views in self.views.values():
            for view in views:
                view.wake()

    def _changed(self, kind: str, body: dict[str, Any]) -> None:
        value, name = self._value(body), (body.get("metadata") or {}).get("name") or ""
        before = self.value_of.pop(name, None)
        for old in {before, value} - {None}:  # relabelled (a pod taken out to debug): it leaves its old App
            objects = self.by_value.get(old or "", {})
            objects.pop(name, None)
            if not objects:
                self.by_value.pop(old or "", None)
            for view in self.views.get(old or "", ()):
                view.wake()
        if kind != "DELETED":
            self.by_value.setdefault(value, {})[name] = _slim(body)
            self.value_of[name] = value

    def join(self, view: SharedView) -> None:
        if self._stopping is not None:
            self._stopping.cancel()
            self._stopping = None
        self.views.setdefault(view.value, set()).add(view)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.follower.run())

    def leave(self, view: SharedView) -> None:
        views = self.views.get(view.value, set())
        views.discard(view)
        if not views:
            self.views.pop(view.value, None)
        if not self.views and not self.stopped:
            self._stopping = asyncio.get_running_loop().call_later(self.linger, self.stop)

    def stop(self) -> None:
        """No waiter left for `linger` seconds (or the client closes): the watch ends."""
        self.stopped = True
        if self._stopping is not None:
            self._stopping.cancel()
        if self._task is not None:
            self._task.cancel()
        self.by_value, self.value_of = {}, {}
        self.on_stop()


def _slim(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    if "managedFields" in meta:
        body = {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return body


class SharedView:
    """What one waiter sees of a `Shared` watch: the objects whose index label has its value."""

    def __init__(self, shared: Shared, value: str) -> None:
        self.shared = shared
        self.value = value
        self._changed = asyncio.Event()

    @property
    def objects(self) -> dict[str, dict[str, Any]]:
        return dict(self.shared.by_value.get(self.value, {}))

    def wake(self) -> None:
        self._changed.set()

    async def changed(self, every: float) -> None:
        """Wait for a change to its objects, or `every` seconds; raise while they cannot be read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), every)
        self._changed.clear()
        self.check()

    def check(self) -> None:
        """Raise unless its objects are current: never judge a copy while the watch lists again."""
        follower = self.shared.follower
        if isinstance(follower.failure, PermanentError):  # e.g. refused by RBAC: no retry will change it
            raise follower.failure
        if self.shared.stopped or not follower.ready.is_set():
            raise TransientError(f"the watch of {self.shared.what} is not following: {follower.failure or 'ended'}")

    async def __aenter__(self) -> SharedView:
        if self.shared.stopped:  # stopped between `Kube.shared` and here: the waiter asks again
            raise TransientError(f"the watch of {self.shared.what} ended")
        self.shared.join(self)
        try:
            ready = asyncio.ensure_future(self.shared.follower.ready.wait())
            failed = asyncio.ensure_future(self.shared.follower.refused.wait())
            try:
                await asyncio.wait({ready, failed}, timeout=READY_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()
                failed.cancel()
            if not self.shared.follower.ready.is_set():
                self.check()
                raise TransientError(f"could not list {self.shared.what} within {READY_SECONDS:.0f} s")
        except BaseException:  # refused, timed out or cancelled: it no longer waits
            self.shared.leave(self)
            raise
        self._changed.clear()
        return self

    async def __aexit__(self, *_: object) -> None:
        self.shared.leave(self)


READY_SECONDS = 30.0  # a shared watch's first list: a step waits this long for it at most


class Changing(Protocol):
    async def changed(self, every: float) -> None: ...


async def any_change(every: float, *watched: Changing) -> None:
    """Wait until any of the watched sets changes, or `every` seconds."""
    waits = [asyncio.ensure_future(w.changed(every)) for w in watched]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for finished in done:
            finished.result()  # a set that can no longer be read raises
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.wait(waits)


class Gone(Exception):
    """The server can no longer resume a watch from its resource version (410): list again."""


class Follower:
    """One workload kind's objects (in a namespace, or in all of them: `namespace=""`), listed once
    and then followed by a watch that resumes where the last one ended.

    `Watched` lists again every time its watch ends, which suits a step that waits a minute. A
    follower runs for the operator's life: the server ends a watch every few minutes, and listing
    every managed object each time is the polling the watch is there to avoid. So it lists only at
    start, when the server answers 410 Gone (the version is too old to resume), or after an error.
    `listed(namespace, items)` gets each whole list; `changed(type, body)` each event after it. It
    reads the event stream itself: the client's `Watch` would decode every event twice.
    """

    def __init__(
        self,
        kube: Kube,
        kind: str,
        namespace: str,
        labels: dict[str, str],
        listed: Callable[[str, list[dict[str, Any]]], None],
        changed: Callable[[str, dict[str, Any]], None],
        *,
        without: tuple[str, ...] = (),
        watch_seconds: int = 300,
    ) -> None:
        api, suffix = kube._typed(kind, kube.watch_api)
        self.what = f"{kind} in {namespace or 'all namespaces'}"
        self.namespace = namespace
        method = f"list_namespaced_{suffix}" if namespace else f"list_{suffix}_for_all_namespaces"
        self._lister = getattr(api, method)
        self._selector = ",".join([*(f"{k}={v}" for k, v in sorted(labels.items())), *(f"!{k}" for k in without)])
        self._listed = listed
        self._changed = changed
        self._watch_seconds = watch_seconds
        self.lists = 0  # how many times it listed: once, unless the watch could not be resumed
        self.ready = asyncio.Event()  # set after the first list
        self.failure: Exception | None = None  # why it is not following now (None while it is)
        self.refused = asyncio.Event()  # set while the failure is one no retry will change (403)

    def _args(self) -> tuple[Any, ...]:
        return (self.namespace,) if self.namespace else ()

    async def _list(self) -> str:
        listed = await call(
            f"list {self.what}",
            lambda: self._read_list(_preload_content=False, label_selector=self._selector, _request_timeout=60),
        )
        self._listed(self.namespace, list(listed.get("items") or []))
        self.lists += 1
        self.failure = None
        self.refused.clear()
        self.ready.set()
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def _read_list(self, **kwargs: Any) -> dict[str, Any]:
        return await _json(await self._lister(*self._args(), **kwargs))

    async def _watch(self, version: str) -> str:
        """Follow from `version` until the server ends the watch; the version to resume from."""
        response = await self._lister(
            *self._args(),
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_seconds,
            label_selector=self._selector,
            _preload_content=False,
            _request_timeout=self._watch_seconds + 30,  # a half-open connection ends too
        )
        try:
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=(await response.read()).decode("utf-8", "replace"))
            while line := await response.content.readline():
                event = json.loads(line)
                kind, body = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if body.get("code") == 410:
                        raise Gone(body.get("message") or "gone")
                    raise ApiException(status=body.get("code"), reason=body.get("message"))
                version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._changed(kind, body)
            return version
        finally:
            response.release()

    async def run(self) -> None:
        """List, then follow for ever; never raises. After an error it lists again (and `ready` is
        clear until it has: the caller reads the API meanwhile); a watch that keeps ending at once,
        or 410 Gone right after each list, backs off up to 32 s."""
        failures = 0
        version = ""
        while True:
            opened = time.monotonic()
            try:
                if not version:
                    version = await self._list()
                version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except Gone:
                version = ""  # too old to resume: list again
            except Exception as error:  # the watch or the list failed: list again after a pause
                version = ""
                self.ready.clear()
                self.failure = (
                    error
                    if isinstance(error, (TransientError, PermanentError))
                    else map_error(error, f"watch {self.what}")
                    if isinstance(error, (TimeoutError, ApiException, aiohttp.ClientError, ConnectionError))
                    else TransientError(f"following {self.what}: {type(error).__name__}: {error}")
                )
                if isinstance(self.failure, PermanentError):
                    self.refused.set()
                if failures % 20 == 0:
                    logger.warning("following %s: %s (listing again)", self.what, error)
            lasted = time.monotonic() - opened
            failures = 0 if lasted > min(5.0, self._watch_seconds / 2) else min(failures + 1, 6)
            if failures:
                await asyncio.sleep(0.5 * 2**failures)
