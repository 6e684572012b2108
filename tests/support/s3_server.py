"""A real S3-compatible server for tests: SeaweedFS's all-in-one server with its S3 gateway.

It is built from its Go module by hack/bootstrap (cached in ~/.cache/bosun) and runs as its own
process on free loopback ports. It keeps objects on disk, so it can be SIGKILLed and started again
over the same directory: a store that dies and comes back, as in production. (moto, used before,
keeps objects in memory, so its outage could only be a SIGSTOP.)
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from tests.support.cluster import cached_binary
from tests.support.operator_process import die_with_parent, free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bosun-test", "AWS_SECRET_ACCESS_KEY": "bosun-test", "AWS_REGION": "us-east-1"}


def seaweedfs_binary() -> Path:
    return cached_binary("seaweedfs", "SEAWEEDFS_VERSION", "weed")


class SeaweedFS:
    """`weed server` with master, volume, filer and S3 gateway on loopback, its data in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.ports = {name: _low_free_port() for name in ("master", "volume", "filer", "s3")}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.config = root / "s3.json"
        identity = {
            "name": "bosun",
            "credentials": [
                {"accessKey": CREDENTIALS["AWS_ACCESS_KEY_ID"], "secretKey": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
            ],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._lock = threading.Lock()

    def start(self, timeout: float = 60) -> None:
        """Start it (over the same data) unless it runs; a timer and the harness may both ask."""
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                return
            self._start(timeout)

    def _start(self, timeout: float) -> None:
        self.starts += 1
        log = open(self.root / f"weed-{self.starts}.log", "wb")  # noqa: SIM115 - owned by the process
        ports = self.ports
        self.process = subprocess.Popen(
            [
                str(seaweedfs_binary()), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.data}",
                f"-master.port={ports['master']}", f"-master.port.grpc={ports['master'] + 10000}",
                "-master.volumeSizeLimitMB=64", "-master.telemetry=false", "-master.resumeState=false",
                f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume'] + 10000}", "-volume.max=16",
                "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer'] + 10000}",
                "-s3", "-s3.autoCreateBucket=false", f"-s3.port={ports['s3']}",
                f"-s3.port.grpc={ports['s3'] + 10000}", f"-s3.config={self.config}",
                "-s3.port.iceberg=0", "-s3.port.lance=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            # PR_SET_PDEATHSIG fires when the forking *thread* ends: only the main thread's child gets it.
            preexec_fn=die_with_parent if threading.current_thread() is threading.main_thread() else None,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client().list_buckets()
                if self._writable():
                    return
            except Exception:  # not up yet: connection refused, or the filer not ready
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"seaweedfs did not start; see {self.root}") from None
                time.sleep(0.3)

    def _writable(self) -> bool:
        """The master leads (after a restart it takes a moment): writes would fail until then."""
        url = f"http://127.0.0.1:{self.ports['master']}/cluster/status"
        with urllib.request.urlopen(url, timeout=2) as answer:
            status = json.loads(answer.read())
        return bool(status.get("IsLeader")) and bool(status.get("Leader"))

    def kill(self) -> None:
        """SIGKILL: the store dies mid-request; what it wrote to disk stays."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)  # it lingers 10 s for its heartbeats; nobody needs that here
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=CREDENTIALS["AWS_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        return {**CREDENTIALS, "BOSUN_STORE_URL": f"s3://{bucket}/{prefix}", "BOSUN_S3_ENDPOINT_URL": self.endpoint}


def _low_free_port() -> int:
    """A free port whose gRPC twin (port + 10000, SeaweedFS's convention) is a valid port too."""
    while True:
        port = free_port()
        if port < 55000:
            return port


@contextmanager
def seaweedfs_server(root: Path) -> Iterator[SeaweedFS]:
    server = SeaweedFS(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
