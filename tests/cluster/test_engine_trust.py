"""The engine's promises under races, crashes, deletions and forgery, on the real API server.

One test (at least) per behaviour of the engine issue: one operation per target whatever the
timing; every operation ends; deleting a running Operation cancels it; records nobody can forge;
the target shows its newest operation's outcome after a crash; no log line lost to a crash.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from bosun.models.logcopy import UID_LABEL
from bosun.models.names import (
    ARCHIVED_LABEL,
    CREATED_BY,
    FINALIZER,
    INITIATOR_SOURCE,
    INITIATOR_USER,
    TARGET_GENERATION,
    TARGET_KIND_LABEL,
    TARGET_LABEL,
)
from tests.support.bosun_objects import FINISHED, GROUP, VERSION, Bosun
from tests.support.cluster import LocalCluster
from tests.support.install import apply_operator_rbac
from tests.support.operator_process import OperatorProcess, ensure_running, module_operator
from tests.support.operator_under_test import EXPLODE, STEP_SECONDS, TABLE
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

EDITOR = "mallory"  # a namespace editor: may create and edit Operations, not their status


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    yield from module_operator(cluster.kubeconfig, tmp_path_factory.mktemp("trust"))


@pytest.fixture
def bosun(api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess) -> Bosun:
    ensure_running(operator)
    return Bosun(api, cluster, namespace)


@pytest.fixture
def app(bosun: Bosun) -> str:
    bosun.app("web")
    bosun.wait_all_finished()
    return "web"


def operation(name: str, target: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Operation",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"target": {"kind": "App", "name": target}, "type": "restart", **spec},
    }


class ActiveSampler:
    """Samples the operations of a namespace every 0.2 s; remembers every moment two were active at once."""

    def __init__(self, bosun: Bosun) -> None:
        self.bosun = bosun
        self.overlaps: list[list[str]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            items = self.bosun.list("operations")
            active = [
                o["metadata"]["name"]
                for o in items
                if (o.get("status") or {}).get("phase") in ("Running", "RollingBack")
            ]
            self.samples += 1
            if len(active) > 1:
                self.overlaps.append(active)
            time.sleep(0.2)

    def __enter__(self) -> ActiveSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def store_log(operator: OperatorProcess, status: dict[str, Any]) -> list[str]:
    url = status["log"]["url"]
    assert url.startswith("file://")
    return Path(url.removeprefix("file://")).read_text().splitlines()


# 1. one operation per target ------------------------------------------------------------------


def test_many_operations_in_one_second_run_one_at_a_time_in_creation_order_across_a_restart(
    bosun: Bosun, app: str, operator: OperatorProcess, cluster: LocalCluster
) -> None:
    # Names sort against creation order: the name must never decide who goes first.
    names = [f"op-{letter}" for letter in "zyxwvu"]
    slow = {STEP_SECONDS: "0.5"}
    batch = {"apiVersion": "v1", "kind": "List", "items": [operation(n, app, slow) for n in names]}
    with ActiveSampler(bosun) as sampler:
        cluster.kubectl("apply", "-n", bosun.namespace, "-f", "-", input=json.dumps(batch))
        created = {bosun.get("operations", n)["metadata"]["creationTimestamp"] for n in names}
        wait_for(lambda: bosun.status(names[1]).get("phase") == "Running", timeout=60, what="the second to run")
        operator.kill()
        time.sleep(1)
        operator.start()
        statuses = {n: bosun.wait_phase(n, timeout=120) for n in names}
    assert len(created) <= 2, created  # created within a second or so (one request)
    assert sampler.samples > 20 and sampler.overlaps == []
    assert {s["phase"] for s in statuses.values()} == {"Succeeded"}
    starts = [statuses[n]["startedAt"] for n in names]
    assert starts == sorted(starts)  # creation order, not name order
    for earlier, later in itertools.pairwise(names):
        assert statuses[earlier]["finishedAt"] <= statuses[later]["startedAt"]
        assert statuses[earlier]["sequence"] < statuses[later]["sequence"]


# 2. every operation ends --------------------------------------------------------------------


def test_an_unexpected_planning_error_ends_the_operation_and_the_queue_moves_on(bosun: Bosun, app: str) -> None:
    bosun.operation("buggy", app, annotations={EXPLODE: "plan"})
    bosun.operation("next", app)
    status = bosun.wait_phase("buggy")
    assert (status["phase"], status["reason"], status["rollback"]["state"]) == ("Failed", "InternalError", "NotNeeded")
    assert "ZeroDivisionError" in status["message"]
    assert bosun.wait_phase("next")["phase"] == "Succeeded"


def test_a_step_table_changed_across_an_upgrade_ends_failed_naming_what_may_stay(
    bosun: Bosun, app: str, operator: OperatorProcess, cluster: LocalCluster
) -> None:
    bosun.operation("upgraded", app, annotations={STEP_SECONDS: "3"})
    bosun.wait_step_state("upgraded", 1, "Running")
    operator.kill()
    # The next version's table has other steps.
    cluster.kubectl("annotate", "op", "upgraded", "-n", bosun.namespace, f"{TABLE}=short")
    operator.start()
    status = bosun.wait_phase("upgraded", timeout=60)
    assert (status["phase"], status["reason"], status["rollback"]["state"]) == ("Failed", "InternalError", "Failed")
    assert "do not match" in status["message"]
    assert {n["step"] for n in status["rollback"]["notUndone"]} == {"one", "two"}
    bosun.operation("after-upgrade", app)
    assert bosun.wait_phase("after-upgrade")["phase"] == "Succeeded"


def test_the_deadline_counts_from_creation_so_a_queued_operation_ends_too(bosun: Bosun, app: str) -> None:
    bosun.operation("long", app, annotations={STEP_SECONDS: "8"})
    bosun.wait_phase("long", {"Running"})
    bosun.operation("impatient", app, timeoutSeconds=10)
    queued = bosun.wait_phase("impatient", {"Queued"})
    assert "fails at" in queued["message"] and queued["deadline"]
    status = bosun.wait_phase("impatient", timeout=30)
    assert (status["phase"], status["reason"], status["rollback"]["state"]) == (
        "Failed",
        "DeadlineExceeded",
        "NotNeeded",
    )
    assert "never started" in status["message"] and "long" in status["message"]
    assert bosun.ledger("impatient") == []
    assert bosun.wait_phase("long", timeout=60)["phase"] == "Succeeded"


# 4. deleting a running Operation cancels it ------------------------------------------------


def test_deleting_a_running_operation_rolls_it_back_archives_it_then_lets_it_go(
    bosun: Bosun, app: str, operator: OperatorProcess
) -> None:
    bosun.operation("doomed", app, annotations={STEP_SECONDS: "3"})
    bosun.wait_step_state("doomed", 1, "Running")
    uid = bosun.get("operations", "doomed")["metadata"]["uid"]
    bosun.custom.delete_namespaced_custom_object(GROUP, VERSION, bosun.namespace, "operations", "doomed")
    assert bosun.get("operations", "doomed")["metadata"]["deletionTimestamp"]  # held until rolled back

    def gone() -> bool:
        try:
            bosun.get("operations", "doomed")
        except client.ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, timeout=60, what="the deleted Operation to go once rolled back")
    assert bosun.ledger("doomed") == []  # its changes were undone
    records = list((operator.log_dir / "store" / "records" / bosun.namespace).rglob(f"doomed-{uid[:8]}.json"))
    assert records, "the record is archived before the object goes"
    record = json.loads(records[0].read_text())
    assert (record["phase"], record["rollback"]) == ("Cancelled", "Succeeded")


def test_an_operation_deleted_while_the_operator_is_down_is_rolled_back_on_restart(
    bosun: Bosun, app: str, operator: OperatorProcess
) -> None:
    bosun.operation("orphaned", app, annotations={STEP_SECONDS: "3"})
    bosun.wait_step_state("orphaned", 1, "Running")
    operator.kill()
    bosun.custom.delete_namespaced_custom_object(GROUP, VERSION, bosun.namespace, "operations", "orphaned")
    time.sleep(1)
    assert bosun.get("operations", "orphaned")["status"]["phase"] == "Running"  # nothing lets it go silently
    operator.start()

    def gone() -> bool:
        return "orphaned" not in {o["metadata"]["name"] for o in bosun.list("operations")}

    wait_for(gone, timeout=60, what="the Operation to be rolled back and go")
    assert bosun.ledger("orphaned") == []


def test_finished_operations_hold_no_finalizer(bosun: Bosun, app: str) -> None:
    bosun.operation("done", app)
    bosun.wait_phase("done")
    body = wait_for(
        lambda: (b := bosun.get("operations", "done")).get("status", {}).get("archived") and b, what="the archive"
    )
    wait_for(
        lambda: not bosun.get("operations", "done")["metadata"].get("finalizers"),
        what="the finalizer to go once archived",
    )
    assert body["status"]["archived"].startswith("file://")


def archived_label(bosun: Bosun, name: str) -> str | None:
    return (bosun.get("operations", name)["metadata"].get("labels") or {}).get(ARCHIVED_LABEL)


def test_archived_records_leave_the_operators_watch_and_are_labelled_again_after_a_restart(
    bosun: Bosun, app: str, operator: OperatorProcess, cluster: LocalCluster
) -> None:
    bosun.operation("kept", app)
    bosun.wait_phase("kept")
    wait_for(lambda: archived_label(bosun, "kept") == "true", what="the archived label")
    body = bosun.get("operations", "kept")
    assert body["status"]["archived"].startswith("file://") and not body["metadata"].get("finalizers")
    with pytest.raises(RuntimeError, match="has let go"):  # labelled, it may never carry Kopf's finalizer again
        finalizers = json.dumps({"metadata": {"finalizers": [FINALIZER]}})
        cluster.kubectl("patch", "op", "kept", "-n", bosun.namespace, "--type=merge", "-p", finalizers)
    with pytest.raises(RuntimeError, match="has let go"):  # nor lose its archive while out of the watch
        unarchived = json.dumps({"status": {"archived": None}})
        cluster.kubectl(
            "patch", "op", "kept", "-n", bosun.namespace, "--subresource=status", "--type=merge", "-p", unarchived
        )
    # A record from before the label (or one a user unlabelled) is labelled once the operator sees it.
    operator.stop()
    cluster.kubectl("label", "op", "kept", "-n", bosun.namespace, f"{ARCHIVED_LABEL}-")
    assert archived_label(bosun, "kept") is None
    operator.start()
    wait_for(lambda: archived_label(bosun, "kept") == "true", what="the label again after the restart")
    assert bosun.status("kept") == body["status"]  # nothing else changed: the record is not re-archived


# 5. records nobody can forge ----------------------------------------------------------------


@pytest.fixture
def editor(bosun: Bosun, cluster: LocalCluster) -> str:
    apply_operator_rbac(cluster)  # with the roles people get
    cluster.kubectl(
        "create", "rolebinding", "mallory-edit", "-n", bosun.namespace, "--clusterrole=edit", f"--user={EDITOR}"
    )
    wait_for(
        lambda: (
            cluster.kubectl(
                "auth", "can-i", "create", "operations.bosun.dev", "-n", bosun.namespace, f"--as={EDITOR}", check=False
            ).strip()
            == "yes"
        ),
        what="the editor's rights",
    )
    return EDITOR


def as_editor(cluster: LocalCluster, *args: str, **kwargs: Any) -> str:
    return cluster.kubectl(*args, f"--as={EDITOR}", **kwargs)


def test_a_forged_plan_annotation_is_ignored(bosun: Bosun, app: str, editor: str, cluster: LocalCluster) -> None:
    forged = operation("forged-plan", app, {"bosun.dev/plan": "not json at all"})
    as_editor(cluster, "apply", "-n", bosun.namespace, "-f", "-", input=json.dumps(forged))
    status = bosun.wait_phase("forged-plan")
    assert status["phase"] == "Succeeded"
    assert json.loads(status["plan"]) == {"table": "ledger"}  # the operator's own, in status
    bosun.operation("after-forgery", app)
    assert bosun.wait_phase("after-forgery")["phase"] == "Succeeded"


def test_an_editor_cannot_write_what_bosun_decides(bosun: Bosun, app: str, editor: str, cluster: LocalCluster) -> None:
    bosun.operation("decided", app)
    bosun.wait_phase("decided")
    for forged in ({"archived": "file:///elsewhere"}, {"plan": "{}"}, {"initiator": {"username": "alice"}}):
        with pytest.raises(RuntimeError, match=r"(?i)forbidden"):
            as_editor(
                cluster,
                "patch",
                "op",
                "decided",
                "-n",
                bosun.namespace,
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps({"status": forged}),
            )
    status = bosun.status("decided")
    assert status["archived"] != "file:///elsewhere" and status["initiator"]["username"] == "kwok-admin"


def test_nobody_can_hide_an_unarchived_operation_from_the_operator(
    bosun: Bosun, app: str, editor: str, cluster: LocalCluster
) -> None:
    hidden = operation("hidden", app)
    hidden["metadata"]["labels"] = {ARCHIVED_LABEL: "true"}
    with pytest.raises(RuntimeError, match="record is archived"):
        as_editor(cluster, "create", "-n", bosun.namespace, "-f", "-", input=json.dumps(hidden))
    bosun.operation("running", app, annotations={STEP_SECONDS: "2"})
    bosun.wait_step_state("running", 1, "Running")
    for who in (as_editor, lambda c, *a: c.kubectl(*a)):  # an editor, and the cluster's admin too
        with pytest.raises(RuntimeError, match="record is archived"):
            who(cluster, "label", "op", "running", "-n", bosun.namespace, f"{ARCHIVED_LABEL}=true")
    assert bosun.wait_phase("running")["phase"] == "Succeeded"  # seen through to its end


def test_a_forged_initiator_is_not_believed(bosun: Bosun, app: str, editor: str, cluster: LocalCluster) -> None:
    forged = operation(
        "forged-initiator",
        app,
        {
            INITIATOR_SOURCE: "AppSpec",
            INITIATOR_USER: "alice",
            CREATED_BY: "system:serviceaccount:bosun-system:bosun",
            TARGET_GENERATION: "99",
        },
    )
    as_editor(cluster, "apply", "-n", bosun.namespace, "-f", "-", input=json.dumps(forged))
    status = bosun.wait_phase("forged-initiator")
    assert status["initiator"]["username"] == EDITOR  # stamped by the API server, not the manifest
    assert (status["initiator"]["kind"], status["initiator"]["source"]) == ("User", "Operation")
    assert bosun.get("apps", app)["status"].get("observedGeneration") != 99


# 6. the target shows the truth --------------------------------------------------------------


def test_the_target_converges_to_its_newest_operation_after_a_crash(
    bosun: Bosun, app: str, operator: OperatorProcess, cluster: LocalCluster
) -> None:
    bosun.operation("settled", app)
    bosun.wait_phase("settled")
    wait_for(lambda: bosun.status("settled").get("archived"), what="the archive")
    before = {c["type"]: c for c in bosun.get("apps", app)["status"]["conditions"]}
    operator.kill()
    # As if the operator died between the operation's last status write and the mirror to its App.
    stale = {
        "lastOperation": {"name": "settled", "type": "restart", "phase": "Running"},
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "OperationRunning",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            },
            {
                "type": "Reconciling",
                "status": "True",
                "reason": "OperationRunning",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            },
            before["Stalled"],
        ],
    }
    cluster.kubectl(
        "patch",
        "app",
        app,
        "-n",
        bosun.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": stale}),
    )
    # Watched again first: the admission policy refuses to unarchive a record while it is labelled.
    cluster.kubectl("label", "op", "settled", "-n", bosun.namespace, f"{ARCHIVED_LABEL}-")
    cluster.kubectl(
        "patch",
        "op",
        "settled",
        "-n",
        bosun.namespace,
        "--subresource=status",
        "--type=json",
        "-p",
        json.dumps([{"op": "remove", "path": "/status/archived"}]),
    )
    operator.start()

    def converged() -> dict[str, Any] | None:
        status = bosun.get("apps", app)["status"]
        return status if status["lastOperation"]["phase"] == "Succeeded" else None

    status = wait_for(converged, timeout=60, what="the App to show its newest operation's outcome")
    after = {c["type"]: c for c in status["conditions"]}
    assert (after["Ready"]["status"], after["Reconciling"]["status"]) == ("True", "False")
    assert after["Stalled"]["lastTransitionTime"] == before["Stalled"]["lastTransitionTime"]  # no transition


# 7. no log line lost to a crash -------------------------------------------------------------


def test_after_a_sigkill_the_store_has_every_line_the_status_showed(
    bosun: Bosun, operator: OperatorProcess, cluster: LocalCluster
) -> None:
    apps = [f"app{n}" for n in range(5)]
    for name in apps:
        bosun.app(name)
    bosun.wait_all_finished()
    slow = {STEP_SECONDS: "1.5"}
    batch = {"apiVersion": "v1", "kind": "List", "items": [operation(f"log-{a}", a, slow) for a in apps]}
    cluster.kubectl("apply", "-n", bosun.namespace, "-f", "-", input=json.dumps(batch))
    wait_for(lambda: all(bosun.status(f"log-{a}").get("phase") == "Running" for a in apps), what="all running")
    time.sleep(1.7)
    shown = {a: list(bosun.status(f"log-{a}")["log"]["lines"]) for a in apps}  # what status shows just before
    operator.kill()
    operator.start()
    for a in apps:
        status = bosun.wait_phase(f"log-{a}", timeout=90)
        assert status["phase"] == "Succeeded"
        wait_for(lambda a=a: bosun.status(f"log-{a}").get("archived"), what="the archive (after the log settled)")
        status = bosun.status(f"log-{a}")
        lines = store_log(operator, status)
        assert len(lines) == status["log"]["total"]  # numbered without gaps
        assert all(line in lines for line in shown[a])  # nothing the status ever showed is lost
        assert lines[-len(status["log"]["lines"]) :] == status["log"]["lines"]
        assert any("resumed" in line for line in lines)


def test_queued_then_cancelled_says_so_in_its_log(bosun: Bosun, app: str, cluster: LocalCluster) -> None:
    bosun.operation("blocker", app, annotations={STEP_SECONDS: "2"})
    bosun.wait_phase("blocker", {"Running"})
    bosun.operation("never", app)
    bosun.wait_phase("never", {"Queued"})
    cluster.kubectl("patch", "op", "never", "-n", bosun.namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    status = bosun.wait_phase("never")
    assert status["phase"] == "Cancelled" and status["phase"] in FINISHED
    assert any("cancelled before it started, by kwok-admin (spec.cancel)" in line for line in status["log"]["lines"])


def test_the_provenance_annotations_cannot_change_after_creation(
    bosun: Bosun, app: str, editor: str, cluster: LocalCluster
) -> None:
    bosun.operation("provenance", app)
    bosun.wait_phase("provenance")
    for key in (CREATED_BY, TARGET_GENERATION, INITIATOR_SOURCE):
        with pytest.raises(RuntimeError, match="cannot change"):
            as_editor(cluster, "annotate", "--overwrite", "op", "provenance", "-n", bosun.namespace, f"{key}=forged")
    assert bosun.get("operations", "provenance")["metadata"]["annotations"][CREATED_BY] == "kwok-admin"


def test_relabelling_an_operation_cannot_hide_it_from_its_target_s_queue(
    bosun: Bosun, app: str, editor: str, cluster: LocalCluster
) -> None:
    """The queue reads a target's rivals by label: the API server stamps those labels from the
    immutable spec.target on every write, so a forged or changed label changes nothing."""
    forged = operation("hidden", app, {STEP_SECONDS: "3"})
    forged["metadata"]["labels"] = {TARGET_KIND_LABEL: "database", TARGET_LABEL: "elsewhere"}
    with ActiveSampler(bosun) as sampler:
        as_editor(cluster, "apply", "-n", bosun.namespace, "-f", "-", input=json.dumps(forged))
        labels = bosun.get("operations", "hidden")["metadata"]["labels"]
        assert (labels[TARGET_KIND_LABEL], labels[TARGET_LABEL]) == ("app", app)
        as_editor(cluster, "label", "op", "hidden", "-n", bosun.namespace, "--overwrite", f"{TARGET_LABEL}=elsewhere")
        assert bosun.get("operations", "hidden")["metadata"]["labels"][TARGET_LABEL] == app
        bosun.operation("behind", app)
        hidden, behind = (bosun.wait_phase(n, timeout=120) for n in ("hidden", "behind"))
    assert sampler.overlaps == [] and hidden["phase"] == behind["phase"] == "Succeeded"
    assert hidden["finishedAt"] <= behind["startedAt"]


def test_an_editor_cannot_forge_or_alter_an_operation_s_log(
    bosun: Bosun, app: str, editor: str, cluster: LocalCluster
) -> None:
    bosun.operation("logged", app)
    bosun.wait_phase("logged")
    uid = bosun.get("operations", "logged")["metadata"]["uid"]
    chunk = f"logged.log-{uid[:8]}-0"
    wait_for(lambda: cluster.kubectl("get", "configmap", chunk, "-n", bosun.namespace, check=False), what="the copy")
    with pytest.raises(RuntimeError, match="only Bosun writes"):
        as_editor(cluster, "patch", "configmap", chunk, "-n", bosun.namespace, "--type=merge", "-p",
                  json.dumps({"binaryData": {"log.gz": "H4sIAAAAAAAAA0vLz1cozs8tyEktAQAAAP//"}}))  # fmt: skip
    forged = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"logged.log-{uid[:8]}-1", "labels": {UID_LABEL: uid}},
        "data": {"log": "2026-11-26T00:00:00.000Z INFO    all fine, says mallory"},
    }
    with pytest.raises(RuntimeError, match="only Bosun writes"):
        as_editor(cluster, "apply", "-n", bosun.namespace, "-f", "-", input=json.dumps(forged))
    as_editor(cluster, "create", "configmap", "mallorys-own", "-n", bosun.namespace, "--from-literal=a=b")
