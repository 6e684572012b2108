"""A real S3-compatible server for tests: moto in server mode, as its own process on a free port.

moto's server is a separate process speaking S3 over HTTP, installed with the dev dependencies, so
it needs no build step. Stopping the process with SIGSTOP
and resuming it with SIGCONT is a store outage that keeps the stored objects.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.support.operator_process import die_with_parent, free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bosun-test", "AWS_SECRET_ACCESS_KEY": "bosun-test", "AWS_REGION": "us-east-1"}


@dataclass
class S3Server:
    process: subprocess.Popen[bytes]
    endpoint: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=CREDENTIALS["AWS_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """What the operator needs to use this server as its store."""
        return {**CREDENTIALS, "BOSUN_STORE_URL": f"s3://{bucket}/{prefix}", "BOSUN_S3_ENDPOINT_URL": self.endpoint}


@contextmanager
def s3_server(log_dir: Path) -> Iterator[S3Server]:
    port = free_port()
    log = open(log_dir / "moto.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **CREDENTIALS},
        preexec_fn=die_with_parent,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"moto_server did not start; see {log_dir / 'moto.log'}") from None
            time.sleep(0.2)
    server = S3Server(process, endpoint)
    try:
        yield server
    finally:
        server.resume()
        process.terminate()
        process.wait(timeout=10)
        log.close()
