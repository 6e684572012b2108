"""The Operation engine against the real API server, with the operator as a real process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from bosun.models.names import GROUP, PLURALS, VERSION
from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.operator_process import OperatorProcess, ensure_running, module_operator
from tests.support.operator_under_test import FAIL_STEP, FAIL_UNDO, STEP_SECONDS, UNDO_SECONDS
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    yield from module_operator(cluster.kubeconfig, tmp_path_factory.mktemp("operator"))


@pytest.fixture
def bosun(api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess) -> Bosun:
    ensure_running(operator)  # a previous test may have killed it
    return Bosun(api, cluster, namespace)


@pytest.fixture
def app(bosun: Bosun) -> str:
    """An App whose creation-time deploy (made by Bosun from the spec) has finished."""
    bosun.app("web")
    bosun.wait_all_finished()
    return "web"


def test_applied_operation_runs_through_its_steps(bosun: Bosun, app: str, cluster: LocalCluster) -> None:
    bosun.operation("restart-1", app)
    status = bosun.wait_phase("restart-1")
    assert status["phase"] == "Succeeded"
    assert status["progress"] == "3/3"
    assert [s["name"] for s in status["steps"]] == ["one", "two", "three"]
    assert all(s["state"] == "Succeeded" and s["startedAt"] and s["finishedAt"] for s in status["steps"])
    assert status["rollback"]["state"] == "NotNeeded"
    assert status["initiator"]["source"] == "Operation"
    assert status["initiator"]["username"] == "kwok-admin"  # stamped by the admission policy
    assert status["initiator"]["manager"].startswith("kubectl")
    events = client.EventsV1Api(bosun.custom.api_client)

    def notes(kind: str, name: str) -> list[str]:
        items = events.list_namespaced_event(bosun.namespace).items
        return [e.note for e in items if e.regarding.kind == kind and e.regarding.name == name]

    wait_for(lambda: any("operation succeeded" in n for n in notes("Operation", "restart-1")), what="events")
    assert any("step 1/3 one: started" in n for n in notes("Operation", "restart-1"))
    wait_for(
        lambda: any("operation restart-1: operation succeeded" in n for n in notes("App", app)),
        what="the operation's story in the App's events",
    )
    assert bosun.ledger("restart-1") == ["one", "two", "three"]
    table = cluster.kubectl("get", "ops", "-n", bosun.namespace)
    row = next(line for line in table.splitlines() if line.startswith("restart-1 "))
    assert row.split()[1:5] == ["restart", app, "Succeeded", "3/3"]
    wait_for(
        lambda: (
            bosun.get("apps", app)["status"]["lastOperation"]
            == {"name": "restart-1", "type": "restart", "phase": "Succeeded"}
        ),
        what="the App's status to name its last operation",
    )
    everything = cluster.kubectl("get", "bosun", "-n", bosun.namespace, "-o", "name").split()
    assert {"operation.bosun.dev/restart-1", f"app.bosun.dev/{app}"} <= set(everything)


def test_failing_step_rolls_back_in_reverse(bosun: Bosun, app: str) -> None:
    bosun.operation("fails", app, annotations={FAIL_STEP: "three"})
    status = bosun.wait_phase("fails")
    assert status["phase"] == "Failed"
    assert status["rollback"]["state"] == "Succeeded"
    assert status["rollback"]["undone"] == ["three", "two", "one"]
    assert [s["state"] for s in status["steps"]] == ["Undone", "Undone", "Undone"]
    assert "three was told to fail" in status["steps"][2]["message"]
    assert bosun.ledger("fails") == []
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "RolledBack")


def test_failing_undo_ends_rollback_failed_and_names_it(bosun: Bosun, app: str) -> None:
    bosun.operation("undo-fails", app, annotations={FAIL_STEP: "three", FAIL_UNDO: "two"})
    status = bosun.wait_phase("undo-fails")
    assert status["phase"] == "Failed"
    assert status["rollback"]["state"] == "Failed"
    assert status["rollback"]["notUndone"] == [{"step": "two", "reason": "two was told not to undo"}]
    assert bosun.ledger("undo-fails") == ["two"]  # exactly what the status says stayed
    assert "two" in status["message"]


@pytest.mark.parametrize("step", [0, 1, 2], ids=["one", "two", "three"])
def test_killed_during_each_step_resumes_and_succeeds(
    bosun: Bosun, app: str, operator: OperatorProcess, step: int
) -> None:
    bosun.operation("crashy", app, annotations={STEP_SECONDS: "2"})
    bosun.wait_step_state("crashy", step, "Running")
    operator.kill()
    assert bosun.status("crashy")["steps"][step]["state"] == "Running"  # the record survives the crash
    operator.start()
    status = bosun.wait_phase("crashy")
    assert status["phase"] == "Succeeded"
    assert bosun.ledger("crashy") == ["one", "two", "three"]  # every side effect exactly once
    assert status["steps"][step]["attempts"] == 2
    assert all(s["attempts"] == 1 for i, s in enumerate(status["steps"]) if i != step)


def test_killed_mid_step_then_failing_rolls_back(bosun: Bosun, app: str, operator: OperatorProcess) -> None:
    annotations = {STEP_SECONDS: "2", FAIL_STEP: "three"}
    bosun.operation("crash-fail", app, annotations=annotations)
    bosun.wait_step_state("crash-fail", 1, "Running")
    operator.kill()
    operator.start()
    status = bosun.wait_phase("crash-fail")
    assert (status["phase"], status["rollback"]["state"]) == ("Failed", "Succeeded")
    assert bosun.ledger("crash-fail") == []


def test_killed_during_rollback_finishes_it(bosun: Bosun, app: str, operator: OperatorProcess) -> None:
    bosun.operation("crash-undo", app, annotations={UNDO_SECONDS: "2", FAIL_STEP: "two"})
    wait_for(lambda: bosun.status("crash-undo").get("phase") == "RollingBack", what="the rollback to start")
    operator.kill()
    assert bosun.status("crash-undo")["phase"] == "RollingBack"  # killed mid-rollback
    operator.start()
    status = bosun.wait_phase("crash-undo")
    assert (status["phase"], status["rollback"]["state"]) == ("Failed", "Succeeded")
    assert status["rollback"]["undone"] == ["two", "one"]
    assert bosun.ledger("crash-undo") == []


def test_cancel_during_a_run_rolls_back(bosun: Bosun, app: str, cluster: LocalCluster) -> None:
    bosun.operation("cancel-me", app, annotations={STEP_SECONDS: "3"})
    bosun.wait_step_state("cancel-me", 1, "Running")
    cluster.kubectl("patch", "op", "cancel-me", "-n", bosun.namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    status = bosun.wait_phase("cancel-me", timeout=30)
    assert status["phase"] == "Cancelled"
    assert status["rollback"]["state"] == "Succeeded"
    assert status["steps"][2]["state"] == "Pending"  # never started
    assert bosun.ledger("cancel-me") == []


def test_one_operation_per_target_others_queue_in_order(bosun: Bosun, app: str, cluster: LocalCluster) -> None:
    slow = {STEP_SECONDS: "1"}
    bosun.operation("first", app, annotations=slow)
    bosun.wait_phase("first", {"Running"})
    bosun.operation("second", app)
    bosun.operation("third", app)
    second = bosun.wait_phase("second", {"Queued"})
    assert second["queuedBehind"] == "first"
    assert bosun.wait_phase("third", {"Queued"})["queuedBehind"] == "second"
    cluster.kubectl("patch", "op", "third", "-n", bosun.namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    third = bosun.wait_phase("third")
    assert (third["phase"], third["rollback"]["state"]) == ("Cancelled", "NotNeeded")
    assert bosun.ledger("third") == []
    first, second = bosun.wait_phase("first"), bosun.wait_phase("second")
    assert first["phase"] == second["phase"] == "Succeeded"
    assert first["finishedAt"] <= second["startedAt"]


def test_operations_past_the_run_slots_wait_pending_then_run(
    bosun: Bosun, app: str, operator: OperatorProcess, cluster: LocalCluster
) -> None:
    for other in ("api", "jobs"):
        bosun.app(other)
    bosun.wait_all_finished()
    usual = dict(operator.extra_env)
    operator.stop()
    operator.extra_env = {**usual, "BOSUN_MAX_RUNNING_OPERATIONS": "1"}
    try:
        operator.start()
        bosun.operation("holds-slot", app, annotations={STEP_SECONDS: "2"})
        bosun.wait_phase("holds-slot", {"Running"})
        bosun.operation("needs-slot", "api")
        bosun.operation("gives-up", "jobs")
        wait_for(
            lambda: (
                "waiting for a run slot" in (bosun.get("operations", "gives-up").get("status") or {}).get("message", "")
            ),
            what="the operation to say it waits for a run slot",
        )
        assert bosun.get("operations", "needs-slot")["status"]["phase"] == "Pending"
        cluster.kubectl(
            "patch", "op", "gives-up", "-n", bosun.namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}'
        )
        gave_up = bosun.wait_phase("gives-up")
        assert (gave_up["phase"], gave_up["rollback"]["state"]) == ("Cancelled", "NotNeeded")
        first, second = bosun.wait_phase("holds-slot"), bosun.wait_phase("needs-slot")
        assert first["phase"] == second["phase"] == "Succeeded"
        assert first["finishedAt"] <= second["startedAt"]
        assert bosun.ledger("gives-up") == []
    finally:
        operator.stop()
        operator.extra_env = usual
        operator.start()


def test_failed_operation_does_not_wedge_the_queue(bosun: Bosun, app: str) -> None:
    bosun.operation("broken", app, annotations={FAIL_STEP: "one"})
    bosun.operation("after", app)
    assert bosun.wait_phase("broken")["phase"] == "Failed"
    assert bosun.wait_phase("after")["phase"] == "Succeeded"


def test_missing_target_fails_with_a_clear_reason(bosun: Bosun) -> None:
    bosun.operation("orphan", "no-such-app")
    status = bosun.wait_phase("orphan")
    assert status["phase"] == "Failed"
    assert status["reason"] == "TargetNotFound"
    assert "no-such-app" in status["message"]


def test_deleted_target_fails_its_queued_operations(bosun: Bosun, app: str) -> None:
    bosun.operation("holder", app, annotations={STEP_SECONDS: "2"})
    bosun.wait_phase("holder", {"Running"})
    bosun.operation("waiter", app)
    bosun.wait_phase("waiter", {"Queued"})
    bosun.custom.delete_namespaced_custom_object(GROUP, VERSION, bosun.namespace, PLURALS["App"], app)
    status = bosun.wait_phase("waiter", timeout=60)
    assert (status["phase"], status["reason"]) == ("Failed", "TargetNotFound")


def test_operation_deadline_fails_and_rolls_back(bosun: Bosun, app: str) -> None:
    bosun.operation("too-slow", app, annotations={STEP_SECONDS: "30"}, timeoutSeconds=10)
    status = bosun.wait_phase("too-slow", timeout=60)
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    assert status["rollback"]["state"] == "Succeeded"
    assert bosun.ledger("too-slow") == []


def test_spec_edit_creates_the_operation(bosun: Bosun, app: str) -> None:
    bosun.app(app, image="example.com/app:2")
    made = wait_for(
        lambda: [o for o in bosun.list("operations") if "-deploy-g2-" in o["metadata"]["name"]],
        what="a deploy operation for generation 2",
    )
    operation = made[0]
    assert operation["spec"]["parameters"]["image"] == "example.com/app:2"
    assert not operation["metadata"].get("ownerReferences")  # history outlives the App
    status = bosun.wait_phase(operation["metadata"]["name"])
    assert status["phase"] == "Succeeded"
    assert status["initiator"]["source"] == "AppSpec"
    assert status["initiator"]["kind"] == "Bosun"
    assert status["initiator"]["username"] == "kwok-admin"  # who edited the App, not the operator
    assert status["initiator"]["manager"].startswith("kubectl")


def test_clean_shutdown_on_sigterm(operator: OperatorProcess) -> None:
    assert operator.healthz() == 200
    assert operator.stop() == 0
    operator.start()
