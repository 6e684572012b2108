"""The Helm chart: lint-clean, the one source of manifests/, least privilege shown rule by rule,
a locked-down pod, and bad values refused at install with a message that names the problem.

These run the real Helm CLI (built by hack/bootstrap) but need no cluster.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.support.cluster import ROOT
from tests.support.install import helm, render

# Every right the operator gets, as `group/resource[names]: verbs`. Widening one must change this
# listing, so it is a reviewed change. Why each is needed: charts/bosun/templates/rbac.yaml.
OPERATOR_RULES = {
    "ClusterRole bosun-operator": [  # in each watched namespace (cluster-wide when all are watched)
        "apps/deployments: create delete get list patch watch",
        "batch/jobs: create delete get list patch watch",
        "bosun.dev/apps/status: get patch update",
        "bosun.dev/apps: get list patch update watch",
        "bosun.dev/backups/status: patch",
        "bosun.dev/backups: create delete get list patch watch",
        "bosun.dev/databases/status: get patch update",
        "bosun.dev/databases: get list patch update watch",
        "bosun.dev/notifiers/status: patch",
        "bosun.dev/notifiers: get list watch",
        "bosun.dev/operations/status: get patch update",
        "bosun.dev/operations: create delete",
        "bosun.dev/operations: get list patch update watch",
        "core/configmaps: create delete get list patch watch",
        "core/events: create list patch",
        "core/persistentvolumeclaims: create delete get list patch",
        "core/pods/exec: create get",
        "core/pods/log: get",
        "core/pods: create delete get list patch watch",
        "core/secrets: create delete get",
        "core/services: create delete get list patch watch",
        "events.k8s.io/events: create",
        "policy/poddisruptionbudgets: create delete get list patch watch",
        "snapshot.storage.k8s.io/volumesnapshots: create delete get",
    ],
    "ClusterRole bosun-cluster": [  # always cluster-wide
        "apiextensions.k8s.io/customresourcedefinitions: list watch",
        "core/nodes: get list",
        "core/persistentvolumes: get patch",
        "core/pods: list",
        "snapshot.storage.k8s.io/volumesnapshotclasses: list",
        "storage.k8s.io/csidrivers: get",
        "storage.k8s.io/storageclasses: get",
        "storage.k8s.io/volumeattachments: get list",
    ],
    "Role bosun-heartbeat in bosun-system": ["core/configmaps: create", "core/configmaps[bosun-heartbeat]: get update"],
    "Role bosun-leader in bosun-system": [
        "coordination.k8s.io/leases: create",
        "coordination.k8s.io/leases[bosun]: get update",
    ],
}
PEOPLE_RULES = {
    "ClusterRole bosun-view": [
        "bosun.dev/apps: get list watch",
        "bosun.dev/backups: get list watch",
        "bosun.dev/databases: get list watch",
        "bosun.dev/notifiers: get list watch",
        "bosun.dev/operations: get list watch",
    ],
    "ClusterRole bosun-edit": [
        "bosun.dev/apps: create delete patch update",
        "bosun.dev/backups: delete",
        "bosun.dev/databases: create delete patch update",
        "bosun.dev/notifiers: create delete patch update",
        "bosun.dev/operations: create delete patch update",
    ],
    "ClusterRole bosun-approver": ["bosun.dev/operations: approve"],  # admins have it, editors do not
}
SA = "ServiceAccount bosun-system/bosun"


def _where(obj: dict[str, Any]) -> str:
    namespace = obj["metadata"].get("namespace")
    return f"{obj['kind']} {obj['metadata']['name']}" + (f" in {namespace}" if namespace else "")


def rules(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    granted = {}
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            granted[_where(obj)] = sorted(
                f"{group or 'core'}/{resource}"
                + (f"[{','.join(rule['resourceNames'])}]" if rule.get("resourceNames") else "")
                + f": {' '.join(sorted(rule['verbs']))}"
                for rule in obj["rules"]
                for group in rule["apiGroups"]
                for resource in rule["resources"]
            )
    return granted


def bindings(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {
        _where(obj): f"{obj['roleRef']['kind']} {obj['roleRef']['name']} -> "
        + ", ".join(f"{s['kind']} {s.get('namespace', '')}/{s['name']}" for s in obj["subjects"])
        for obj in objects
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding")
    }


def the(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def test_manifests_are_the_chart_rendered_with_default_values() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "render-manifests"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_helm_lint_strict_is_clean() -> None:
    result = helm(None, "lint", "--strict", str(ROOT / "charts" / "bosun"))
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_the_granted_rules_are_exactly_these() -> None:
    assert rules(render()) == {**OPERATOR_RULES, **PEOPLE_RULES}


def test_watching_every_namespace_binds_the_operator_role_cluster_wide() -> None:
    assert bindings(render()) == {
        "ClusterRoleBinding bosun-operator": f"ClusterRole bosun-operator -> {SA}",
        "ClusterRoleBinding bosun-cluster": f"ClusterRole bosun-cluster -> {SA}",
        "RoleBinding bosun-heartbeat in bosun-system": f"Role bosun-heartbeat -> {SA}",
        "RoleBinding bosun-leader in bosun-system": f"Role bosun-leader -> {SA}",
    }


def test_a_list_of_namespaces_scopes_the_operator_role_to_them() -> None:
    objects = render("watchNamespaces={team-a,team-b}")
    assert bindings(objects) == {
        "RoleBinding bosun-operator in team-a": f"ClusterRole bosun-operator -> {SA}",
        "RoleBinding bosun-operator in team-b": f"ClusterRole bosun-operator -> {SA}",
        "ClusterRoleBinding bosun-cluster": f"ClusterRole bosun-cluster -> {SA}",
        "RoleBinding bosun-heartbeat in team-a": f"Role bosun-heartbeat -> {SA}",  # it must see its heartbeat
        "RoleBinding bosun-leader in bosun-system": f"Role bosun-leader -> {SA}",
    }
    env = {
        e["name"]: e.get("value")
        for e in the(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["BOSUN_NAMESPACES"] == "team-a,team-b" and env["BOSUN_NAMESPACE"] == "team-a"


def test_the_operator_pod_is_locked_down() -> None:
    deployment = the(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BOSUN_LEADER_ELECTION"] == "true"
    assert (env["BOSUN_LEASE_SECONDS"], env["BOSUN_RENEW_DEADLINE_SECONDS"], env["BOSUN_LEASE_RETRY_SECONDS"]) == (
        "15",
        "10",
        "2",
    )
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/var/lib/bosun"}


def test_default_store_is_a_kept_claim_and_replicas_share_its_node() -> None:
    objects = render()
    claim = the(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # logs outlive an uninstall
    affinity = the(objects, "Deployment")["spec"]["template"]["spec"]["affinity"]
    assert affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == (
        "kubernetes.io/hostname"
    )
    assert the(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_s3_store_takes_credentials_from_a_secret_and_needs_no_claim() -> None:
    objects = render(
        "store.type=s3",
        "store.s3.url=s3://bosun-logs/prod",
        "store.s3.endpointUrl=https://minio.example:9000",
        "store.s3.credentialsSecret=bosun-s3",
    )
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    container = the(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["BOSUN_STORE_URL"]["value"] == "s3://bosun-logs/prod"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "bosun-s3",
        "key": "AWS_SECRET_ACCESS_KEY",
    }
    affinity = the(objects, "Deployment")["spec"]["template"]["spec"]["affinity"]
    assert "podAntiAffinity" in affinity  # nothing ties them to one node: spread


def test_service_monitor_is_optional() -> None:
    assert not [o for o in render() if o["kind"] == "ServiceMonitor"]
    monitor = the(
        render("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"), "ServiceMonitor"
    )
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["replicaCount=2", "leaderElection.enabled=false"], "replicaCount > 1 needs leaderElection.enabled=true"),
        (["store.type=s3"], "store.type=s3 needs store.s3.url"),
        (["store.type=gcs"], "at '/store/type': value must be one of 'local', 's3'"),
        (["store.s3.url=http://bucket"], "at '/store/s3/url'"),
        (["logFormat=xml"], "at '/logFormat': value must be one of 'json', 'plain'"),
        (["watchNamespaces={Team_A}"], "at '/watchNamespaces/0': 'Team_A' does not match pattern"),
        (["replicas=2"], "additional properties 'replicas' not allowed"),
        (["replicaCount=two"], "at '/replicaCount': got string, want integer"),
        (["store.local.size=lots"], "at '/store/local/size'"),
        (["leaderElection.leaseDurationSeconds=5"], "leaseDurationSeconds must be longer than renewDeadlineSeconds"),
        (["metrics.port=70000"], "at '/metrics/port'"),
    ],
)
def test_bad_values_fail_at_install_with_a_clear_message(values: list[str], message: str) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm(
        None, "template", "bosun", str(ROOT / "charts" / "bosun"), "--kube-version", "1.36.0", *sets, check=False
    )
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_the_dashboard_is_optional_and_its_account_is_bound_to_nothing() -> None:
    assert not [o for o in render() if o["metadata"]["name"].endswith("-dashboard")]  # off by default
    objects = render("dashboard.enabled=true", "dashboard.port=9000")
    made = {o["kind"]: o for o in objects if o["metadata"]["name"] == "bosun-dashboard"}
    assert sorted(made) == ["Deployment", "Service", "ServiceAccount"]
    pod = made["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "bosun-dashboard"
    assert pod["containers"][0]["args"] == ["dashboard", "--in-cluster", "--port", "9000"]
    assert made["Service"]["spec"]["ports"][0]["port"] == 9000
    # It acts with each person's forwarded token: its own account gets no role, and nothing else changes.
    assert bindings(objects) == bindings(render()) and rules(objects) == rules(render())
    assert not any("bosun-dashboard" in subjects for subjects in bindings(objects).values())
