"""The local control plane is real: scheduling, rollouts, storage binding, attach/detach, resize,
cordon and KWOK's failure stage all behave as they do in a real cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import LocalCluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

ZONE = "topology.kubernetes.io/zone"


def deployment(name: str, image: str, replicas: int, node_selector: dict[str, str] | None = None) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": node_selector,
                    "containers": [{"name": "main", "image": image}],
                },
            },
        },
    }


def pods_of(core: client.CoreV1Api, namespace: str, selector: str) -> list[client.V1Pod]:
    return [
        p
        for p in core.list_namespaced_pod(namespace, label_selector=selector).items
        if p.metadata.deletion_timestamp is None
    ]


def is_ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_nodes_are_ready_in_two_zones(core: client.CoreV1Api, cluster: LocalCluster) -> None:
    nodes = core.list_node().items
    ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)]
    assert len(ready) >= 4
    zones = {n.metadata.labels[ZONE] for n in ready}
    assert zones >= {"zone-a", "zone-b"}
    version = cluster.kubectl("version", "-o", "yaml")
    assert "gitVersion: v1.36.3" in version  # the pinned server version, not v0.0.0-master


def test_deployment_rolls_out_and_updates(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment("web", "example.com/web:1", 3))

    def rolled_out(image: str) -> list[client.V1Pod] | None:
        pods = pods_of(core, namespace, "app=web")
        good = [p for p in pods if is_ready(p) and p.spec.containers[0].image == image]
        return pods if len(pods) == 3 and len(good) == 3 else None

    first = wait_for(lambda: rolled_out("example.com/web:1"), what="3 ready pods of web:1")
    assert all(p.spec.node_name.startswith("kwok-") for p in first)
    assert all(p.status.pod_ip for p in first)

    apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example.com/web:2"}]}}}},
    )
    second = wait_for(lambda: rolled_out("example.com/web:2"), what="3 ready pods of web:2")
    assert {p.metadata.name for p in second}.isdisjoint({p.metadata.name for p in first})
    # The old pods may still be terminating (and counted) for a moment after the new ones are Ready.
    status = wait_for(
        lambda: (
            (d := apps.read_namespaced_deployment("web", namespace)).status.updated_replicas == 3
            and d.status.replicas == 3
            and d
        ),
        what="the deployment status to report the update",
    )
    assert status.status.available_replicas == 3


def volume_pod(name: str, claim: str, node: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "db"}},
        "spec": {
            # A node selector, not nodeName: the scheduler must do the volume binding.
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "db", "image": "example.com/db:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def claim(name: str, size: str, storage_class: str = "bosun-local") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": size}},
        },
    }


def attachments(storage: client.StorageV1Api, pv: str) -> list[client.V1VolumeAttachment]:
    return [
        va
        for va in storage.list_volume_attachment().items
        if va.spec.source.persistent_volume_name == pv and va.metadata.deletion_timestamp is None
    ]


def attached_on(storage: client.StorageV1Api, pv: str, node: str) -> bool:
    return any(va.spec.node_name == node and va.status and va.status.attached for va in attachments(storage, pv))


def test_volume_binds_attaches_and_follows_the_pod(
    core: client.CoreV1Api, storage: client.StorageV1Api, namespace: str
) -> None:
    core.create_namespaced_persistent_volume_claim(namespace, claim("data", "1Gi"))
    core.create_namespaced_pod(namespace, volume_pod("db-1", "data", "kwok-zone-a-1"))

    pvc = wait_for(
        lambda: (c := core.read_namespaced_persistent_volume_claim("data", namespace)).status.phase == "Bound" and c,
        what="the claim to be Bound",
    )
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    zones = pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
    assert (zones.key, zones.values) == (ZONE, ["zone-a"])
    assert pv.spec.csi.driver == "csi.bosun.local"
    wait_for(lambda: attached_on(storage, pv.metadata.name, "kwok-zone-a-1"), what="attachment on kwok-zone-a-1")
    wait_for(lambda: is_ready(core.read_namespaced_pod("db-1", namespace)), what="db-1 to be Ready")

    # Move: the old pod goes, its attachment goes, a new pod on another node in the zone attaches.
    core.delete_namespaced_pod("db-1", namespace, grace_period_seconds=0)
    wait_for(
        lambda: not [va for va in attachments(storage, pv.metadata.name) if va.spec.node_name == "kwok-zone-a-1"],
        what="the attachment to kwok-zone-a-1 to be removed",
    )
    core.create_namespaced_pod(namespace, volume_pod("db-2", "data", "kwok-zone-a-2"))
    wait_for(lambda: attached_on(storage, pv.metadata.name, "kwok-zone-a-2"), what="attachment on kwok-zone-a-2")
    assert [va.spec.node_name for va in attachments(storage, pv.metadata.name)] == ["kwok-zone-a-2"]
    pod = wait_for(lambda: (p := core.read_namespaced_pod("db-2", namespace)) and is_ready(p) and p, what="db-2 Ready")
    assert pod.spec.node_name == "kwok-zone-a-2"


def test_pvc_expansion_shows_new_capacity(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_persistent_volume_claim(namespace, claim("grow", "1Gi"))
    core.create_namespaced_pod(namespace, volume_pod("user", "grow", "kwok-zone-b-1"))
    wait_for(
        lambda: core.read_namespaced_persistent_volume_claim("grow", namespace).status.capacity,
        what="the claim to be bound with a capacity",
    )
    core.patch_namespaced_persistent_volume_claim(
        "grow", namespace, {"spec": {"resources": {"requests": {"storage": "3Gi"}}}}
    )
    pvc = wait_for(
        lambda: (
            (c := core.read_namespaced_persistent_volume_claim("grow", namespace)).status.capacity["storage"] == "3Gi"
            and c
        ),
        what="the claim's capacity to become 3Gi",
    )
    assert core.read_persistent_volume(pvc.spec.volume_name).spec.capacity["storage"] == "3Gi"


def test_class_without_expansion_refuses_it(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_persistent_volume_claim(namespace, claim("fixed", "1Gi", "bosun-fixed"))
    core.create_namespaced_pod(namespace, volume_pod("user", "fixed", "kwok-zone-b-1"))
    wait_for(
        lambda: core.read_namespaced_persistent_volume_claim("fixed", namespace).status.phase == "Bound", what="Bound"
    )
    with pytest.raises(ApiException) as refused:
        core.patch_namespaced_persistent_volume_claim(
            "fixed", namespace, {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}
        )
    assert refused.value.status == 403
    assert (
        "only dynamically provisioned pvc can be resized" in refused.value.body
        or "allowVolumeExpansion" in refused.value.body
    )


@pytest.fixture
def cordoned(core: client.CoreV1Api) -> Iterator[str]:
    node = "kwok-zone-b-2"
    core.patch_node(node, {"spec": {"unschedulable": True}})
    yield node
    core.patch_node(node, {"spec": {"unschedulable": None}})


def test_cordoned_node_gets_no_new_pods(
    core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str, cordoned: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment("spread", "example.com/web:1", 4, {ZONE: "zone-b"}))
    pods = wait_for(
        lambda: (ps := pods_of(core, namespace, "app=spread")) and len([p for p in ps if is_ready(p)]) == 4 and ps,
        what="4 ready pods in zone-b",
    )
    assert {p.spec.node_name for p in pods} == {"kwok-zone-b-1"}


def test_pod_labelled_for_failure_ends_failed(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "doomed", "labels": {"pod-container-running-failed.stage.kwok.x-k8s.io": "true"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "example.com/crash:1"}]},
        },
    )
    pod = wait_for(
        lambda: (p := core.read_namespaced_pod("doomed", namespace)).status.phase == "Failed" and p,
        timeout=30,
        what="the pod to end Failed",
    )
    state = pod.status.container_statuses[0].state
    assert state.terminated is not None and state.terminated.exit_code == 1
