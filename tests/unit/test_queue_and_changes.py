"""Pure logic: queue order, what a spec edit calls for, and conditions derived from the phase."""

from __future__ import annotations

from bosun.engine import record
from bosun.engine.queue import Unfinished, blocker
from bosun.models.operation import Operation, OperationStatus, OperationType, Phase, RollbackState, RollbackStatus
from bosun.operations.changes import app_changes, database_changes, operation_manifest, operation_name, spec_manager


def entry(
    name: str, created: str, phase: str = "Pending", target: str = "web", *, rv: int = 1, sequence: int | None = None
) -> Operation:
    status: dict[str, object] = {"phase": phase}
    if sequence is not None:
        status["sequence"] = sequence
    return Operation.of(
        {
            "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created, "resourceVersion": str(rv)},
            "spec": {"target": {"kind": "App", "name": target}, "type": "restart"},
            "status": status,
        }
    )


def test_blocker_is_the_unfinished_operation_just_ahead() -> None:
    a = entry("a", "2026-01-01T00:00:01Z", "Running")
    b = entry("b", "2026-01-01T00:00:02Z", "Queued")
    c = entry("c", "2026-01-01T00:00:03Z")
    assert blocker(a, [a, b, c]) is None
    assert blocker(b, [a, b, c]) == "a"
    assert blocker(c, [a, b, c]) == "b"


def _body(operation: Operation, phase: str, *, started: bool = False) -> dict[str, object]:
    return {
        "metadata": {"name": operation.name, "uid": operation.uid, "namespace": "shop",
                     "creationTimestamp": operation.created, "resourceVersion": "1"},
        "spec": {"target": {"kind": "App", "name": operation.spec.target.name}, "type": "restart"},
        "status": {"phase": phase, **({"startedAt": "2026-01-01T00:00:05Z"} if started else {})},
    }  # fmt: skip


def test_the_watch_index_keeps_only_unfinished_operations_and_answers_like_the_queue() -> None:
    seen = Unfinished()
    a = entry("a", "2026-01-01T00:00:01Z", "Running")
    b = entry("b", "2026-01-01T00:00:02Z", "Queued")
    seen.saw(_body(a, "Running"))
    seen.saw(_body(b, "Queued"))
    me = Operation.of(_body(b, "Queued"))
    assert seen.blocker(me) == "a"
    assert seen.on_target("shop", "App", "web") and not seen.on_target("shop", "App", "api")
    assert not seen.on_target("other", "App", "web")
    seen.saw(_body(a, "Succeeded"))  # finished: dropped, no longer ahead
    assert seen.blocker(me) is None
    seen.saw(_body(b, "Queued"), gone=True)  # deleted
    assert not seen.on_target("shop", "App", "web")
    assert seen._by_namespace == {} and seen._by_target == {}  # nothing kept with nothing in flight


def test_the_index_answers_per_target_without_scanning_the_namespace() -> None:
    seen = Unfinished()
    others = [entry(f"o{n}", "2026-01-01T00:00:01Z", "Queued", target=f"app-{n}") for n in range(50)]
    for other in others:
        seen.saw(_body(other, "Queued"))
    mine = entry("mine", "2026-01-01T00:00:02Z", "Queued", target="app-7")
    seen.saw(_body(mine, "Queued"))
    assert sorted(o.name for o in seen.on(Operation.of(_body(mine, "Queued")))) == ["mine", "o7"]
    assert seen.blocker(Operation.of(_body(mine, "Queued"))) == "o7"
    seen.saw(_body(others[7], "Succeeded"))
    assert seen.on_target("shop", "App", "app-7") and seen.blocker(Operation.of(_body(mine, "Queued"))) is None
    seen.saw(_body(mine, "Cancelled"))
    assert not seen.on_target("shop", "App", "app-7") and seen.on_target("shop", "App", "app-8")


