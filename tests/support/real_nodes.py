"""The real nodes of the local cluster (hack/real-nodes) as tests and benchmarks use them: bring
them up and down, look into a node's containerd, forget an image there (so the next start pulls it
for real), and set how fast the local registry serves pulls."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from bosun.models.names import API_VERSION, DATABASE_LABEL, PREPULL_LABEL, SERVING_LABEL
from tests.support.cluster import ROOT, hack_versions
from tests.support.row_counter import RowCounter
from tests.support.waiting import wait_for

REAL_NODE_TAINT = "bosun.dev/real"  # hack/real-nodes taints its nodes: only pods that tolerate it go there

NODES = {"real-zone-r-1": "10.244.101.0/24", "real-zone-r-2": "10.244.102.0/24"}
REGISTRY = "http://127.0.0.1:5000"
POSTGRES = "docker.io/library/postgres:15"


def hack(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "hack" / "real-nodes"), *args], capture_output=True, text=True, timeout=timeout)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def running() -> bool:
    """Both kubelets of this cluster's real nodes are alive (started by an earlier `up`)."""
    return all(_alive(state() / f"node-{node[-1]}" / "kubelet.pid") for node in NODES)


def up(node_status_seconds: int = 10) -> None:
    """Start the nodes, their kubelets reporting node status every `node_status_seconds`
    (Kubernetes' default is 10); nodes already running must run with that setting."""
    others = [d.name for d in state().parent.glob("*") if d != state() and _alive(d / "node-1" / "kubelet.pid")]
    if others:  # the nodes' bridge, addresses and ports are the machine's: one cluster at a time
        raise RuntimeError(f"real nodes of cluster {others[0]} are running: `hack/real-nodes down` for it first")
    if running() and (found := node_status_seconds_of_running()) != node_status_seconds:
        raise RuntimeError(f"the real nodes run with a {found} s node status; `hack/real-nodes down` first")
    env = {**os.environ, "BOSUN_REAL_NODE_STATUS_SECONDS": str(node_status_seconds)}
    command = [str(ROOT / "hack" / "real-nodes"), "up"]
    started = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, check=False)
    if started.returncode != 0:
        raise RuntimeError(f"hack/real-nodes up failed:\n{started.stderr[-4000:]}")


def node_status_seconds_of_running() -> int:
    """How often the running kubelets report their node status (their configuration's setting)."""
    config = (state() / "node-1" / "kubelet" / "config.yaml").read_text()
    found = re.search(r"^nodeStatusUpdateFrequency: (\d+)s$", config, re.MULTILINE)
    return int(found.group(1)) if found else 10


def down() -> None:
    stopped = hack("down", timeout=120)
    if stopped.returncode != 0:
        raise RuntimeError(f"hack/real-nodes down failed:\n{stopped.stderr[-2000:]}")


def state() -> Path:
    return Path(f"/var/lib/bosun-real-nodes/{os.environ.get('BOSUN_CLUSTER_NAME', 'bosun')}")


