"""People with Kubernetes' built-in roles, for tests of what each may see and do."""

from __future__ import annotations

import uuid

from kubernetes import client

from tests.support.cluster import LocalCluster
from tests.support.waiting import wait_for


def user_with_role(api: client.ApiClient, cluster: LocalCluster, namespace: str, role: str, can: str) -> str:
    """A new user bound to the built-in `role` in the namespace, once the API server says they `can`."""
    name = f"{role}-user-{uuid.uuid4().hex[:4]}"
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"{name}-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
        },
    )
    wait_for(
        lambda: cluster.kubectl("auth", "can-i", *can.split(), "-n", namespace, "--as", name).strip().endswith("yes"),
        what=f"{role} aggregated",
    )
    return name
