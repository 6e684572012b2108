"""Operations on people's terms, on the real API server: windows, budgets, approvals, overrides.

Each test sets a Database's `spec.operationPolicy` the way its owners would, creates an operation
as a person would, and checks what the person then sees (status, `kubectl get ops`) and what the
API server lets each person do (an editor cannot approve; only the verb approve can).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bosun.models.names import API_VERSION, APPROVED_BY, CANCELLED_BY
from tests.support.bosun_objects import Bosun
from tests.support.cli import kubectl_bosun
from tests.support.cluster import LocalCluster
from tests.support.databases import run_op, start_op
from tests.support.install import apply_operator_rbac
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

EDITOR, APPROVER = "mallory", "carol"


def window_at(moment: datetime, minutes: int = 60) -> dict[str, Any]:
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    return {"days": days, "start": moment.strftime("%H:%M"), "durationMinutes": minutes, "timeZone": "UTC"}


def restart(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A restart of Database pg, with these extra spec fields (an Operation's terms)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Operation",
        "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
        "spec": {"target": {"kind": "Database", "name": "pg"}, "type": "restart", **spec},
    }


def set_policy(bosun: Bosun, policy: dict[str, Any] | None, database: str = "pg") -> None:
    bosun.custom.patch_namespaced_custom_object(
        "bosun.dev", "v1alpha1", bosun.namespace, "databases", database, {"spec": {"operationPolicy": policy}}
    )


def waiting(bosun: Bosun, name: str, reason: str) -> dict[str, Any]:
    return wait_for(
        lambda: s if (s := bosun.status(name)).get("reason") == reason and s.get("phase") == "Pending" else None,
        what=f"{name} Pending with reason {reason}",
    )


@pytest.fixture
def people(pg: Bosun, cluster: LocalCluster) -> Iterator[Bosun]:
    """mallory edits the namespace; carol edits it and may approve (the chart's approver role)."""
    apply_operator_rbac(cluster)
    ns = pg.namespace
    cluster.kubectl(
        "create", "rolebinding", "editors", "-n", ns, "--clusterrole=edit", f"--user={EDITOR}", f"--user={APPROVER}"
    )
    cluster.kubectl(
        "create", "rolebinding", "approvers", "-n", ns, "--clusterrole=bosun-approver", f"--user={APPROVER}"
    )
    wait_for(
        lambda: (
            cluster.kubectl(
                "auth", "can-i", "approve", "operations.bosun.dev", "-n", ns, f"--as={APPROVER}", check=False
            ).strip()
            == "yes"
        ),
        what="the approver's right",
    )
    yield pg


def test_outside_its_window_an_operation_waits_survives_a_restart_and_starts_when_the_window_is_moved(
    pg: Bosun, database_operator: OperatorProcess, cluster: LocalCluster
) -> None:
    now = datetime.now(UTC)
    set_policy(pg, {"maintenanceWindows": [window_at(now + timedelta(hours=3))]})
    pg.apply(restart("later", timeoutSeconds=30))
    status = waiting(pg, "later", "WaitingForWindow")
    starts = datetime.fromisoformat(status["startsAt"].replace("Z", "+00:00"))
    assert timedelta(hours=2, minutes=58) < starts - now < timedelta(hours=3, minutes=1)
    assert not status.get("steps") or all(s["state"] == "Pending" for s in status["steps"])
    conditions = wait_for(
        lambda: (
            c
            if (c := {x["type"]: x for x in pg.get("databases", "pg")["status"].get("conditions") or []})
            .get("Reconciling", {})
            .get("reason")
            == "WaitingForWindow"
            else None
        ),
        what="the Database saying why its operation waits",
    )
    assert conditions["Ready"]["status"] == "True"  # it serves all the while
    shown = cluster.kubectl("get", "ops", "later", "-n", pg.namespace)
    assert "WaitingForWindow" in shown and status["startsAt"] in shown  # kubectl get ops says why, and until when

    # Its 30 s deadline counts from the end of the wait: past it, and after a SIGKILL, it still waits.
    database_operator.kill()
    database_operator.start()
    database_operator.wait_healthy()
    wait_for(lambda: datetime.now(UTC) - now > timedelta(seconds=35), timeout=60, what="past the timeout")
    again = pg.status("later")
    assert (again["phase"], again["reason"], again["startsAt"]) == ("Pending", "WaitingForWindow", status["startsAt"])

    set_policy(pg, {"maintenanceWindows": [window_at(datetime.now(UTC) - timedelta(minutes=5))]})  # edited
    done = pg.wait_phase("later", timeout=120)
    assert done["phase"] == "Succeeded", done
    assert done["deadline"] > status["deadline"]  # moved to the end of the wait
    assert "startsAt" not in done or done["startsAt"] is None


def test_a_cancel_while_waiting_ends_it_and_changes_nothing(pg: Bosun) -> None:
    set_policy(pg, {"maintenanceWindows": [window_at(datetime.now(UTC) + timedelta(hours=5))]})
    start_op(pg, "never", "restart")
    waiting(pg, "never", "WaitingForWindow")
    planned = kubectl_bosun(pg.cluster, "plan", "--type", "restart", "--target", "database/pg", "-n", pg.namespace)
    assert "would wait (WaitingForWindow)" in planned.stdout, planned.stdout + planned.stderr
    kubectl_bosun(pg.cluster, "cancel", "op/never", "-n", pg.namespace)
    status = pg.wait_phase("never")
    assert (status["phase"], status["rollback"]["state"]) == ("Cancelled", "NotNeeded"), status
    assert "WaitingForWindow" in status["message"]


def test_not_before_holds_an_operation_until_then(pg: Bosun) -> None:
    earliest = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    pg.apply(restart("tonight", notBefore=earliest.strftime("%Y-%m-%dT%H:%M:%SZ")))
    held = waiting(pg, "tonight", "NotBefore")
    assert held["startsAt"] == earliest.strftime("%Y-%m-%dT%H:%M:%SZ")
    done = pg.wait_phase("tonight", timeout=120)
    assert done["phase"] == "Succeeded", done
    assert datetime.fromisoformat(done["startedAt"].replace("Z", "+00:00")) >= earliest


def test_over_its_downtime_budget_an_operation_is_refused_before_any_change_unless_waived(pg: Bosun) -> None:
    first = run_op(pg, "measure", "restart")
    assert first["phase"] == "Succeeded"
    assert first["downtime"]["measuredSeconds"] > 0  # recorded without a budget too
    set_policy(pg, {"maxDowntimeSeconds": 0})
    refused = run_op(pg, "over", "restart")
    assert (refused["phase"], refused["reason"], refused["rollback"]["state"]) == (
        "Failed",
        "DowntimeBudget",
        "NotNeeded",
    )
    assert refused["downtime"]["budgetSeconds"] == 0 and refused["downtime"]["budgetFrom"] == "Database"
    assert refused["downtime"]["predictedSeconds"] > 0 and refused["downtime"]["predicted"]["runs"] >= 1
    assert all(s["state"] == "Pending" for s in refused.get("steps") or [])
    assert "budget of 0s" in refused["message"]
    planned = kubectl_bosun(pg.cluster, "plan", "--type", "restart", "--target", "database/pg", "-n", pg.namespace)
    assert planned.returncode == 5, planned.stdout + planned.stderr  # kubectl bosun plan says so beforehand
    assert "Terms:     downtime budget 0s (from the Database)" in planned.stdout
    assert "would be refused (DowntimeBudget)" in planned.stdout

    pg.apply(restart("waived", override={"downtimeBudget": True, "reason": "planned maintenance, users told"}))
    done = pg.wait_phase("waived", timeout=120)
    assert done["phase"] == "Succeeded", done
    assert done["override"]["waived"] == ["DowntimeBudget"] and done["override"]["by"]  # who, stamped by the API server
    assert done["override"]["reason"] == "planned maintenance, users told"
    record = done["downtime"]
    assert record["budgetSeconds"] == 0 and record["measuredSeconds"] > 0 and record["withinBudget"] is False


def test_an_operation_budget_wins_over_the_targets(pg: Bosun) -> None:
    set_policy(pg, {"maxDowntimeSeconds": 0})
    pg.apply(restart("generous", maxDowntimeSeconds=3600))
    done = pg.wait_phase("generous", timeout=120)
    assert done["phase"] == "Succeeded", done
    assert (done["downtime"]["budgetSeconds"], done["downtime"]["budgetFrom"]) == (3600, "Operation")
    assert done["downtime"]["withinBudget"] is True


def test_approval_is_a_right_of_its_own_and_holds_only_for_the_plan_approved(
    people: Bosun, cluster: LocalCluster
) -> None:
    bosun = people
    set_policy(bosun, {"requireApproval": True})
    cluster.kubectl(
        "apply",
        "-n",
        bosun.namespace,
        "-f",
        "-",
        f"--as={EDITOR}",  # created by the editor
        input=json.dumps(restart("risky")),
    )
    status = waiting(bosun, "risky", "AwaitingApproval")
    plan = status["approval"]["plan"]
    assert plan and plan in status["message"]

    # The editor may create and cancel operations, but not approve one, nor forge who approved.
    told = kubectl_bosun(cluster, "approve", "op/risky", "-n", bosun.namespace, "--as", EDITOR)
    assert told.returncode == 1 and "verb 'approve'" in told.stderr, told.stderr
    forged = {"metadata": {"annotations": {APPROVED_BY: APPROVER}}}
    with pytest.raises(RuntimeError, match="cannot be set by hand"):
        cluster.kubectl(
            "patch", "op", "risky", "-n", bosun.namespace, "--type=merge", "-p", json.dumps(forged), f"--as={EDITOR}"
        )

    # Nor drop the terms, waive them, or write who cancelled into a new Operation.
    with pytest.raises(RuntimeError, match="needs the RBAC verb 'approve'"):
        cluster.kubectl(
            "patch", "db", "pg", "-n", bosun.namespace, "--type=merge", f"--as={EDITOR}",
            "-p", json.dumps({"spec": {"operationPolicy": {"requireApproval": False}}}),
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="needs the RBAC verb 'approve'"):
        cluster.kubectl(
            "patch", "op", "risky", "-n", bosun.namespace, "--type=merge", f"--as={EDITOR}",
            "-p", json.dumps({"spec": {"override": {"maintenanceWindow": True, "reason": "mine"}}}),
        )  # fmt: skip
    forged_cancel = restart("framed", {CANCELLED_BY: APPROVER}, cancel=True)
    with pytest.raises(RuntimeError, match="cannot be set by hand"):
        cluster.kubectl("apply", "-n", bosun.namespace, "-f", "-", f"--as={EDITOR}", input=json.dumps(forged_cancel))

    # The target changes: the plan awaited changes, and an approval of the old one does not hold.
    bosun.custom.patch_namespaced_custom_object(
        "bosun.dev", "v1alpha1", bosun.namespace, "databases", "pg", {"spec": {"minReadySeconds": 2}}
    )
    newer = wait_for(
        lambda: s if (s := bosun.status("risky")).get("approval", {}).get("plan") not in (None, plan) else None,
        what="a new plan after the edit",
    )
    stale = kubectl_bosun(cluster, "approve", "op/risky", "--plan", plan, "-n", bosun.namespace, "--as", APPROVER)
    assert stale.returncode == 1 and "now awaits approval of plan" in stale.stderr
    cluster.kubectl(  # approving the old plan by hand: accepted by the API server, not by Bosun
        "patch",
        "op",
        "risky",
        "-n",
        bosun.namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"approval": {"plan": plan}}}),
        f"--as={APPROVER}",
    )
    time.sleep(3)  # the operator looks at a held operation's live object every second
    still = waiting(bosun, "risky", "AwaitingApproval")
    assert not still["approval"].get("approvedBy")

    given = kubectl_bosun(cluster, "approve", "op/risky", "-n", bosun.namespace, "--as", APPROVER)
    assert given.returncode == 0, given.stderr
    assert newer["approval"]["plan"] in given.stdout
    done = bosun.wait_phase("risky", timeout=120)
    assert done["phase"] == "Succeeded", done
    assert done["approval"]["approvedBy"] == APPROVER and done["approval"]["plan"] == newer["approval"]["plan"]
    assert done["initiator"]["username"] == EDITOR  # who asked and who agreed, both recorded


