"""Leader election with a `coordination.k8s.io` Lease: only the holder acts.

Why a Lease and not Kopf's peering: peering pauses handlers when a peer of higher priority shows
up, but it is a protocol of Kopf's own (a KopfPeering resource, priorities set by hand), it has
let timers and daemons run on a paused operator (Kopf issue 1266), and nothing else in a cluster
understands it. A Lease is the Kubernetes convention (kube-controller-manager, client-go,
controller-runtime, CloudNativePG), shows in `kubectl get lease`, and lets Bosun not start Kopf
at all until it leads: a standby has no handlers, daemons or timers to pause.

The timing is client-go's and CloudNativePG's: a Lease lasts 15 s after its last renewal, the
holder renews every 2 s, and a holder that could not renew for 10 s gives up. Giving up means the
process exits at once (Kubernetes restarts it as a standby): an operation's steps are written to
survive exactly that, and exiting is the only way to be sure no handler acts after losing.

Expiry is judged by the local clock from when this process *saw* the record change (client-go's
`observedTime`), never by comparing another machine's `renewTime` with ours: clock skew between
nodes cannot make two leaders.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bosun import metrics
from bosun.errors import PermanentError, TransientError
from bosun.kube import Kube
from bosun.models.base import now

logger = logging.getLogger(__name__)


def micro_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseView:
    """What a Lease says, reduced to what the election compares."""

    holder: str
    renewed: str
    transitions: int

    @classmethod
    def of(cls, body: dict[str, Any] | None) -> LeaseView | None:
        if body is None:
            return None
        spec = body.get("spec") or {}
        holder, renewed = spec.get("holderIdentity") or "", spec.get("renewTime") or ""
        return cls(holder, renewed, int(spec.get("leaseTransitions") or 0))


def claim_spec(
    view: LeaseView | None, me: str, now: datetime, lease_seconds: float, acquired: str | None
) -> dict[str, Any]:
    """The spec to write to hold the Lease: a renewal if it is mine, else a takeover."""
    mine = view is not None and view.holder == me
    transitions = 0 if view is None else view.transitions + (0 if mine or not view.holder else 1)
    stamp = micro_time(now)
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": max(1, round(lease_seconds)),
        "acquireTime": acquired if mine and acquired else stamp,
        "renewTime": stamp,
        "leaseTransitions": transitions,
    }


def may_take(view: LeaseView | None, me: str, unchanged_for: float, lease_seconds: float) -> bool:
    """Free, mine, released (no holder), or not renewed for a whole lease as this process saw it.

    "Mine" covers a restarted container of the same pod (the identity is the pod's name): the
    old container is gone, so it need not wait out its own Lease.
    """
    return view is None or view.holder in ("", me) or unchanged_for >= lease_seconds


def identity_of(pod_name: str, hostname: str) -> str:
    """The pod's name in a pod (stable across container restarts); else the host and a random suffix."""
    return pod_name or f"{hostname}_{uuid.uuid4().hex[:8]}"


class LeaseElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.clock = clock
        self.leading = False
        self.last_attempt = clock()
        self._seen: LeaseView | None = None
        self._seen_at = clock()
        self._acquired: str | None = None
        self._renewed_at = clock()

    async def _try(self) -> bool:
        """One attempt to take or renew the Lease; True if this process holds it now."""
        self.last_attempt = self.clock()
        body = await self.kube.read(self.namespace, "Lease", self.name)
        view = LeaseView.of(body)
        if view != self._seen:
            self._seen, self._seen_at = view, self.clock()
        if not may_take(view, self.identity, self.clock() - self._seen_at, self.lease_seconds):
            return False
        spec = claim_spec(view, self.identity, now(), self.lease_seconds, self._acquired)
        if body is None:
            manifest = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec,
            }
            if await self.kube.create_object(self.namespace, manifest) is None:
                return False  # someone else created it first
        else:
            await self.kube.replace(self.namespace, {**body, "spec": spec})  # on the version read: 409 if raced
        self._acquired = spec["acquireTime"]
        self._seen = LeaseView(self.identity, spec["renewTime"], spec["leaseTransitions"])
        self._seen_at = self.clock()
        return True

    async def acquire(self) -> None:
        """Wait (as a standby) until this process holds the Lease."""
        logger.info("waiting for the leader Lease %s/%s as %s", self.namespace, self.name, self.identity)
        while True:
            try:
                if await asyncio.wait_for(self._try(), timeout=self.retry_period * 2):
                    break
            except TransientError as error:
                logger.info("leader Lease not taken this time: %s", error)
            except (PermanentError, TimeoutError) as error:  # e.g. no right to the Lease: say it loudly
                logger.warning("leader Lease cannot be taken: %s", error)
            await asyncio.sleep(self.retry_period)
        self.leading = True
        self._renewed_at = self.clock()
        metrics.LEADER.set(1)
        metrics.LEADER_TRANSITIONS.inc()
        logger.info("became the leader (Lease %s/%s held by %s)", self.namespace, self.name, self.identity)

    async def keep(self, lost: Callable[[str], None]) -> None:
        """Renew until told to stop; call `lost` (which must stop this process) once leadership is gone."""
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                left = self.renew_deadline - (self.clock() - self._renewed_at)
                if await asyncio.wait_for(self._try(), timeout=max(0.1, min(left, self.retry_period * 2))):
                    self._renewed_at = self.clock()
                    continue
                reason = f"the Lease is held by {self._seen.holder if self._seen else 'nobody'}"
            except (TransientError, PermanentError, TimeoutError) as error:
                if self.clock() - self._renewed_at < self.renew_deadline:
                    logger.warning("leader Lease not renewed (retrying): %s", error)
                    continue
                reason = f"could not renew the Lease for {self.renew_deadline:.0f}s: {error}"
            self.leading = False
            metrics.LEADER.set(0)
            lost(reason)
            return

    async def release(self) -> None:
        """On a clean shutdown: hand the Lease back so a standby takes over at once, not after 15 s."""
        if not self.leading:
            return
        self.leading = False
        metrics.LEADER.set(0)
        try:
            body = await self.kube.read(self.namespace, "Lease", self.name)
            if body is None or (body.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            released = micro_time(now())
            spec = {**body["spec"], "holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": released}
            await self.kube.replace(self.namespace, {**body, "spec": spec})
            logger.info("leader Lease released")
        except (TransientError, PermanentError) as error:
            logger.warning("leader Lease not released (a standby takes over when it expires): %s", error)

    def alive(self) -> bool:
        """For /healthz: the election loop still runs (a standby is healthy while it keeps trying)."""
        return self.leading or self.clock() - self.last_attempt < 3 * self.retry_period + 10
