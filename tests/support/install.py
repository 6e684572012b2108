"""Installing Bosun the way users do: the rendered manifests, the Helm chart, a service account's token."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.cluster import ROOT, LocalCluster, cached_binary, hack_versions

NAMESPACE = "bosun-system"  # where manifests/ installs the operator
SERVICE_ACCOUNT = "bosun"


def helm_binary() -> Path:
    return cached_binary("helm", "HELM_VERSION", "helm")


def helm(cluster: LocalCluster | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real Helm CLI; with a cluster, against it (and only it)."""
    target = ["--kubeconfig", str(cluster.kubeconfig), "--kube-context", cluster.context] if cluster else []
    result = subprocess.run(
        [str(helm_binary()), *args, *target], capture_output=True, text=True, check=False, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(*values: str, namespace: str = NAMESPACE, release: str = "bosun") -> list[dict]:  # type: ignore[type-arg]
    """The chart rendered with `--set` values, as objects."""
    sets = [arg for value in values for arg in ("--set", value)]
    out = helm(
        None,
        "template", release, str(ROOT / "charts" / "bosun"),
        "--namespace", namespace, "--kube-version", hack_versions()["KUBE_VERSION"], *sets,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


def apply_operator_rbac(cluster: LocalCluster) -> None:
    """The operator's namespace, ServiceAccount and RBAC from manifests/ (the chart's defaults)."""
    if not cluster.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name").strip():
        cluster.kubectl("create", "namespace", NAMESPACE)
    for name in ("serviceaccount.yaml", "rbac.yaml"):
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "manifests" / name))


def token_kubeconfig(
    cluster: LocalCluster, path: Path, namespace: str = NAMESPACE, account: str = SERVICE_ACCOUNT
) -> Path:
    """A kubeconfig that authenticates as the service account (a bound token, as in a pod)."""
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration", "2h").strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == cluster.context)["context"]
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [server],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": cluster.context, "context": {"cluster": server["name"], "user": account}}],
        "current-context": cluster.context,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path
