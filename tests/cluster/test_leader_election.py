"""Leader election against the real API server: one holder, a takeover only after the Lease goes
unrenewed, a leader that wakes up to find it lost says so, and a clean release hands over at once."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from kubernetes import config

from bosun.kube import Kube
from bosun.leader import LeaseElector
from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

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


def test_two_operators_started_without_flags_never_both_act(
    cluster: LocalCluster, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Leader election is the default: a second `bosun run` started the same way by accident stands
    by (it once drove every step of the same operation as the first)."""
    lease = {"BOSUN_LEADER_ELECTION": "", "BOSUN_LEADER_ELECTION_NAMESPACE": namespace}  # unset: the default
    first, second = (
        OperatorProcess(cluster.kubeconfig, tmp_path_factory.mktemp(f"twin-{n}"), env=lease) for n in (1, 2)
    )
    first.start()
    second.start()  # healthy as a standby
    try:

        def leading(process: OperatorProcess) -> bool:
            return bool(re.search(r"^bosun_leader 1\.0$", process.metrics(), re.MULTILINE))

        wait_for(lambda: leading(first) or leading(second), what="one of them to lead")
        leader, standby = (first, second) if leading(first) else (second, first)
        assert not leading(standby)
        bosun = Bosun(config.new_client_from_config(str(cluster.kubeconfig)), cluster, namespace)
        bosun.app("shop")
        bosun.operation("once", "shop")
        assert bosun.wait_phase("once", timeout=120)["phase"] in ("Succeeded", "Failed")
        assert "became the leader" in leader.log_text() and "Handler" in leader.log_text()
        assert "waiting for the leader Lease" in standby.log_text()
        assert "became the leader" not in standby.log_text() and "Handler" not in standby.log_text()
    finally:
        first.stop()
        second.stop()
