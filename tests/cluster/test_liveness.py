"""/healthz fails when the operator's watch streams (and API connection) go silently dead."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import LocalCluster
from tests.support.operator_process import OperatorProcess
from tests.support.tcp_proxy import FreezableProxy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def proxy(cluster: LocalCluster) -> Iterator[FreezableProxy]:
    server = re.search(r"server: https://127\.0\.0\.1:(\d+)", cluster.kubeconfig.read_text())
    assert server, "expected a loopback API server in the test kubeconfig"
    proxy = FreezableProxy("127.0.0.1", int(server.group(1)))
    yield proxy
    proxy.close()


def test_healthz_fails_when_the_watch_goes_silent(cluster: LocalCluster, proxy: FreezableProxy, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        re.sub(r"(server: https://127\.0\.0\.1:)\d+", rf"\g<1>{proxy.port}", cluster.kubeconfig.read_text())
    )
    operator = OperatorProcess(kubeconfig, tmp_path, env={"BOSUN_HEARTBEAT_SECONDS": "1"})
    operator.start()
    try:
        wait_for(lambda: operator.healthz() == 200, timeout=20, what="a healthy operator")
        proxy.frozen.set()
        wait_for(lambda: operator.healthz() not in (200, None), timeout=40, interval=1, what="/healthz to fail")
    finally:
        proxy.frozen.clear()
        operator.stop()


def test_logs_are_structured_json(cluster: LocalCluster, tmp_path: Path) -> None:
    operator = OperatorProcess(cluster.kubeconfig, tmp_path, log_format="json")
    operator.start()
    assert operator.stop() == 0  # SIGTERM: a clean shutdown
    lines = [line for line in operator.log_text().splitlines() if line.startswith("{")]
    assert len(lines) >= 3
    records = [json.loads(line) for line in lines]
    assert all("message" in r and "timestamp" in r and "severity" in r for r in records)
    assert any("startup" in r["message"] for r in records)
