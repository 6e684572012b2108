"""The operator as a real subprocess, so tests can SIGKILL it mid-step and start it again."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.workers import port_range

ROOT = Path(__file__).resolve().parents[2]


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now, from the block this process holds (tests/support/workers.py) and never
    handed out twice by it: a server started a moment later, or started again after a SIGKILL,
    still finds its port free."""
    ports = port_range()
    if ports is None:  # every block is held by other processes: let the kernel pick
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    for _ in range(2):
        for port in ports:
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
        _handed_out.clear()  # all handed out once: the earliest are long released
    raise RuntimeError(f"no free port left in {ports}")


def die_with_parent() -> None:
    """Linux: the operator gets SIGTERM when the test process dies, so no orphan keeps acting."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        module: str = "tests.support.operator_under_test",
        env: dict[str, str] | None = None,
        log_format: str = "plain",
        command: list[str] | None = None,
        program: list[str] | None = None,
        all_namespaces: bool = True,
    ) -> None:
        self.command = command or ["-m", module]  # e.g. ["-m", "bosun", "run"] for the product
        self.program = program or [sys.executable, *self.command]  # or an installed `bosun run`
        self.scope = ["-A"] if all_namespaces else []  # else BOSUN_NAMESPACES says
        self.log_format = log_format
        self.kubeconfig = kubeconfig
        self.extra_env = env or {}
        self.log_dir = log_dir
        self.module = module
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.port = free_port()
        self.metrics_port = free_port()

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        log = open(self.log_dir / f"operator-{self.starts}.log", "wb")  # noqa: SIM115 - owned by the process
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(ROOT),
            "BOSUN_STORE_URL": str(self.log_dir / "store"),
            # One process a test, often SIGKILLed and started again: no Lease to wait for. The tests
            # of leader election and of the chart's replicas set it themselves.
            "BOSUN_LEADER_ELECTION": "false",
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [
                *self.program,
                *self.scope,
                "--liveness-port",
                str(self.port),
                "--metrics-port",
                str(self.metrics_port),
                "--log-format",
                self.log_format,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        self.wait_healthy()

    def healthz(self) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None

    def metrics(self) -> str:
        """The Prometheus text of /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            return str(response.read().decode())

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"operator exited with {self.process.returncode}; see {self.log_dir}")
            if self.healthz() == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"operator not healthy after {timeout}s; see {self.log_dir}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last status write, as when a node dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, as Kubernetes stops a pod; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("operator did not stop within 15s of SIGTERM") from None

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log")))

    def refused(self) -> list[str]:
        """The log lines where the API server refused the operator a right (RBAC). Not a write into
        a namespace being deleted: that 403 is the namespace's end (an earlier test's), not a
        missing right."""
        return [
            line
            for line in self.log_text().splitlines()
            if "forbidden" in line.lower() and "because it is being terminated" not in line
        ]


def module_operator(kubeconfig: Path, log_dir: Path, **options: Any) -> Iterator[OperatorProcess]:
    """Body of a module-scoped fixture: one operator process for a test module, stopped at its end."""
    process = OperatorProcess(kubeconfig, log_dir, **options)
    process.start()
    yield process
    process.stop()


def ensure_running(process: OperatorProcess) -> None:
    """Start the operator again if a previous test killed it."""
    if process.process is None or process.process.poll() is not None:
        process.start()
