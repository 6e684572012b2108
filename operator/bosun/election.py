"""Leadership of a whole operator process: stand by until the Lease is ours, keep it while acting,
hand it back on the way out, and stop acting the moment it is lost.

The Lease protocol itself (claims, renewals, clock skew) is `bosun.leader`; this is what `bosun
run` does with it, kept apart from Kopf's handlers and from the services they drive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

from bosun import metrics
from bosun.kube import Kube
from bosun.leader import LeaseElector, identity_of
from bosun.settings import Settings

logger = logging.getLogger(__name__)


class Election:
    """Leadership for `run`: wait for the Lease as a standby, keep it while acting, hand it back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.elector: LeaseElector | None = None
        self.kube: Kube | None = None
        self.keeper: asyncio.Task[None] | None = None

    @property
    def standing_by(self) -> bool:
        return self.elector is not None and not self.elector.leading

    async def lead(self) -> bool:
        """True once this process may act; False if SIGTERM/SIGINT came while standing by."""
        if not self.settings.leader_election:
            metrics.LEADER.set(1)
            return True
        config = self.settings
        self.kube = await Kube.connect(config.kubeconfig)
        identity = identity_of(os.environ.get("POD_NAME", ""), socket.gethostname())
        self.elector = LeaseElector(
            self.kube,
            config.lease_home,
            config.leader_election_name,
            identity,
            lease_seconds=config.lease_seconds,
            renew_deadline=config.renew_deadline_seconds,
            retry_period=config.lease_retry_seconds,
        )
        metrics.LEADER.set(0)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        acquiring = loop.create_task(self.elector.acquire())
        stopping = loop.create_task(stop.wait())
        try:
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)  # Kopf installs its own
            stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquiring  # a Lease write in flight lands (or not) before step_down releases it
            return False
        if stop.is_set():  # SIGTERM came in the same turn as the Lease: hand it back, do not lead
            return False
        self.keeper = loop.create_task(self.elector.keep(_leadership_lost))
        self.keeper.add_done_callback(_keeper_ended)
        return True

    async def step_down(self) -> None:
        if self.keeper is not None:
            self.keeper.cancel()
        if self.elector is not None:
            await self.elector.release()
        if self.kube is not None:
            await self.kube.close()


def _keeper_ended(keeper: asyncio.Task[None]) -> None:
    """The renewal loop must outlive the leader's work: if it dies of anything, stop acting at once."""
    if not keeper.cancelled() and keeper.exception() is not None:
        _leadership_lost(f"the Lease renewal loop broke: {keeper.exception()!r}")


def _leadership_lost(reason: str) -> None:
    """Stop acting at once: another replica may lead now. Kubernetes restarts this one as a standby."""
    logger.critical("leadership lost, exiting at once: %s", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(75)