def ctr(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    versions = hack_versions()
    cache = Path(os.environ.get("BOSUN_CACHE", Path.home() / ".cache" / "bosun"))
    bin_dir = cache / "bin" / (
        f"nodes-k8s-{versions['KUBE_VERSION']}-containerd-{versions['CONTAINERD_VERSION']}"
        f"-runc-{versions['RUNC_VERSION']}-cni-{versions['CNI_PLUGINS_VERSION']}"
    )  # fmt: skip
    socket = state() / f"node-{node[-1]}" / "run" / "containerd.sock"
    return subprocess.run([str(bin_dir / "ctr"), "--address", str(socket), "-n", "k8s.io", *args],
                          capture_output=True, text=True, check=False)  # fmt: skip


def containers_of(node: str) -> list[str]:
    listed = ctr(node, "containers", "list", "-q")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def forget_image(node: str, image: str = POSTGRES) -> None:
    """The node's next start of `image` pulls it from the registry. The kubelet's runtime knows an
    image by its tag, its repository digest and its id (`sha256:...`): every name that points
    where the tag points goes, or the runtime would still report the image present."""
    listed = ctr(node, "images", "ls")
    rows = [line.split() for line in listed.stdout.splitlines()[1:] if line.strip()]
    repository = image.rpartition(":")[0]
    digests = {row[2] for row in rows if row[0] == image or row[0].startswith(repository + "@")}
    names = [row[0] for row in rows if row[2] in digests]
    if names:
        removed = ctr(node, "images", "rm", "--sync", *names)
        assert removed.returncode == 0, removed.stderr


def image_bytes(image: str = POSTGRES) -> int:
    """The size of the image's layers in the local registry: what a pull transfers."""
    repository, _, tag = image.removeprefix("docker.io/").rpartition(":")
    accept = "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
    asked = urllib.request.Request(f"{REGISTRY}/v2/{repository}/manifests/{tag}", headers={"Accept": accept})
    with urllib.request.urlopen(asked, timeout=10) as answer:
        manifest = json.load(answer)
    if "manifests" in manifest:  # an index: its first manifest
        digest = manifest["manifests"][0]["digest"]
        asked = urllib.request.Request(f"{REGISTRY}/v2/{repository}/manifests/{digest}", headers={"Accept": accept})
        with urllib.request.urlopen(asked, timeout=10) as answer:
            manifest = json.load(answer)
    return int(sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"])


def set_pull_rate(bytes_per_second: float) -> None:
    """How fast the registry's throttle serves every pull (0: no limit); read within a second."""
    (state() / "registry" / "rate").write_text(f"{bytes_per_second:.0f}\n")


def database(
    name: str = "pg", version: str = "15", reclaim: str = "Delete", size: str = "256Mi", **spec: Any
) -> dict[str, Any]:
    """PostgreSQL 15 (the version the image built from Debian's packages serves) in zone-r, on the
    loop CSI driver's storage class, tolerating the real nodes' taint."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Database",
        "metadata": {"name": name},
        "spec": {
            "engine": "postgresql",
            "version": version,
            **spec,
            "storage": {"size": size, "storageClassName": "real", "reclaim": reclaim},
            "placement": {
                "nodeSelector": {"topology.kubernetes.io/zone": "zone-r"},
                "tolerations": [{"key": REAL_NODE_TAINT, "operator": "Exists"}],
            },
            "minReadySeconds": 1,
        },
    }


def cluster_ip(core: client.CoreV1Api, namespace: str, service: str) -> str:
    """The Service's ClusterIP: the host runs kube-proxy (hack/real-nodes), so a client there goes
    through the Service as an application in the cluster would."""
    found = core.read_namespaced_service(service, namespace).spec.cluster_ip
    assert found and found != "None", f"{namespace}/{service} has no ClusterIP"
    return str(found)


def following_counter(core: client.CoreV1Api, namespace: str, service: str, password: str) -> RowCounter:
    """A RowCounter writing through the Service (kube-proxy picks the endpoint), already writing
    when returned."""
    counter = RowCounter(cluster_ip(core, namespace, service), password)
    answers = lambda: counter.sql("SELECT 1").returncode == 0  # noqa: E731
    wait_for(answers, timeout=120, what=f"PostgreSQL to answer through {service}")
    counter.create_table()
    counter.start()
    return counter


# The other engines as the real nodes run them (hack/build.sh images): Redis 7 as `redis:7`, and
# MySQL as MariaDB 10.11, which a Database names by its image (Debian ships no MySQL).
REDIS = {"engine": "redis", "version": "7"}
MYSQL = {"engine": "mysql", "version": "10.11", "image": "mariadb:10.11"}


def in_pod(core: client.CoreV1Api, namespace: str, database: str, script: str) -> str:
    """What a shell script printed in the Database's serving container (the engine's own clients
    are there, and its credentials in the environment)."""
    from kubernetes.stream import stream

    (pod,) = [
        p for p in core.list_namespaced_pod(namespace, label_selector=f"{DATABASE_LABEL}={database}").items
        if (p.metadata.labels or {}).get(SERVING_LABEL) == "true" and not (p.metadata.labels or {}).get(PREPULL_LABEL)
    ]  # fmt: skip
    said: str = stream(
        core.connect_get_namespaced_pod_exec,
        pod.metadata.name,
        namespace,
        container=pod.spec.containers[0].name,
        command=["/bin/sh", "-c", script],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _request_timeout=60,
    )
    return said