def test_an_approval_given_while_waiting_for_a_window_survives_a_restart_and_counts_once(
    people: Bosun, cluster: LocalCluster, database_operator: OperatorProcess
) -> None:
    bosun = people
    later = window_at(datetime.now(UTC) + timedelta(hours=4))
    set_policy(bosun, {"requireApproval": True, "maintenanceWindows": [later]})
    start_op(bosun, "sunday", "restart")
    plan = waiting(bosun, "sunday", "AwaitingApproval")["approval"]["plan"]
    given = kubectl_bosun(cluster, "approve", "op/sunday", "--plan", plan, "-n", bosun.namespace, "--as", APPROVER)
    assert given.returncode == 0, given.stderr
    approved = waiting(bosun, "sunday", "WaitingForWindow")  # approved: now it waits for its window
    assert approved["approval"]["approvedBy"] == APPROVER
    database_operator.kill()
    database_operator.start()
    database_operator.wait_healthy()
    time.sleep(3)
    after = waiting(bosun, "sunday", "WaitingForWindow")
    assert after["approval"] == approved["approval"]  # not lost, not given again (same time, same plan)
    set_policy(
        bosun, {"requireApproval": True, "maintenanceWindows": [window_at(datetime.now(UTC) - timedelta(minutes=1))]}
    )
    done = bosun.wait_phase("sunday", timeout=120)
    assert done["phase"] == "Succeeded", done
    assert done["approval"]["approvedBy"] == APPROVER
