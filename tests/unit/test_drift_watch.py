"""Drift repair driven by watches: what a change to a managed object leads to, without a cluster.

The followers' bookkeeping decides which events cost a request (an App looked at) and which are
dropped (a Deployment's status moving while its pods start); the check of an App decides when it
asks the API server at all. The watch loop itself (resume, 410 Gone, errors) is driven here by
scripted answers; tests/cluster/test_kube_adapter.py follows real objects on the API server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from bosun.kube import Follower, Kube
from bosun.models.names import CONFIG_HASH_ANNOTATION
from bosun.reconcile.service import AppRepair, summary


def deployment(name: str = "shop-web", replicas: int = 3, image: str = "shop:1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shop", "labels": {"app.kubernetes.io/instance": "shop"}},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"annotations": {CONFIG_HASH_ANNOTATION: "h1", "other": "x"}},
                "spec": {"containers": [{"image": image, "name": "web", "env": [{"name": "A", "value": "1"}]}]},
            },
        },
        "status": status,
    }


class Reads(Kube):
    """A Kube that counts reads of Apps and never reaches a server; `apps` are what it finds."""

    def __init__(self) -> None:
        super().__init__(client.ApiClient())
        self.finds: list[str] = []
        self.apps: dict[str, dict[str, Any]] = {}
        self.applied: list[str] = []
        self.failing: Exception | None = None

    async def read(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        if kind != "App":
            return None  # every workload object missing
        self.finds.append(name)
        if self.failing is not None:
            raise self.failing
        return self.apps.get(name)

    async def apply(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(f"{manifest['kind']} {manifest['metadata']['name']}")
        return manifest

    async def emit_event(self, *_: Any, **__: Any) -> None:
        return None


@pytest.fixture
async def kube() -> AsyncIterator[Reads]:
    reads = Reads()
    yield reads
    await reads.close()


def repair(
    kube: Kube, busy: set[str] | None = None, running: set[str] | None = None
) -> tuple[AppRepair, dict[str, asyncio.Lock]]:
    locks: dict[str, asyncio.Lock] = {}

    async def in_flight(_ns: str, _kind: str, name: str) -> bool:
        return name in (running or set())

    service = AppRepair(
        kube,
        ["shop"],
        lambda _ns, _kind, name: locks.setdefault(name, asyncio.Lock()),
        lambda _ns, _kind, name: name in (busy or set()),
        in_flight,
        full_seconds=600,
    )
    return service, locks


def released_app(name: str = "web", **meta: Any) -> dict[str, Any]:
    """An App whose current release runs one web process."""
    spec = {"image": "shop:1", "processes": [{"name": "web", "replicas": 2, "ports": [{"port": 8080}]}]}
    return {
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", **meta},
        "status": {
            "phase": "Running",
            "releases": [{"version": 1, "operation": "op-1", "spec": spec, "image": "shop:1", "configHash": "h"}],
        },
    }


def test_a_summary_keeps_what_drift_compares_and_nothing_else() -> None:
    kept = summary("Deployment", deployment(readyReplicas=1))
    assert kept == summary("Deployment", deployment(readyReplicas=3))  # status is not drift
    assert kept["spec"]["replicas"] == 3
    assert kept["spec"]["template"]["spec"]["containers"] == [{"image": "shop:1"}]
    assert kept["spec"]["template"]["metadata"]["annotations"] == {CONFIG_HASH_ANNOTATION: "h1"}
    assert summary("Service", {"metadata": {"name": "shop-web"}, "spec": {"ports": [1]}}) == {
        "metadata": {"name": "shop-web"}
    }


async def test_only_changes_that_matter_to_drift_poke_the_app(kube: Reads) -> None:
    service, _ = repair(kube)
    deployments = service._listed("Deployment")
    changed = service._changed("Deployment")
    deployments("shop", [deployment()])
    service._full, service._pending = False, set()
    changed("MODIFIED", deployment(readyReplicas=2))  # pods becoming ready
    assert service._pending == set()
    changed("MODIFIED", deployment(replicas=1))  # someone scaled it by hand
    assert service._pending == {("shop", "shop")}
    service._pending.clear()
    changed("DELETED", deployment(replicas=1))
    assert service._pending == {("shop", "shop")} and "shop" not in service.objects


async def test_a_new_list_replaces_the_kind_and_asks_for_a_full_round(kube: Reads) -> None:
    service, _ = repair(kube)
    service._listed("Deployment")("shop", [deployment("a"), deployment("b")])
    service._listed("Service")("shop", [{"metadata": {"name": "a", "namespace": "shop"}}])
    service._full = False
    service._listed("Deployment")("shop", [deployment("b")])  # after 410 Gone: 'a' went meanwhile
    assert sorted(service.objects["shop"]) == [("Deployment", "b"), ("Service", "a")]
    assert service._full


async def test_a_busy_app_costs_no_request_and_a_locked_one_is_looked_at_again(kube: Reads) -> None:
    service, locks = repair(kube, busy={"busy"})
    await service._check("shop", "busy")
    assert kube.finds == []
    lock = locks.setdefault("ending", asyncio.Lock())
    await lock.acquire()
    await service._check("shop", "ending")
    assert kube.finds == [] and service._pending == set()
    lock.release()
    await asyncio.sleep(1.1)
    assert service._pending == {("shop", "ending")}  # poked again once its operation let go
    await service._check("shop", "ending")
    assert kube.finds == ["ending"]


class Stream:
    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.status = 200
        self._lines = [json.dumps(line).encode() + b"\n" for line in lines]
        self.content = self
        self.released = False

    async def read(self) -> bytes:
        return b"".join(self._lines)

    async def readline(self) -> bytes:
        return self._lines.pop(0) if self._lines else b""

    def release(self) -> None:
        self.released = True


class Script:
    """A list method: lists answer version 10, 20, ...; watches play the scripted streams."""

    def __init__(self, streams: list[list[dict[str, Any]]]) -> None:
        self.streams = streams
        self.calls: list[str] = []
        self.opened: list[Stream] = []

    async def __call__(self, *_: Any, **options: Any) -> Any:
        if options.get("watch"):
            self.calls.append(f"watch from {options['resource_version']}")
            if not self.streams:
                await asyncio.sleep(3600)
            self.opened.append(Stream(self.streams.pop(0)))
            return self.opened[-1]
        self.calls.append("list")
        version = str(10 * self.calls.count("list"))
        return Stream([{"metadata": {"resourceVersion": version}, "items": []}])


def event(kind: str, name: str, version: str) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": name, "resourceVersion": version}}}


async def test_a_follower_resumes_after_an_end_and_lists_again_only_when_gone(kube: Reads) -> None:
    script = Script(
        [
            [event("ADDED", "a", "11"), {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}],
            [event("MODIFIED", "a", "16")],
            [{"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}],
            [event("DELETED", "a", "21")],
        ]
    )
    seen: list[str] = []
    follower = Follower(kube, "ConfigMap", "shop", {}, lambda *_: None, lambda t, b: seen.append(t))
    follower._lister = script
    follower._watch_seconds = 0  # no back-off between the scripted ends
    task = asyncio.get_running_loop().create_task(follower.run())
    for _ in range(100):
        if len(script.calls) >= 7:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait([task])
    assert script.calls == [
        "list", "watch from 10", "watch from 15", "watch from 16", "list", "watch from 20", "watch from 21",
    ]  # fmt: skip
    assert seen == ["ADDED", "MODIFIED", "DELETED"] and follower.lists == 2
    assert all(stream.released for stream in script.opened)  # every watch's connection given back


async def test_drift_found_is_repaired_unless_an_operation_is_in_flight_or_the_app_is_going(kube: Reads) -> None:
    """Just after a start the watch has not shown the deploy that was running: the API server is
    asked under the lock before anything is put back, and a deleted App is left to the collector."""
    service, _ = repair(kube, running={"resumed"})
    kube.apps = {
        "web": released_app("web"),
        "resumed": released_app("resumed"),
        "going": released_app("going", deletionTimestamp="2026-11-26T00:00:00Z"),
    }
    for follower in service.followers:
        follower.ready.set()  # the snapshot comes from the (empty) watches
    for name in ("resumed", "going"):
        await service._check("shop", name)
    assert kube.applied == []
    await service._check("shop", "web")  # nothing of it in the (empty) snapshot: all of it is put back
    assert kube.applied == ["Deployment web-web", "Service web-web", "PodDisruptionBudget web-web"]


async def test_an_app_whose_check_failed_is_looked_at_again(kube: Reads, monkeypatch: pytest.MonkeyPatch) -> None:
    """The object stays drifted, so no event would bring it back: the service must."""
    from bosun.errors import TransientError
    from bosun.reconcile import service as module

    monkeypatch.setattr(module, "RETRY_SECONDS", 0.05)
    service, _ = repair(kube)
    kube.failing = TransientError("503")
    await service._check("shop", "web")
    assert service._pending == set()
    await asyncio.sleep(0.1)
    assert service._pending == {("shop", "web")}


async def test_a_follower_that_cannot_watch_is_not_trusted_until_it_lists_again(kube: Reads) -> None:
    """A role without `watch` (an upgrade that did not re-apply it): the copy would go stale, so
    `ready` is cleared and drift repair reads the API server instead."""

    class Refused(Script):
        async def __call__(self, *args: Any, **options: Any) -> Any:
            if options.get("watch"):
                self.calls.append("watch refused")
                stream = Stream([])
                stream.status = 403
                return stream
            return await super().__call__(*args, **options)

    script = Refused([])
    follower = Follower(kube, "Service", "shop", {}, lambda *_: None, lambda *_: None)
    follower._lister = script
    task = asyncio.get_running_loop().create_task(follower.run())
    for _ in range(100):
        if "watch refused" in script.calls:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    assert follower.lists == 1 and not follower.ready.is_set()
    task.cancel()
    await asyncio.wait([task])
