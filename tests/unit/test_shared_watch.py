"""The watch App roll-outs share (`kube.Shared`): what each waiter sees, and that none is left behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client

from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube, Shared, SharedView


class FakeFollower:
    """Stands in for the list and watch: the test says when it is ready or refused."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.refused = asyncio.Event()
        self.failure: Exception | None = None

    async def run(self) -> None:
        await asyncio.Event().wait()  # follows until cancelled


def pod(name: str, app: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"inst": app}, "managedFields": [{"manager": "kubelet"}]}}


@pytest.fixture
async def shared() -> Shared:
    kube = Kube(client.ApiClient())
    made = Shared(kube, "Pod", "ns", {"managed": "yes"}, "inst", linger=0.05)
    made.follower = FakeFollower()  # type: ignore[assignment]
    return made


async def test_a_pod_relabelled_out_of_its_app_leaves_that_apps_view(shared: Shared) -> None:
    """Taking a pod out of its ReplicaSet by relabelling it: the App must stop counting it."""
    shop, other = SharedView(shared, "shop"), SharedView(shared, "other")
    shared.follower.ready.set()
    async with shop, other:
        shared._listed("ns", [pod("p1", "shop"), pod("p2", "shop")])
        assert set(shop.objects) == {"p1", "p2"}
        assert "managedFields" not in shop.objects["p1"]["metadata"]
        shop._changed.clear()
        other._changed.clear()
        shared._changed("MODIFIED", pod("p1", "other"))
        assert set(shop.objects) == {"p2"} and set(other.objects) == {"p1"}
        assert shop._changed.is_set() and other._changed.is_set()  # both Apps look again
        shared._changed("DELETED", pod("p1", "other"))
        assert set(other.objects) == set() and set(shop.objects) == {"p2"}


async def test_a_change_wakes_only_the_views_of_its_app(shared: Shared) -> None:
    shop, other = SharedView(shared, "shop"), SharedView(shared, "other")
    shared.follower.ready.set()
    async with shop, other:
        shared._changed("ADDED", pod("p1", "shop"))
        assert shop._changed.is_set() and not other._changed.is_set()


async def test_a_waiter_cancelled_while_the_list_is_pending_is_not_left_behind(shared: Shared) -> None:
    """A step cancelled (timeout, cancel, stop) before the first list: the watch still stops."""
    entering = asyncio.ensure_future(SharedView(shared, "shop").__aenter__())
    await asyncio.sleep(0.01)
    assert shared.views
    entering.cancel()
    await asyncio.wait([entering])
    assert not shared.views
    await asyncio.sleep(0.1)  # its linger time
    assert shared.stopped


async def test_a_refused_list_fails_the_waiter_at_once_with_its_reason(shared: Shared) -> None:
    """403 (a namespace the role does not cover) is no reason to wait out the step's timeout."""
    shared.follower.failure = PermanentError("list Pod in ns: forbidden", "ApiRefused")
    shared.follower.refused.set()
    with pytest.raises(PermanentError, match="forbidden"):
        await asyncio.wait_for(SharedView(shared, "shop").__aenter__(), 1)
    assert not shared.views


async def test_a_copy_being_listed_again_is_never_judged(shared: Shared) -> None:
    view = SharedView(shared, "shop")
    shared.follower.ready.set()
    async with view:
        view.check()
        shared.follower.ready.clear()  # the watch failed: it lists again
        shared.follower.failure = TransientError("watch Pod in ns: 500")
        with pytest.raises(TransientError, match="not following"):
            view.check()
