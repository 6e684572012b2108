"""Finding or starting the local test cluster, and refusing any other.

Tests talk to a real API server. They must never touch a cluster someone cares about, so the
kubeconfig context must be the local one hack/cluster made (kwok-bosun) unless
BOSUN_ALLOW_ANY_CLUSTER=1 says otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

from bosun.models.names import API_VERSION, CREATED_BY
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_CONTEXT = f"kwok-{os.environ.get('BOSUN_CLUSTER_NAME', 'bosun')}"  # hack/cluster names it so


def hack_versions() -> dict[str, str]:
    """The versions pinned in hack/versions.env."""
    lines = (ROOT / "hack" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def cached_binary(tool: str, version_key: str, name: str) -> Path:
    """A binary hack/build.sh built into ~/.cache/bosun/bin/<tool>-<version>/<name>."""
    cache = Path(os.environ.get("BOSUN_CACHE", Path.home() / ".cache" / "bosun"))
    binary = cache / "bin" / f"{tool}-{hack_versions()[version_key]}" / name
    if not binary.exists():  # built on first need: `hack/demo` builds only the control plane
        built = subprocess.run([str(ROOT / "hack" / "build.sh"), tool], capture_output=True, text=True)
        assert built.returncode == 0 and binary.exists(), f"hack/build.sh {tool} failed:\n{built.stderr[-4000:]}"
    return binary


class ClusterRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalCluster:
    kubeconfig: Path
    context: str
    bin_dir: Path
    started_here: bool

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), "--context", self.context, *args],
            input=input,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout


def _hack_env() -> dict[str, str]:
    out = subprocess.run([str(ROOT / "hack" / "cluster"), "env"], capture_output=True, text=True, check=True).stdout
    env = {}
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def _current_context(kubeconfig: Path) -> str:
    config = yaml.safe_load(kubeconfig.read_text()) or {}
    return str(config.get("current-context", ""))


def _bin_dir(env: dict[str, str]) -> Path:
    return Path(env["PATH"].split(":", 1)[0])


def find_or_start() -> LocalCluster:
    """Use BOSUN_TEST_KUBECONFIG if given (checked), else hack/cluster up (a no-op when running)."""
    env = _hack_env()
    given = os.environ.get("BOSUN_TEST_KUBECONFIG")
    if given:
        kubeconfig = Path(given)
        context = _current_context(kubeconfig)
        if context != EXPECTED_CONTEXT and os.environ.get("BOSUN_ALLOW_ANY_CLUSTER") != "1":
            raise ClusterRefused(
                f"refusing to run tests against context {context!r} of {kubeconfig}: only the local "
                f"test cluster ({EXPECTED_CONTEXT}) is allowed; set BOSUN_ALLOW_ANY_CLUSTER=1 to override"
            )
        return LocalCluster(kubeconfig, context, _bin_dir(env), started_here=False)
    running = subprocess.run([str(ROOT / "hack" / "cluster"), "status"], capture_output=True).returncode == 0
    up = subprocess.run([str(ROOT / "hack" / "cluster"), "up"], capture_output=True, text=True)
    if up.returncode != 0:
        raise RuntimeError(f"hack/cluster up failed:\n{up.stderr[-4000:]}")
    kubeconfig = Path(env["KUBECONFIG"])
    context = _current_context(kubeconfig)
    if context != EXPECTED_CONTEXT:
        raise ClusterRefused(f"hack/cluster wrote context {context!r}, expected {EXPECTED_CONTEXT}")
    return LocalCluster(kubeconfig, context, _bin_dir(env), started_here=not running)


def stop() -> None:
    subprocess.run([str(ROOT / "hack" / "cluster"), "down"], capture_output=True, check=False)


def serve_bosun_api(local: LocalCluster) -> None:
    """Apply the CRDs and admission policies, and wait until both serve requests."""
    local.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    local.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
    local.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "manifests" / "admission-policies.yaml")
    )
    # A fresh CRD and admission policy take a moment to serve (ServiceUnavailable until then):
    # wait until a dry-run create comes back stamped by the policy.
    probe = json.dumps(
        {
            "apiVersion": API_VERSION,
            "kind": "Operation",
            "metadata": {"name": "probe"},
            "spec": {"target": {"kind": "App", "name": "probe"}, "type": "restart"},
        }
    )
    wait_for(
        lambda: (
            CREATED_BY
            in local.kubectl(
                "create", "--dry-run=server", "-o", "json", "-n", "default", "-f", "-", input=probe, check=False
            )
        ),
        timeout=60,
        what="the Operation API and its admission policy to serve requests",
    )


def fake_node(name: str, zone: str, cpu: str = "8", memory: str = "32Gi", pods: str = "110") -> dict[str, Any]:
    """A KWOK node as hack/cluster.d/node.yaml.tpl describes one, ready for the client's create_node."""
    template = Template((ROOT / "hack" / "cluster.d" / "node.yaml.tpl").read_text())
    manifest: dict[str, Any] = yaml.safe_load(
        template.substitute(NAME=name, ZONE=zone, CPU=cpu, MEMORY=memory, PODS=pods)
    )
    info = manifest["status"]["nodeInfo"]  # the client's model wants every field a kubelet fills
    for key in ("bootID", "containerRuntimeVersion", "kernelVersion", "machineID", "osImage", "systemUUID"):
        info.setdefault(key, "")
    return manifest