def test_the_index_says_when_a_target_has_nothing_left_in_flight() -> None:
    """Drift repair looks at an App again when its last operation ends, and only then; and not
    for operations that never ran (10,000 failing at once on missing targets cost 10,000 reads)."""
    seen = Unfinished()
    idle: list[tuple[str, str, str]] = []
    seen.on_idle = lambda *target: idle.append(target)
    a = entry("a", "2026-01-01T00:00:01Z", "Running")
    b = entry("b", "2026-01-01T00:00:02Z", "Queued")
    seen.saw(_body(a, "Running", started=True))
    seen.saw(_body(b, "Queued"))
    seen.saw(_body(a, "Succeeded", started=True))
    assert idle == []  # b is still in flight on the same App
    seen.saw(_body(b, "Cancelled"))  # b never ran, but a did
    assert idle == [("shop", "App", "web")]
    seen.saw(_body(b, "Cancelled"))  # the same end seen again, or an old record at start-up
    seen.saw(_body(entry("old", "2026-01-01T00:00:00Z", "Succeeded"), "Succeeded", started=True))
    never = entry("never", "2026-01-01T00:00:03Z", "Pending", target="gone")
    seen.saw(_body(never, "Pending"))
    seen.saw(_body(never, "Failed"))  # its target did not exist: it never started
    assert idle == [("shop", "App", "web")]


def test_finished_and_other_targets_never_block() -> None:
    done = entry("done", "2026-01-01T00:00:01Z", "Failed")
    elsewhere = entry("other", "2026-01-01T00:00:01Z", "Running", target="api")
    me = entry("me", "2026-01-01T00:00:02Z")
    assert blocker(me, [done, elsewhere, me]) is None


def test_a_dry_run_never_blocks_and_is_not_indexed() -> None:
    dry = Operation.of(
        {
            "metadata": {
                "name": "plan",
                "uid": "uid-plan",
                "namespace": "shop",
                "creationTimestamp": "2026-01-01T00:00:01Z",
            },
            "spec": {"target": {"kind": "App", "name": "web"}, "type": "restart", "dryRun": True},
            "status": {"phase": "Pending"},
        }
    )
    me = entry("me", "2026-01-01T00:00:02Z")
    assert blocker(me, [dry, me]) is None
    seen = Unfinished()
    seen.saw(
        {
            "metadata": {"name": "plan", "uid": "uid-plan", "namespace": "shop"},
            "spec": dry.spec.model_dump(by_alias=True),
        }
    )
    assert seen.on(Operation.of(_body(me, "Pending"))) == [] and not seen.on_target("shop", "App", "web")


def test_a_running_operation_blocks_whatever_the_names_and_timestamps() -> None:
    running = entry("web-restart-zzz", "2026-01-01T00:00:01Z", "Running", rv=20)
    rolling = entry("web-restart-yyy", "2026-01-01T00:00:05Z", "RollingBack", rv=30)
    new = entry("web-deploy-aaa", "2026-01-01T00:00:01Z", rv=10)
    assert blocker(new, [running, new]) == "web-restart-zzz"
    assert blocker(new, [rolling, new]) == "web-restart-yyy"


def test_same_second_is_ordered_by_first_sight_not_by_name() -> None:
    first = entry("zzz", "2026-01-01T00:00:01Z", rv=300, sequence=100)
    second = entry("aaa", "2026-01-01T00:00:01Z", rv=301, sequence=101)
    assert blocker(second, [first, second]) == "zzz"
    assert blocker(first, [first, second]) is None


def test_a_same_second_rival_that_has_not_recorded_its_place_is_waited_for() -> None:
    me = entry("aaa", "2026-01-01T00:00:01Z", rv=300, sequence=100)
    unplaced = entry("zzz", "2026-01-01T00:00:01Z", rv=302)  # its resourceVersion moved since first sight
    assert blocker(me, [me, unplaced]) == "zzz"
    later = entry("later", "2026-01-01T00:00:02Z", rv=303)
    assert blocker(me, [me, later]) is None  # another second: the timestamp decides


def test_the_recorded_sequence_wins_over_a_later_resource_version() -> None:
    # `first` has been written since (its resourceVersion moved on), but its place was recorded.
    first = entry("b", "2026-01-01T00:00:01Z", "Queued", rv=500, sequence=100)
    second = entry("a", "2026-01-01T00:00:01Z", rv=101, sequence=101)
    assert blocker(second, [first, second]) == "b"
    assert blocker(first, [first, second]) is None


def test_app_edits_map_to_operation_types() -> None:
    base = {"image": "i:1", "env": [], "processes": [{"name": "web", "replicas": 2}]}
    assert app_changes(None, base)[0][0] is OperationType.DEPLOY
    assert [t for t, _ in app_changes(base, {**base, "image": "i:2"})] == [OperationType.DEPLOY]
    env = [{"name": "A", "value": "1"}]
    assert app_changes(base, {**base, "env": env}) == [(OperationType.CONFIGURE, {"env": env})]
    scaled = {**base, "processes": [{"name": "web", "replicas": 5}]}
    assert app_changes(base, scaled) == [(OperationType.SCALE, {"processes": [{"name": "web", "replicas": 5}]})]
    both = {**scaled, "image": "i:2"}
    assert [t for t, _ in app_changes(base, both)] == [OperationType.DEPLOY, OperationType.SCALE]
    assert app_changes(base, dict(base)) == []


