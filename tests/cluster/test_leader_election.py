"""Leader election against the real API server: one holder, a takeover only after the Lease goes
unrenewed, a leader that wakes up to find it lost says so, and a clean release hands over at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from bosun.kube import Kube
from bosun.leader import LeaseElector
from tests.support.cluster import LocalCluster

pytestmark = pytest.mark.cluster

FAST = {"lease_seconds": 3.0, "renew_deadline": 2.0, "retry_period": 0.5}


async def test_one_holder_and_a_takeover_only_after_the_lease_goes_unrenewed(
    cluster: LocalCluster, namespace: str
) -> None:
    kube = await Kube.connect(str(cluster.kubeconfig), cluster.context)
    try:
        first = LeaseElector(kube, namespace, "bosun", "first", **FAST)
        second = LeaseElector(kube, namespace, "bosun", "second", **FAST)
        await asyncio.wait_for(first.acquire(), 5)
        lost: list[str] = []
        keeping = asyncio.create_task(first.keep(lost.append))
        waiting = asyncio.create_task(second.acquire())
        await asyncio.sleep(2 * FAST["lease_seconds"])  # two whole leases: renewed all along
        assert not waiting.done() and not lost

        keeping.cancel()  # the leader freezes (or dies): no more renewals
        frozen_at = time.monotonic()
        await asyncio.wait_for(waiting, 10)
        took = time.monotonic() - frozen_at
        assert FAST["lease_seconds"] - 1 <= took <= FAST["lease_seconds"] + 2 * FAST["retry_period"] + 1

        await asyncio.wait_for(first.keep(lost.append), 5)  # it wakes up: it must learn it lost, at once
        assert len(lost) == 1 and "held by second" in lost[0]
        assert not first.leading and second.leading
        lease = await kube.read(namespace, "Lease", "bosun")
        assert lease is not None
        assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("second", 1)

        third = LeaseElector(kube, namespace, "bosun", "third", **FAST)
        await second.release()  # a clean shutdown: no need to wait out the lease
        released_at = time.monotonic()
        await asyncio.wait_for(third.acquire(), 5)
        assert time.monotonic() - released_at < FAST["lease_seconds"] - 1
    finally:
        await kube.close()
