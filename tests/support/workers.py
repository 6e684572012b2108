"""What sets pytest-xdist's workers apart on this machine: a cluster and a block of ports each.

A worker is named by xdist in PYTEST_XDIST_WORKER (`gw0`, `gw1`, ...); without xdist there is one
process, which is worker 0. Worker 0 keeps the usual cluster (`bosun`, port 36443) so that a run
without xdist and the first worker reuse the same one; worker n > 0 gets `bosun-gwN` on port
36443 + n. Ports a test picks for its own servers (the operator's probes, the S3 server) come from
a block of ports this process holds a lock on for its whole life, so that no other process on the
machine (the other worker, a benchmark, the fault harness, another checkout's tests) hands out the
same port, even one this process's server left free for a moment (an operator SIGKILLed and
started again on its port).
"""

from __future__ import annotations

import fcntl
import os
from functools import cache
from pathlib import Path
from typing import IO

# Four blocks of 2000 from 14000: clear of the real nodes' ports (10011-10256), and with SeaweedFS's
# gRPC twins (+10000) still below kwokctl's ports (scanned down from 32767) and the kernel's
# ephemeral range (32768+).
PORT_BLOCKS = 4
PORTS_PER_BLOCK = 2000
FIRST_PORT = 14000
_held: list[IO[str]] = []  # the lock files of the block this process holds, open until it exits


def worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name.removeprefix("gw") or 0)


def use_own_cluster() -> None:
    """Name this worker's cluster in the environment every helper and hack script reads."""
    n = worker_index()
    if n == 0 or os.environ.get("BOSUN_TEST_KUBECONFIG"):
        return
    os.environ["BOSUN_CLUSTER_NAME"] = f"{os.environ.get('BOSUN_CLUSTER_NAME', 'bosun')}-gw{n}"
    os.environ["BOSUN_APISERVER_PORT"] = str(int(os.environ.get("BOSUN_APISERVER_PORT", "36443")) + n)
    os.environ.pop("BOSUN_REAL_NODES", None)  # the real nodes are the machine's: one cluster has them


@cache
def port_range() -> range | None:
    """This process's block of ports (its worker's block first, else the first one free), or None
    when every block is held: then the kernel picks (port 0), as before blocks existed."""
    folder = Path(os.environ.get("BOSUN_CACHE", Path.home() / ".cache" / "bosun")) / "ports"
    folder.mkdir(parents=True, exist_ok=True)
    for offset in range(PORT_BLOCKS):
        block = (worker_index() + offset) % PORT_BLOCKS
        lock = open(folder / f"block-{block}.lock", "w")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held.append(lock)
        start = FIRST_PORT + block * PORTS_PER_BLOCK
        return range(start, start + PORTS_PER_BLOCK)
    return None
