"""`kubectl bosun plan` on the real cluster: a dry run predicts the steps the real operation then runs,
refuses what the real one would refuse (in its words) without changing anything, times the downtime
from the namespace's own moves, and never stands in a real operation's way."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from kubernetes import client

from bosun.models.names import API_VERSION, ARCHIVED_LABEL
from tests.support.bosun_objects import Bosun
from tests.support.cli import kubectl_bosun
from tests.support.cluster import LocalCluster
from tests.support.databases import HOME, NEIGHBOUR, database_manifest, move, provision, start_op
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def pg(db: Bosun) -> Bosun:
    """`pg` on kwok-zone-a-1, quick to start (1 s of readiness rather than 5): the moves here are many."""
    assert provision(db, database_manifest(minReadySeconds=1))["phase"] == "Succeeded"
    return db


def dry_runs(bosun: Bosun) -> list[dict[str, Any]]:
    runs = [o for o in bosun.list("operations") if o["spec"].get("dryRun")]
    return sorted(runs, key=lambda o: (o["metadata"]["creationTimestamp"], o["status"].get("sequence") or 0))


def plan(cluster: LocalCluster, bosun: Bosun, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = kubectl_bosun(cluster, "plan", *args, "-n", bosun.namespace, stdin=stdin, timeout=180)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout


def snapshot(api: client.ApiClient, bosun: Bosun) -> dict[str, str]:
    """Every object of the namespace that an operation could touch, with its resourceVersion."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    found: dict[str, str] = {}
    for kind, items in (
        ("Pod", core.list_namespaced_pod(bosun.namespace).items),
        ("PVC", core.list_namespaced_persistent_volume_claim(bosun.namespace).items),
        ("Service", core.list_namespaced_service(bosun.namespace).items),
        ("Secret", core.list_namespaced_secret(bosun.namespace).items),
        ("ConfigMap", core.list_namespaced_config_map(bosun.namespace).items),
        ("Deployment", apps.list_namespaced_deployment(bosun.namespace).items),
    ):
        for item in items:
            found[f"{kind}/{item.metadata.name}"] = item.metadata.resource_version
    for plural in ("databases", "apps", "operations"):
        for item in bosun.list(plural):
            found[f"{plural}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return found


def downtime(status: dict[str, Any]) -> float:
    recorded = re.search(r"downtime (\d+\.\d)s", status["steps"][-1]["message"])
    assert recorded, status["steps"][-1]
    return float(recorded.group(1))


def test_a_planned_move_runs_the_predicted_steps_and_its_downtime_comes_from_past_moves(
    pg: Bosun, cluster: LocalCluster
) -> None:
    before = pg.get("databases", "pg")
    code, out = plan(cluster, pg, "--type", "redeploy", "--target", "database/pg", "--node", NEIGHBOUR)
    assert code == 0, out
    assert f"Plan:      move pg from {HOME} to {NEIGHBOUR}" in out and "Verdict:   would run" in out
    assert "no history in this namespace" in out  # never a guess
    predicted = dry_runs(pg)[-1]["status"]["dryRun"]
    assert pg.get("databases", "pg")["status"] == before["status"]  # the target shows nothing of a dry run

    measured, node = [], NEIGHBOUR
    for n in range(3):
        status = move(pg, f"move-{n}", node)
        assert status["phase"] == "Succeeded", status
        if n == 0:
            assert [s["name"] for s in status["steps"]] == [s["name"] for s in predicted["steps"]]
        measured.append(downtime(status))
        node = HOME if node == NEIGHBOUR else NEIGHBOUR

    dry_first = {"dryRun": True, "target": {"kind": "Database", "name": "pg"}, "type": "restart"}
    pg.apply({"apiVersion": API_VERSION, "kind": "Operation", "metadata": {"name": "plan-first"}, "spec": dry_first})
    start_op(pg, "move-3", "redeploy", node=node)  # created just after a dry run: it does not wait for it
    pg.wait_phase("move-3", {"Running"}, timeout=60)  # and a plan made while it runs does not wait for it
    code, out = plan(cluster, pg, "--type", "redeploy", "--target", "database/pg", "--node", node)
    assert code == 0, out
    report = dry_runs(pg)[-1]["status"]["dryRun"]
    expected = report["expectedDowntime"]
    assert expected["runs"] == 3 and min(measured) <= expected["medianSeconds"] <= max(measured), (expected, measured)
    assert expected["worstSeconds"] == max(measured)
    said = re.search(r"Downtime:  about ([\d.]+)s, low confidence: 3 runs \(([\d.]+)-([\d.]+)s\)", out)
    assert said and float(said.group(1)) == expected["medianSeconds"], out  # 3 runs: says how little it knows
    assert (float(said.group(2)), float(said.group(3))) == (min(measured), max(measured)), out
    assert report["waitsBehind"] == "move-3" and "would wait behind move-3" in out  # it did not wait itself
    status = pg.wait_phase("move-3", timeout=180)
    assert status["phase"] == "Succeeded" and not status.get("queuedBehind")
    assert pg.status("plan-first")["phase"] == "Succeeded"
    log = kubectl_bosun(cluster, "logs", "move-3", "-n", pg.namespace)
    assert log.returncode == 0 and "queued behind" not in log.stdout


def test_a_cross_zone_move_is_refused_in_the_real_run_s_words_and_nothing_changes(
    pg: Bosun, cluster: LocalCluster, api: client.ApiClient
) -> None:
    # The provision's record is archived, then labelled, just after it ends: let that settle first.
    wait_for(
        lambda: all((o["metadata"].get("labels") or {}).get(ARCHIVED_LABEL) for o in pg.list("operations")),
        timeout=60,
        what="every record archived",
    )
    first = snapshot(api, pg)
    code, out = plan(cluster, pg, "--type", "redeploy", "--target", "database/pg", "--node", "kwok-zone-b-1")
    assert code == 5, out
    dry = dry_runs(pg)[-1]
    refusal = dry["status"]["dryRun"]["refusals"][0]
    assert "a move across zones is refused" in refusal and f"Verdict:   REFUSED: {refusal}" in out
    own = {f"operations/{dry['metadata']['name']}"}
    after = {k: v for k, v in snapshot(api, pg).items() if k not in own}
    copies = {k for k in after if k.startswith(f"ConfigMap/{dry['metadata']['name']}.log-")}  # its own log
    activity = {k for k in after if k.startswith("ConfigMap/bosun-activity-")}  # the week's report lists it
    assert {k: v for k, v in after.items() if k not in copies | activity} == {
        k: v for k, v in first.items() if k not in activity
    }
    real = move(pg, "across", "kwok-zone-b-1")
    assert real["phase"] == "Failed" and refusal in real["message"]


def test_plan_of_a_manifest_lists_the_operations_an_apply_would_start_in_order(
    pg: Bosun, cluster: LocalCluster
) -> None:
    edited = database_manifest(placement={"node": NEIGHBOUR}, resources={"requests": {"cpu": "1", "memory": "1Gi"}})
    new_app = {
        "apiVersion": API_VERSION,
        "kind": "App",
        "metadata": {"name": "web"},
        "spec": {"image": "example.com/web:1", "beforeRelease": ["migrate"]},
    }
    code, out = plan(cluster, pg, "-f", "-", stdin=yaml.safe_dump_all([edited, new_app]))
    assert code == 0, out
    assert "operation 1 of 2" in out and "operation 2 of 2" in out
    kinds = [(d["spec"]["type"], d["spec"]["target"]["name"]) for d in dry_runs(pg)]
    assert kinds == [("scale", "pg"), ("redeploy", "pg"), ("deploy", "web")]
    assert "release image example.com/web:1" in out and "nothing released yet" in out
    assert "cannot be undone: before-release" in out  # the migration is named before it runs
    assert not [a for a in pg.list("apps")] and pg.get("databases", "pg")["spec"]["placement"]["node"] == HOME

    wrong = database_manifest(engine="mysql")  # the engine cannot change: the API server says so
    code, out = plan(cluster, pg, "-f", "-", stdin=yaml.safe_dump(wrong))
    assert code == 5 and "REFUSED at admission" in out, out
    code, out = plan(cluster, pg, "-f", "-", stdin=yaml.safe_dump(database_manifest()))
    assert code == 0 and "no change that needs an operation" in out, out
    wait_for(
        lambda: "(dry run)" in kubectl_bosun(cluster, "activity", "-n", pg.namespace, "-o", "table").stdout,
        timeout=60,
        what="dry runs in the activity report",
    )
