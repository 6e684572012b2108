"""Where a database may move: pure decisions over a snapshot of nodes and pods."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bosun.models.database import DatabaseSpec, Placement, Toleration
from bosun.models.names import DATABASE_LABEL, PREPULL_LABEL
from bosun.operations.database_ctx import (
    ZONE,
    DatabaseContext,
    DatabasePlan,
    crash_loop,
    image_pull_failure,
    refusal_of,
    room_on,
)
from bosun.operations.database_steps import (
    Attachments,
    early_placement_refusal,
    held_elsewhere,
    multi_attach_error,
    pods_named,
)
from bosun.workloads import database as build

SPEC = DatabaseSpec.model_validate(
    {"engine": "postgresql", "version": "16", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}
)
PLAN = DatabasePlan(table="database-move", from_node="a-1", to_node="a-2", previous=SPEC, next=SPEC)


def node(name: str = "a-2", zone: str = "zone-a", cpu: str = "4", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {ZONE: zone}},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": "8Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod(cpu: str, labels: dict[str, str] | None = None, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "labels": labels or {}},
        "spec": {"containers": [{"resources": {"requests": {"cpu": cpu}}}]},
        "status": {"phase": phase},
    }


def test_a_ready_roomy_node_in_the_volume_zone_is_fine() -> None:
    assert refusal_of(node(), [pod("1")], PLAN, "zone-a", "pg") == ""


@pytest.mark.parametrize(
    ("target", "why"),
    [
        (node("a-1"), "already runs on a-1"),
        (node(unschedulable=True), "is cordoned"),
        (node(taints=[{"key": "dedicated", "effect": "NoSchedule"}]), "has taints dedicated"),
        (node(zone="zone-b"), "a move across zones is refused"),
        (node(cpu="2500m"), "has no room: cpu 2 requested"),
    ],
)
def test_each_refusal_says_why(target: dict[str, Any], why: str) -> None:
    assert why in refusal_of(target, [pod("1")], PLAN, "zone-a", "pg")


def test_a_node_that_is_not_ready_is_refused() -> None:
    down = node()
    down["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert "is not Ready" in refusal_of(down, [], PLAN, "zone-a", "pg")


def test_its_own_pods_its_placeholder_and_ended_pods_take_no_room() -> None:
    pods = [
        pod("3", {DATABASE_LABEL: "pg"}),
        pod("3", {PREPULL_LABEL: "pg"}),
        pod("3", phase="Succeeded"),
    ]
    assert room_on(node(), pods, SPEC, "pg") == ""
    assert "no room" in room_on(node(), [pod("3", {DATABASE_LABEL: "other"})], SPEC, "pg")


def event(reason: str, message: str, at: str) -> dict[str, Any]:
    return {"reason": reason, "message": message, "lastTimestamp": at}


def test_a_multi_attach_error_on_the_new_pod_is_what_the_move_reports() -> None:
    held = 'Multi-Attach error for volume "pvc-1" Volume is already used by pod(s) squatter'
    assert multi_attach_error([]) == ""
    assert multi_attach_error([event("Scheduled", "assigned", "2026-01-01T00:00:00Z")]) == ""
    assert multi_attach_error([event("FailedAttachVolume", "rpc error: timeout", "2026-01-01T00:00:01Z")]) == ""
    older = event("FailedAttachVolume", held.replace("squatter", "old"), "2026-01-01T00:00:01Z")
    newer = event("FailedAttachVolume", held, "2026-01-01T00:00:02Z")
    assert multi_attach_error([newer, older]) == held


TOLERANT = SPEC.model_copy(
    update={"placement": Placement(tolerations=[Toleration(key="bosun.dev/real", operator="Exists")])}
)


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        (Toleration(key="k", operator="Exists"), {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
        (Toleration(operator="Exists"), {"key": "any", "effect": "NoExecute"}, True),  # no key: every taint
        (Toleration(key="k", value="v"), {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
        (Toleration(key="k", value="w"), {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
        (Toleration(key="k", operator="Exists", effect="NoExecute"), {"key": "k", "effect": "NoSchedule"}, False),
        (Toleration(key="other", operator="Exists"), {"key": "k", "effect": "NoSchedule"}, False),
        (Toleration(value="v"), {"key": "k", "value": "v", "effect": "NoSchedule"}, False),  # Equal needs a key
    ],
)
def test_a_toleration_matches_a_taint_as_kubernetes_matches_it(
    toleration: Toleration, taint: dict[str, str], tolerated: bool
) -> None:
    assert toleration.tolerates(taint) is tolerated


def test_a_taint_the_database_tolerates_does_not_refuse_the_node_and_its_pods_carry_the_toleration() -> None:
    tainted = node(taints=[{"key": "bosun.dev/real", "value": "true", "effect": "NoSchedule"}])
    assert "has taints bosun.dev/real" in refusal_of(tainted, [], PLAN, "zone-a", "pg")
    tolerant = DatabasePlan(table="database-move", from_node="a-1", to_node="a-2", previous=SPEC, next=TOLERANT)
    assert refusal_of(tainted, [], tolerant, "zone-a", "pg") == ""
    body = build.pod("pg", "uid", TOLERANT, "pg-1", "a-2")
    assert body["spec"]["tolerations"] == [{"key": "bosun.dev/real", "operator": "Exists"}]
    assert "tolerations" not in build.pod("pg", "uid", SPEC, "pg-1", "a-2")["spec"]


def test_postgresql_stops_fast_is_ready_when_it_answers_and_keeps_its_data_below_the_volume_root() -> None:
    body = build.pod("pg", "uid", SPEC, "pg-1", None)
    (container,) = body["spec"]["containers"]
    assert {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"} in container["env"]
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert "kill -INT 1" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert body["spec"]["terminationGracePeriodSeconds"] == 60  # room for the shutdown checkpoint
    redis = build.pod("r", "uid", DatabaseSpec.model_validate({"engine": "redis", "version": "7"}), "r-1", None)
    assert "lifecycle" not in redis["spec"]["containers"][0] and redis["spec"]["terminationGracePeriodSeconds"] == 10


def test_an_image_the_kubelet_cannot_pull_is_reported_with_the_kubelets_words() -> None:
    waiting = {"reason": "ErrImagePull", "message": 'failed to pull "postgres:99": not found'}
    pod = {"status": {"containerStatuses": [{"image": "postgres:99", "state": {"waiting": waiting}}]}}
    assert image_pull_failure(pod) == 'postgres:99: ErrImagePull: failed to pull "postgres:99": not found'
    creating = {"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}}
    assert image_pull_failure(creating) == "" and image_pull_failure(None) == ""


def test_a_pod_started_out_of_its_service_is_not_selected_by_it() -> None:
    service = build.service("pg", "uid", SPEC)["spec"]["selector"]
    serving = build.pod("pg", "uid", SPEC, "pg-1", None)["metadata"]["labels"]
    replaying = build.pod("pg", "uid", SPEC, "pg-1", None, serving=False)["metadata"]["labels"]
    assert service.items() <= serving.items() and not service.items() <= replaying.items()


def test_a_database_that_keeps_crashing_as_it_starts_is_reported_with_its_last_exit() -> None:
    def pod(restarts: int, reason: str = "CrashLoopBackOff") -> dict[str, object]:
        ended = {"exitCode": 127, "reason": "Error", "message": "mariadbd: not found\n"}
        container = {"name": "mysql", "restartCount": restarts, "state": {"waiting": {"reason": reason}}}
        return {"status": {"containerStatuses": [{**container, "lastState": {"terminated": ended}}]}}

    assert crash_loop(pod(3)) == "container mysql ended 3 times, last with exit code 127 (Error): mariadbd: not found"
    assert crash_loop(pod(2)) == ""  # one crash or two: the kubelet may yet start it (Redis' replay restarts it once)
    assert crash_loop(pod(5, "ContainerCreating")) == "" and crash_loop(None) == ""


def test_a_database_image_is_its_own_else_the_installs_registry_else_docker_hubs_name() -> None:
    assert build.image(SPEC) == "postgres:16"
    assert build.image(SPEC, "registry.example.com/library/") == "registry.example.com/library/postgres:16"
    own = SPEC.model_copy(update={"image": "mirror.example.com/pg:16.4"})
    assert build.image(own, "registry.example.com/library") == "mirror.example.com/pg:16.4"
    # the plan fixes the image it will run, so an undo restores that image whatever the install says later
    assert build.resolved(SPEC, "registry.example.com/library").image == "registry.example.com/library/postgres:16"
    assert build.resolved(SPEC, "") is SPEC and build.resolved(own, "elsewhere.example.com") is own


def op(type_: str, **parameters: object) -> Any:
    """An Operation of `type_` on Database pg, as the API server would hand it over."""
    from bosun.models.operation import Operation

    return Operation.of({
        "metadata": {"name": type_, "namespace": "ns", "creationTimestamp": "2026-12-06T07:00:00Z"},
        "spec": {"target": {"kind": "Database", "name": "pg"}, "type": type_, "parameters": parameters},
    })  # fmt: skip


async def test_a_resize_carries_what_runs_so_an_edit_of_size_and_version_leaves_the_version_to_its_restart() -> None:
    """One edit raised the size and set a version with no image: the resize it made recorded the
    new version as running (it started from the edited spec), and the restart after it then saw no
    new image to pull and stopped the database for good (found on real nodes)."""
    from bosun.operations.database import decide

    running = SPEC.model_copy(update={"version": "15"}).wire()
    edited = {**running, "version": "99", "storage": {"size": "512Mi", "reclaim": "Retain"}, "minReadySeconds": 9}
    target = {"metadata": {"name": "pg", "uid": "u"}, "spec": edited, "status": {"node": "a-1", "running": running}}

    resize = await decide(None, op("resize", volumeSize="512Mi"), target)  # type: ignore[arg-type]
    assert (resize.next.version, resize.next.storage.size) == ("15", "512Mi")
    # what takes effect without an operation of its own comes from the spec
    assert (resize.next.min_ready_seconds, resize.next.storage.reclaim.value) == (9, "Retain")
    restart = await decide(None, op("restart"), target)  # type: ignore[arg-type]
    assert restart.next.version == "99" and restart.previous is not None and restart.previous.version == "15"
    move = await decide(None, op("redeploy", node="a-2"), target)  # type: ignore[arg-type]
    assert (move.next.version, move.to_node) == ("15", "a-2")


async def test_a_resize_never_takes_a_selector_only_just_edited_and_a_version_without_a_new_image_is_refused() -> None:
    from bosun.errors import PermanentError
    from bosun.operations.database import decide

    running = SPEC.model_copy(update={"version": "15"}).wire()
    edited = {**running, "placement": {"nodeSelector": {"disk": "ssd"}, "tolerations": [{"operator": "Exists"}]}}
    target = {"metadata": {"name": "pg", "uid": "u"}, "spec": edited, "status": {"node": "a-1", "running": running}}

    resize = await decide(None, op("resize", volumeSize="2Gi"), target)  # type: ignore[arg-type]
    assert resize.next.placement is not None and resize.next.placement.node_selector is None
    assert resize.next.placement.tolerations  # tolerations act without an operation: they come along
    # a registry named by the install applies to what runs too
    grown = await decide(None, op("resize", volumeSize="2Gi"), target, "reg.example.com/lib")  # type: ignore[arg-type]
    assert grown.next.image == "reg.example.com/lib/postgres:15"
    pinned = {**running, "version": "16", "image": "reg.example.com/pg:15"}
    was = {"node": "a-1", "running": {**running, "image": "reg.example.com/pg:15"}}
    with pytest.raises(PermanentError, match="the image stays"):
        await decide(None, op("restart"), {**target, "spec": pinned, "status": was})  # type: ignore[arg-type]


def test_a_claim_says_when_the_node_could_not_grow_a_mounted_filesystem() -> None:
    from bosun.operations.database_steps import online_growth_refused

    error = {"type": "NodeResizeError", "status": "True", "message": "resize2fs: Permission denied"}
    assert online_growth_refused({"status": {"conditions": [error]}})
    assert online_growth_refused({"status": {"allocatedResourceStatuses": {"storage": "NodeResizeFailed"}}})
    assert not online_growth_refused({"status": {"allocatedResourceStatuses": {"storage": "NodeResizeInProgress"}}})


class Reads:
    """The cluster as the early-placement decisions read it: nodes, pods, attachments."""

    def __init__(self, nodes: dict[str, Any], pods: tuple[str, ...] = (), attached: tuple[str, ...] = ()) -> None:
        self.nodes, self.pods, self.attached = nodes, pods, attached

    async def node(self, name: str) -> dict[str, Any] | None:
        return self.nodes.get(name)

    async def read(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        return {"metadata": {"name": name}} if kind == "Pod" and name in self.pods else None

    async def volume_attachments(self, volume: str) -> list[dict[str, Any]]:
        return [{"spec": {"nodeName": n}} for n in self.attached]


IN_USE = "kubernetes.io/csi/loop.csi.bosun.local^vol-1"


def attachments_of(reads: Reads, modes: tuple[str, ...] = ("ReadWriteOnce",), attach: bool = True) -> Attachments:
    ctx = DatabaseContext(reads, "ns", "pg", "uid", "move", PLAN)  # type: ignore[arg-type]
    volume = {
        "metadata": {"name": "pv-1"},
        "spec": {"accessModes": list(modes), "csi": {"driver": "loop.csi.bosun.local", "volumeHandle": "vol-1"}},
    }
    return Attachments(ctx, volume, {"spec": {"attachRequired": attach}})


def reporting(*volumes: str) -> dict[str, Any]:
    return {**node("a-1"), "status": {**node("a-1")["status"], "volumesInUse": list(volumes)}}


def test_the_new_pod_waits_on_the_target_only_where_nothing_can_mount_the_volume_for_it_early() -> None:
    real = Reads({"a-1": reporting(IN_USE)})
    allowed = attachments_of(real)
    assert allowed.in_use_name == IN_USE
    assert asyncio.run(early_placement_refusal(allowed.ctx, allowed)) == ""
    cases = {
        "attaches nothing": attachments_of(real, attach=False),
        "ReadWriteOnce, ReadWriteMany": attachments_of(real, modes=("ReadWriteOnce", "ReadWriteMany")),
        "(none)": attachments_of(real, modes=()),
        "does not report the volume in use": attachments_of(Reads({"a-1": reporting("another")})),
    }
    for said, attachments in cases.items():
        assert said in asyncio.run(early_placement_refusal(attachments.ctx, attachments)), said


def test_a_multi_attach_error_holds_only_while_what_it_names_still_holds_the_volume() -> None:
    held = 'Multi-Attach error for volume "pvc-1" Volume is already used by pod(s) pg-0a1b2c, squatter'
    assert pods_named(held) == ["pg-0a1b2c", "squatter"]
    assert pods_named(held + " and 2 pod(s) in different namespaces") == ["pg-0a1b2c", "squatter"]
    exclusive = 'Multi-Attach error for volume "pvc-1" Volume is already exclusively attached to one node'
    others = 'Multi-Attach error for volume "pvc-1" Volume is already used by 1 pod(s) in different namespaces'
    assert pods_named(exclusive) == [] and pods_named(others) == []

    def holds(error: str, reads: Reads) -> str:
        attachments = attachments_of(reads)
        return asyncio.run(held_elsewhere(attachments.ctx, attachments, error))

    assert holds(held, Reads({}, pods=("squatter",))) == held
    assert holds(held, Reads({})) == ""  # the old pod, gone: an error from before the detach
    assert holds(exclusive, Reads({}, attached=("a-3",))) == exclusive
    assert holds(exclusive, Reads({}, attached=("a-2",))) == ""  # the target's own attachment
    assert holds(others, Reads({})) == others
    assert holds("", Reads({}, pods=("squatter",))) == ""