def test_database_edits_map_to_operation_types() -> None:
    base = {"engine": "postgresql", "version": "16", "storage": {"size": "1Gi"}}
    assert database_changes(None, base) == [(OperationType.PROVISION, {})]
    bigger = {**base, "storage": {"size": "5Gi"}}
    assert database_changes(base, bigger) == [(OperationType.RESIZE, {"volumeSize": "5Gi"})]
    moved = {**base, "placement": {"node": "kwok-zone-a-2"}}
    assert database_changes(base, moved) == [(OperationType.REDEPLOY, {"node": "kwok-zone-a-2"})]


def test_operation_names_are_deterministic_and_bounded() -> None:
    name = operation_name("x" * 300, OperationType.DEPLOY, 12, "abcdef-123")
    assert len(name) == 253 and name.endswith("-deploy-g12-abcde")
    assert operation_name("web", OperationType.SCALE, 3, "uid12") == "web-scale-g3-uid12"


def test_manifest_for_an_edit_is_not_owned_and_names_the_manager() -> None:
    app = {
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "uid": "u1234567",
            "generation": 4,
            "managedFields": [
                {"manager": "kubectl-client-side-apply", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:spec": {}}},
                {"manager": "argocd-controller", "time": "2026-01-02T00:00:00Z", "fieldsV1": {"f:spec": {}}},
                {
                    "manager": "bosun",
                    "time": "2026-01-03T00:00:00Z",
                    "fieldsV1": {"f:status": {}},
                    "subresource": "status",
                },
            ],
        },
        "spec": {"image": "i:2"},
    }
    assert spec_manager(app) == "argocd-controller"
    from bosun.models.operation import TargetKind

    manifest = operation_manifest(
        TargetKind.APP, app, OperationType.DEPLOY, {"image": "i:2", "env": []}, "argocd-controller"
    )
    assert manifest["metadata"]["name"] == "web-deploy-g4-u1234"
    assert "ownerReferences" not in manifest["metadata"]
    assert manifest["spec"] == {
        "target": {"kind": "App", "name": "web"},
        "type": "deploy",
        "parameters": {"image": "i:2"},
    }


def test_conditions_follow_the_phase() -> None:
    status = OperationStatus(phase=Phase.RUNNING)
    running = {c.type: (c.status.value, c.reason) for c in record.conditions(status, 1, "t1")}
    assert running == {
        "Ready": ("False", "Running"),
        "Reconciling": ("True", "Running"),
        "Stalled": ("False", "Running"),
    }
    status.conditions = record.conditions(status, 1, "t1")
    status.phase = Phase.FAILED
    status.reason = "StepFailed"
    status.rollback = RollbackStatus(state=RollbackState.SUCCEEDED)
    failed = {c.type: c for c in record.conditions(status, 2, "t2")}
    assert (failed["Stalled"].status.value, failed["Stalled"].reason) == ("True", "RolledBack")
    assert failed["Stalled"].last_transition_time == "t2"
    assert failed["Ready"].last_transition_time == "t1"  # unchanged: still False
    assert failed["Ready"].observed_generation == 2


def test_abandoned_operation_names_what_may_stay_changed() -> None:
    from bosun.models.operation import StepState, StepStatus

    status = OperationStatus(phase=Phase.RUNNING)
    status.steps = [
        StepStatus(name="a", state=StepState.SUCCEEDED),
        StepStatus(name="b", state=StepState.RUNNING),
        StepStatus(name="c"),
    ]
    record.abandon(status, "t", reason="TargetNotFound", message="the App no longer exists")
    assert status.phase is Phase.FAILED
    assert status.rollback is not None and status.rollback.state is RollbackState.FAILED
    assert [n.step for n in status.rollback.not_undone] == ["b", "a"]


def test_only_a_name_that_is_a_label_value_is_selected_by_label() -> None:
    from bosun.models.names import labellable

    assert labellable("shop") and labellable("a" * 63) and labellable("web.v2_x")
    assert not labellable("a" * 64)  # too long: the policy leaves it unlabelled, the queue reads all
    assert not labellable("default/shop") and not labellable("-web") and not labellable("web.")
