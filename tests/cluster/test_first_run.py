"""A newcomer's first run: `hack/demo` on a brand-new cluster (its own fresh etcd, its own port).

The demo once failed on every new cluster: it created an App the moment its CRD was Established,
seconds before the API server served the kind. Clusters that had run before hid it, so this test
always starts a new one, runs the whole demo against it, and deletes it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.operator_process import free_port

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def new_cluster_env() -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "BOSUN_CLUSTER_NAME": f"first-run-{uuid.uuid4().hex[:6]}",
        "BOSUN_APISERVER_PORT": str(free_port()),
    }
    env.pop("KUBECONFIG", None)  # the demo must use the cluster it starts, never the tests' own
    yield env
    subprocess.run([str(ROOT / "hack" / "cluster"), "down"], env=env, capture_output=True, check=False, timeout=120)


@pytest.mark.timeout(900)
def test_the_demo_works_on_a_brand_new_cluster(new_cluster_env: dict[str, str]) -> None:
    demo = subprocess.run(
        [str(ROOT / "hack" / "demo")], env=new_cluster_env, capture_output=True, text=True, timeout=900, check=False
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-6000:]
    assert "is up in" in output, "the demo did not start a new cluster: " + output[-2000:]
    assert "not found" not in output and "ServiceUnavailable" not in output, output[-4000:]
    # The summary tells the story with measured values, not placeholders.
    assert "What you saw:" in output
    assert "of its 3 web pods were available at every moment of the roll-out" in output
    assert "(not sampled)" not in output and "at least 0 of" not in output, output[-3000:]
    assert "it was down for ?" not in output
    assert "kubectl bosun status" in output and "kubectl bosun logs" in output and "kubectl bosun plan" in output


def test_the_demo_refuses_an_unknown_argument_at_once() -> None:
    result = subprocess.run([str(ROOT / "hack" / "demo"), "--fast"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "unknown argument '--fast'" in result.stderr
