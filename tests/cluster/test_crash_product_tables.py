"""The product's own step tables, SIGKILLed at each step, end as they should, and say so truthfully.

The operator is killed the moment a watch sees the step recorded Running (before it acts, or while
it acts, or just after: all are moments a real crash can hit). The restarted operator re-runs the
step; the end state must be the one a run without a crash gives, and a rollback after a crash must
undo what the killed process did (a re-run step that finds its own work counts it as done).
This is the sample of the fault harness that runs in `hack/test`.
"""

from __future__ import annotations

from typing import Any

import pytest

from bosun.models.names import DATABASE_LABEL
from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.crash import KillAtStep, restart_after
from tests.support.databases import HOME, database_manifest, ops_of, pods, start_op, steps
from tests.support.operator_process import OperatorProcess
from tests.support.pod_policy import FAIL_LABEL, pod_policy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("step", ["credentials", "volume", "start", "record"])
def test_provision_killed_at_each_step_ends_with_one_of_everything(
    db: Bosun, database_operator: OperatorProcess, step: str
) -> None:
    with KillAtStep(db, database_operator, step) as kill:
        db.apply(database_manifest())
        restart_after(kill)
    name = wait_for(lambda: ops_of(db, "pg", "provision"), what="the provision")[0]
    status = db.wait_phase(name, timeout=120)
    assert status["phase"] == "Succeeded", status
    assert [p.spec.node_name for p in pods(db)] == [HOME]
    assert len(db.core.list_namespaced_secret(db.namespace, label_selector=f"{DATABASE_LABEL}=pg").items) == 1
    assert len(db.core.list_namespaced_persistent_volume_claim(db.namespace).items) == 1
    assert db.get("databases", "pg")["status"]["phase"] == "Running"


def test_provision_killed_after_creating_its_volume_then_failing_removes_what_it_made(
    db: Bosun, database_operator: OperatorProcess, api: Any, cluster: LocalCluster
) -> None:
    """The crash the engine issue found: re-run steps said Skipped, and the rollback kept Secret and claim."""
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "labels": {DATABASE_LABEL: "pg"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    condition = f"has(object.metadata.labels) && object.metadata.labels['{DATABASE_LABEL}'] == 'pg'"
    with pod_policy(cluster, api, db.namespace, condition, probe, labels=FAIL_LABEL):
        with KillAtStep(db, database_operator, "volume") as kill:  # credentials done, the claim in flight
            db.apply(database_manifest())
            restart_after(kill)
        name = wait_for(lambda: ops_of(db, "pg", "provision"), what="the provision")[0]
        status = db.wait_phase(name, timeout=120)
    assert status["phase"] == "Failed", status
    assert status["rollback"]["state"] == "Succeeded", status["rollback"]
    assert "credentials" in status["rollback"]["undone"]
    assert not db.core.list_namespaced_secret(db.namespace, label_selector=f"{DATABASE_LABEL}=pg").items
    wait_for(lambda: not db.core.list_namespaced_persistent_volume_claim(db.namespace).items, what="the claim gone")


@pytest.mark.parametrize("step", ["stop", "start"])
def test_restart_killed_at_each_step_runs_one_pod_on_the_same_volume(
    pg: Bosun, database_operator: OperatorProcess, step: str
) -> None:
    volume = pg.get("databases", "pg")["status"]["volume"]["volumeName"]
    with KillAtStep(pg, database_operator, step, "crashed-restart") as kill:
        start_op(pg, "crashed-restart", "restart")
        restart_after(kill)
    status = pg.wait_phase("crashed-restart", timeout=120)
    assert status["phase"] == "Succeeded", status
    running = [p for p in pods(pg) if p.metadata.deletion_timestamp is None]
    assert [p.spec.node_name for p in running] == [HOME]
    assert pg.get("databases", "pg")["status"]["volume"]["volumeName"] == volume


@pytest.mark.parametrize("step", ["expand", "record"])
def test_resize_killed_at_each_step_grows_once_and_records_it(
    pg: Bosun, database_operator: OperatorProcess, step: str
) -> None:
    with KillAtStep(pg, database_operator, step, "crashed-resize") as kill:
        start_op(pg, "crashed-resize", "resize", volumeSize="3Gi")
        restart_after(kill)
    status = pg.wait_phase("crashed-resize", timeout=120)
    assert status["phase"] == "Succeeded", status
    assert steps(status)["expand"]["state"] == "Succeeded"  # never Skipped: it was this operation's work
    claim = pg.core.read_namespaced_persistent_volume_claim("pg-data", pg.namespace)
    assert claim.spec.resources.requests["storage"] == "3Gi"
    assert pg.get("databases", "pg")["status"]["volume"]["capacity"] == "3Gi"
