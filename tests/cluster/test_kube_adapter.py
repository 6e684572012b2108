"""The API adapter reads plain JSON, not the client's typed models: the answers and errors must not change.

The adapter asks the API server for raw bodies (the typed round trip was a third of the
operator's CPU under load), so this checks, against the real API server, what steps rely on:
camelCase keys and the server's own timestamps, `None` for a missing object, `None` for a create
that finds its object already there, a conflict as a TransientError, a refusal as a
PermanentError with the server's message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bosun.errors import PermanentError, TransientError
from bosun.kube import Follower, Kube

pytestmark = pytest.mark.cluster


def secret(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}}


async def test_reads_and_writes_answer_plain_json_with_the_same_errors(kube: Kube, namespace: str) -> None:
    assert await kube.read(namespace, "Secret", "nothing-here") is None
    made = await kube.create_object(namespace, secret("s1"))
    assert made is not None and made["metadata"]["name"] == "s1"
    assert made["metadata"]["creationTimestamp"].endswith("Z")  # as the server wrote it
    assert await kube.create_object(namespace, secret("s1")) is None  # already there: done before
    read = await kube.read(namespace, "Secret", "s1")
    assert read is not None and read["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
    assert [s["metadata"]["name"] for s in await kube.list_labelled(namespace, "Secret", {})] == ["s1"]

    stale = {**read, "metadata": {**read["metadata"], "resourceVersion": "1"}}
    with pytest.raises(TransientError, match="replace Secret"):
        await kube.replace(namespace, stale)
    patched = await kube.patch_object(namespace, "Secret", "s1", {"metadata": {"labels": {"a": "b"}}})
    assert patched["metadata"]["labels"] == {"a": "b"}

    bad = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Not_A_Name"}}
    with pytest.raises(PermanentError, match="Invalid value") as refused:
        await kube.create_object(namespace, bad)
    assert not isinstance(refused.value, TransientError)

    applied = await kube.apply(namespace, {**secret("s2"), "stringData": {"x": "y"}})
    assert applied["data"] == {"x": "eQ=="}
    assert await kube.list_pods(namespace, {"app": "none"}) == []


def labelled(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {}}


async def test_a_follower_resumes_its_watch_rather_than_listing_again(kube: Kube, namespace: str) -> None:
    """Drift repair follows every managed object for the operator's life: each time the server
    ends a watch, it must resume from where it was, not read every object again."""
    lists: list[list[str]] = []
    seen: list[tuple[str, str]] = []
    follower = Follower(
        kube,
        "ConfigMap",
        namespace,
        {"bosun-test": "followed"},
        lambda _, items: lists.append(sorted(i["metadata"]["name"] for i in items)),
        lambda event, body: seen.append((event, body["metadata"]["name"])),
        watch_seconds=1,  # the server ends each watch after a second
    )
    await kube.create_object(namespace, labelled("before", {"bosun-test": "followed"}))
    task = asyncio.get_running_loop().create_task(follower.run())
    try:
        await asyncio.wait_for(follower.ready.wait(), 10)
        await kube.create_object(namespace, labelled("other", {"bosun-test": "not-this"}))
        await kube.create_object(namespace, labelled("a", {"bosun-test": "followed"}))
        await asyncio.sleep(2.5)  # across at least one end of the watch
        await kube.patch_object(namespace, "ConfigMap", "a", {"data": {"k": "v"}})
        await asyncio.sleep(1.5)
        await kube.delete(namespace, "ConfigMap", "a")
        for _ in range(100):
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
    finally:
        task.cancel()
        await asyncio.wait([task])
    assert lists == [["before"]] and follower.lists == 1
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


async def test_waiters_share_one_watch_and_each_wakes_only_for_its_own_objects(kube: Kube, namespace: str) -> None:
    """500 App roll-outs held 1,000 watches (and TLS connections) open: now a namespace's managed
    objects of a kind are one list and one watch, and a change wakes only the waiters of its App."""
    mine = {"bosun-test": "shared"}
    await kube.create_object(namespace, labelled("a-1", {**mine, "inst": "a"}))
    await kube.create_object(namespace, labelled("b-1", {**mine, "inst": "b"}))
    await kube.create_object(namespace, labelled("a-other", {"bosun-test": "not-managed", "inst": "a"}))
    views = [kube.shared(namespace, "ConfigMap", index="inst", value=v, labels=mine, linger=0.5) for v in "ab"]
    a, b = views
    assert a.shared is b.shared
    async with a, b:
        assert a.shared.follower.lists == 1
        assert set(a.objects) == {"a-1"} and set(b.objects) == {"b-1"}
        assert "managedFields" not in a.objects["a-1"]["metadata"]
        waiting_a = asyncio.ensure_future(a.changed(10))
        waiting_b = asyncio.ensure_future(b.changed(10))
        await kube.patch_object(namespace, "ConfigMap", "a-1", {"data": {"k": "v"}})
        await asyncio.wait_for(waiting_a, 5)  # woken by its change, well before its 10 s
        assert a.objects["a-1"]["data"] == {"k": "v"}
        await asyncio.sleep(1)
        assert not waiting_b.done()  # another App's change does not wake it
        await kube.delete(namespace, "ConfigMap", "b-1")
        await asyncio.wait_for(waiting_b, 5)
        assert b.objects == {}
        assert a.shared.follower.lists == 1
    shared = a.shared
    assert not shared.stopped  # lingers for the next roll-out
    async with kube.shared(namespace, "ConfigMap", index="inst", value="a", labels=mine, linger=0.5) as again:
        assert again.shared is shared and shared.follower.lists == 1  # no list again
    await asyncio.sleep(1.5)
    assert shared.stopped  # no waiter for its linger time: the watch ended
    async with kube.shared(namespace, "ConfigMap", index="inst", value="a", labels=mine, linger=0.5) as fresh:
        assert fresh.shared is not shared and set(fresh.objects) == {"a-1"}
