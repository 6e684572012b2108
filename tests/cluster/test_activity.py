"""Activity on the real cluster: operation logs in S3 (SeaweedFS) and their copies in the namespace,
the `kubectl bosun` CLI, weekly CSV reports that outlive their targets, and access that follows
RBAC (impersonated users).

The operator here shows only 5 log lines in status, so that reading any operation's whole log
goes through the namespace's copy."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kubernetes import client

from bosun.engine import logcopy as namespace_copy
from bosun.engine.oplog import OperationLog, log_key
from bosun.kube import connected
from bosun.models.logcopy import UID_LABEL
from bosun.models.names import (
    API_VERSION,
    GROUP,
    PLURALS,
    REPORT_FINAL,
    REPORT_LABEL,
    REPORT_OPERATIONS,
    REPORT_PARTS,
    VERSION,
)
from bosun.store import S3Store
from tests.support.bosun_objects import Bosun
from tests.support.cli import kubectl_bosun
from tests.support.cluster import LocalCluster
from tests.support.databases import MOVE_STEPS, NEIGHBOUR, database_manifest, ops_of, provision, start_op
from tests.support.install import apply_operator_rbac
from tests.support.operator_process import OperatorProcess, ensure_running, module_operator
from tests.support.rbac import user_with_role
from tests.support.s3_server import SeaweedFS, seaweedfs_server
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

BUCKET, PREFIX = "bosun", "ops"
FAIL = {"pod-container-running-failed.stage.kwok.x-k8s.io": "true"}
FAILING_MIN_READY = 4  # KWOK fails such a pod 1 to 2 s after it runs: never counted available first


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with seaweedfs_server(tmp_path_factory.mktemp("s3")) as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture(scope="module")
def operator(
    cluster: LocalCluster, s3: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    env = {
        **s3.env(BUCKET, PREFIX),
        "BOSUN_ACTIVITY_SECONDS": "2",
        "BOSUN_OPERATION_RETENTION_SECONDS": "600",
        "BOSUN_LOG_TAIL_LINES": "5",
    }
    apply_operator_rbac(cluster)  # with the roles people get
    yield from module_operator(
        cluster.kubeconfig, tmp_path_factory.mktemp("bosun-activity"), command=["-m", "bosun", "run"], env=env
    )


@pytest.fixture
def bosun(api: client.ApiClient, cluster: LocalCluster, namespace: str, operator: OperatorProcess) -> Bosun:
    ensure_running(operator)
    return Bosun(api, cluster, namespace)


def cli(cluster: LocalCluster, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return kubectl_bosun(cluster, *args, timeout=timeout)


def this_week() -> str:
    year, week, _ = datetime.now(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def report_rows(cluster: LocalCluster, namespace: str) -> list[dict[str, str]]:
    result = cli(cluster, "activity", "-n", namespace, "--week", this_week(), "-o", "csv")
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def app(name: str, image: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": API_VERSION,
        "kind": "App",
        "metadata": {"name": name},
        "spec": {"image": image, "minReadySeconds": 2, "terminationGracePeriodSeconds": 1, **spec},
    }


@pytest.fixture
def viewer(bosun: Bosun, cluster: LocalCluster, api: client.ApiClient) -> str:
    """A user bound to the built-in `view` role in the test namespace, and nothing else."""
    return user_with_role(api, cluster, bosun.namespace, "view", "get operations.bosun.dev")


def stored_log(s3: SeaweedFS, namespace: str, name: str, uid: str) -> bytes:
    key = f"{PREFIX}/{log_key(namespace, name, uid)}"
    return bytes(s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def untimed(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for line in lines]


def test_the_week_report_has_every_operation_even_on_deleted_targets(
    bosun: Bosun, cluster: LocalCluster, api: client.ApiClient
) -> None:
    bosun.apply(app("web", "example.com/web:1"))
    first = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the first deploy")[0]
    assert bosun.wait_phase(first, timeout=120)["phase"] == "Succeeded"
    bosun.apply(app("web", "example.com/web:2", podLabels=FAIL, minReadySeconds=FAILING_MIN_READY))
    failed = wait_for(lambda: ops_of(bosun, "web", "deploy")[1:], what="the failing deploy")[0]
    assert bosun.wait_phase(failed, timeout=180)["phase"] == "Failed"
    provisioned = provision(bosun, database_manifest(minReadySeconds=1))
    assert provisioned["phase"] == "Succeeded"
    start_op(bosun, "pg-move", "redeploy", node=NEIGHBOUR)
    assert bosun.wait_phase("pg-move", timeout=180)["phase"] == "Succeeded"
    bosun.custom.delete_namespaced_custom_object(GROUP, VERSION, bosun.namespace, PLURALS["App"], "web")
    expected = {
        first: ("deploy", "App", "web", "Succeeded", "NotNeeded"),
        failed: ("deploy", "App", "web", "Failed", "Succeeded"),
        ops_of(bosun, "pg", "provision")[0]: ("provision", "Database", "pg", "Succeeded", "NotNeeded"),
        "pg-move": ("redeploy", "Database", "pg", "Succeeded", "NotNeeded"),
    }

    def complete() -> list[dict[str, str]] | None:  # a report is rewritten a moment after each archive
        rows = report_rows(cluster, bosun.namespace)
        phases = {r["operation"]: r["phase"] for r in rows}
        return rows if all(phases.get(name) == want[3] for name, want in expected.items()) else None

    rows = wait_for(complete, timeout=60, what="every operation in the week's report")
    by_name = {r["operation"]: r for r in rows}
    for name, (type_, kind, target, phase, rollback) in expected.items():
        row = by_name[name]
        assert (row["type"], row["target_kind"], row["target_name"], row["phase"], row["rollback"]) == (
            type_,
            kind,
            target,
            phase,
            rollback,
        ), row
        assert row["initiator"] and float(row["duration_seconds"]) > 0
    assert "roll-out" in by_name[failed]["message"] or "failed" in by_name[failed]["message"]
    table = cli(cluster, "activity", "-n", bosun.namespace, "-o", "table")
    assert table.returncode == 0 and "pg-move" in table.stdout and "ROLLBACK" in table.stdout


def test_logs_follow_shows_progress_live_and_exits_with_the_outcome(bosun: Bosun, cluster: LocalCluster) -> None:
    assert provision(bosun, database_manifest(minReadySeconds=1))["phase"] == "Succeeded"
    start_op(bosun, "pg-move", "redeploy", node=NEIGHBOUR)
    followed = cli(cluster, "logs", "pg-move", "-f", "-n", bosun.namespace)
    assert followed.returncode == 0, followed.stderr
    out = followed.stdout
    for n, step in enumerate(MOVE_STEPS):
        assert f"step {n + 1}/9 {step}: " in out
    assert out.rstrip().endswith("operation succeeded")
    bars = [line for line in followed.stderr.splitlines() if line.startswith("[")]
    assert len(bars) >= 4 and bars[-1].endswith("9/9 (Succeeded)"), followed.stderr  # seen moving, live
    status = cli(cluster, "status", "pg-move", "-n", bosun.namespace)
    assert status.returncode == 0 and "stop-old" in status.stdout and f"s3://{BUCKET}/{PREFIX}/logs/" in status.stdout

    bosun.apply(app("web", "example.com/web:1", podLabels=FAIL, minReadySeconds=FAILING_MIN_READY))
    deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the failing deploy")[0]
    failed = cli(cluster, "logs", deploy, "-f", "-n", bosun.namespace)
    assert failed.returncode == 3, (failed.stdout, failed.stderr)  # failed, and rolled back
    assert "rolling back" in failed.stdout


def test_a_viewer_reads_the_whole_log_while_it_runs_and_after_byte_for_byte(
    bosun: Bosun, cluster: LocalCluster, s3: SeaweedFS, viewer: str
) -> None:
    slow = {"pod-ready.stage.kwok.x-k8s.io/delay": "10s"}
    bosun.apply(app("web", "example.com/web:1", podAnnotations=slow))
    deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the deploy")[0]
    uid = bosun.get("operations", deploy)["metadata"]["uid"]

    def past_the_status_tail() -> bool:
        status = bosun.status(deploy)
        return status.get("phase") == "Running" and (status.get("log") or {}).get("total", 0) > 5

    wait_for(past_the_status_tail, timeout=60, what="a running deploy with more lines than its status shows")
    as_viewer = ("-n", bosun.namespace, "--as", viewer)
    running = cli(cluster, "logs", deploy, "--timestamps", *as_viewer)
    assert running.returncode == 0, running.stderr
    assert "operation started: " in running.stdout.splitlines()[0], running.stdout
    assert len(running.stdout.splitlines()) > 5
    followed = cli(cluster, "logs", deploy, "-f", "--timestamps", *as_viewer)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.startswith(running.stdout)  # the same lines, then the rest, each once
    status = bosun.status(deploy)
    assert status["phase"] == "Succeeded" and len(followed.stdout.splitlines()) == status["log"]["total"]
    assert len(status["log"]["lines"]) == 5
    wait_for(
        lambda: stored_log(s3, bosun.namespace, deploy, uid) == followed.stdout.encode(),
        what="the store's copy equal to what the viewer read",
    )
    again = cli(cluster, "logs", deploy, "--timestamps", *as_viewer)
    assert again.returncode == 0 and again.stdout == followed.stdout
    last = cli(cluster, "logs", deploy, "--tail", "2", *as_viewer)
    assert last.stdout.splitlines() == untimed(followed.stdout.splitlines()[-2:])
    plain = cli(cluster, "logs", deploy, *as_viewer)
    assert plain.stdout.splitlines() == untimed(followed.stdout.splitlines())


async def test_a_10000_line_log_and_a_100_kb_line_come_back_whole_across_a_restart(
    bosun: Bosun, cluster: LocalCluster, s3: SeaweedFS, viewer: str
) -> None:
    """The operator's log writer and the namespace copy against the real API server and store; the
    operation itself is long gone (retention), so the CLI finds its log by name."""
    name, uid = "bulk-import", str(uuid.uuid4())
    store = S3Store(BUCKET, PREFIX, client=s3.client())
    key = log_key(bosun.namespace, name, uid)
    async with connected(str(cluster.kubeconfig), cluster.context) as kube:
        first = OperationLog(
            store, key, flush_seconds=3600, copy=namespace_copy.ConfigMapLogCopy(kube, bosun.namespace, name, uid)
        )
        for n in range(10_000):
            first.add(f"row {n} imported: " + "x" * 80)
        first.add("one long line: " + "y" * 100_000)
        await first.flush()
        first.add("shown in status, never flushed")  # the process is killed here
        shown = first.status()
        namespace_copy.forget_written()  # a new process knows nothing of what the last one wrote
        second = OperationLog(
            store, key, flush_seconds=3600, copy=namespace_copy.ConfigMapLogCopy(kube, bosun.namespace, name, uid)
        )
        await second.resume(shown)
        second.add("after the restart")
        await second.flush()
    read = cli(cluster, "logs", name, "--timestamps", "-n", bosun.namespace, "--as", viewer)
    assert read.returncode == 0, read.stderr
    assert read.stdout.encode() == stored_log(s3, bosun.namespace, name, uid)
    lines = read.stdout.splitlines()
    assert len(lines) == 10_003 and len(lines[10_000]) > 100_000
    assert lines[-2].endswith("shown in status, never flushed") and lines[-1].endswith("after the restart")
    chunks = client.CoreV1Api(bosun.core.api_client).list_namespaced_config_map(
        bosun.namespace, label_selector=f"{UID_LABEL}={uid}"
    )
    assert len(chunks.items) == 3  # about 1.2 MB in 512 KiB chunks, gzip-compressed on the server


def test_cancel_from_the_cli(bosun: Bosun, cluster: LocalCluster) -> None:
    slow = {"pod-ready.stage.kwok.x-k8s.io/delay": "20s"}
    bosun.apply(app("web", "example.com/web:1", podAnnotations=slow))
    deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the deploy")[0]
    bosun.wait_phase(deploy, {"Running"}, timeout=60)
    cancelled = cli(cluster, "cancel", deploy, "-n", bosun.namespace)
    assert cancelled.returncode == 0 and "cancel requested" in cancelled.stdout
    assert bosun.wait_phase(deploy, timeout=120)["phase"] == "Cancelled"
    again = cli(cluster, "cancel", deploy, "-n", bosun.namespace)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already ended" in again.stderr
    missing = cli(cluster, "status", "no-such-op", "-n", bosun.namespace)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and "not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_log_store_killed_mid_operation_loses_no_line(bosun: Bosun, s3: SeaweedFS) -> None:
    assert provision(bosun, database_manifest(minReadySeconds=1))["phase"] == "Succeeded"
    start_op(bosun, "pg-move", "redeploy", node=NEIGHBOUR)
    bosun.wait_step_state("pg-move", 5, "Running", timeout=120)  # stop-old
    s3.kill()  # SIGKILL: the store dies mid-request, its objects stay on its disk
    try:
        status = bosun.wait_phase("pg-move", timeout=180)
        time.sleep(3)  # the operation ended while the store was still down
    finally:
        s3.start()
    assert status["phase"] == "Succeeded", status
    url = status["log"]["url"]
    key = url.removeprefix(f"s3://{BUCKET}/")

    def stored() -> list[str] | None:
        lines = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
        return lines if len(lines) == status["log"]["total"] else None

    lines = wait_for(stored, timeout=60, what="every log line in the store")
    assert lines[-len(status["log"]["lines"]) :] == status["log"]["lines"]
    assert lines[0].split(" ", 2)[2].strip() == "operation started: 9 steps"
    assert lines[-1].endswith("operation succeeded")


@pytest.fixture
def other_namespace(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"t-other-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def test_a_user_of_one_namespace_cannot_read_another_namespaces_activity(
    bosun: Bosun, cluster: LocalCluster, api: client.ApiClient, other_namespace: str
) -> None:
    alice = f"alice-{uuid.uuid4().hex[:4]}"
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role_binding(
        bosun.namespace,
        {
            "metadata": {"name": "alice-views"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": alice}],
        },
    )
    other = Bosun(api, cluster, other_namespace)
    other.apply(app("secret-app", "example.com/b:1"))
    bosun.apply(app("web", "example.com/a:1"))
    mine = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="a deploy in A")[0]
    theirs = wait_for(lambda: ops_of(other, "secret-app", "deploy"), what="a deploy in B")[0]
    bosun.wait_phase(mine, timeout=120)
    other.wait_phase(theirs, timeout=120)
    wait_for(lambda: len(report_rows(cluster, other_namespace)) == 1, what="B's report")

    def can(*args: str) -> str:
        return cluster.kubectl("auth", "can-i", *args, "--as", alice, check=False).strip()

    wait_for(lambda: can("list", "operations.bosun.dev", "-n", bosun.namespace) == "yes", what="view aggregated")
    own = wait_for(
        lambda: (
            (r := cli(cluster, "activity", "-n", bosun.namespace, "--week", this_week(), "--as", alice))
            and r.returncode == 0
            and mine in r.stdout
            and r
        ),
        what="alice reading her namespace's activity",
    )
    assert theirs not in own.stdout
    denied = [
        cli(cluster, "activity", "-n", other_namespace, "--week", this_week(), "--as", alice),
        cli(cluster, "activity", "-n", other_namespace, "--since", "2026-01-01", "--as", alice),
        cli(cluster, "status", theirs, "-n", other_namespace, "--as", alice),
        cli(cluster, "logs", theirs, "-n", other_namespace, "--as", alice),
        cli(cluster, "logs", theirs, "--tail", "3", "-n", other_namespace, "--as", alice),
        cli(cluster, "logs", "removed-long-ago", "-n", other_namespace, "--as", alice),
        cli(cluster, "cancel", theirs, "-n", other_namespace, "--as", alice),
    ]
    for result in denied:
        assert result.returncode == 1, result
        assert "forbidden" in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert theirs not in result.stdout and "secret-app" not in result.stdout
    assert can("get", "configmaps", "-n", other_namespace) == "no"
    assert can("list", "operations.bosun.dev", "-A") == "no"
    assert can("get", "secrets", "-n", bosun.namespace) == "no"  # view never reads Secrets
    assert can("patch", "operations.bosun.dev", "-n", bosun.namespace) == "no"  # viewing is not cancelling


def test_a_missed_week_is_written_when_the_operator_comes_back(
    bosun: Bosun, cluster: LocalCluster, s3: SeaweedFS, operator: OperatorProcess
) -> None:
    record = {
        "namespace": bosun.namespace,
        "name": "old-deploy",
        "uid": "0ld0ld0ld",
        "type": "deploy",
        "targetKind": "App",
        "targetName": "gone",
        "initiator": "bob",
        "phase": "Succeeded",
        "rollback": "NotNeeded",
        "created": "2026-10-01T09:00:00Z",
        "started": "2026-10-01T09:00:01Z",
        "finished": "2026-10-01T09:00:31Z",
        "message": "all 4 steps succeeded",
    }
    operator.stop()  # the operator is down while the week ends
    key = f"{PREFIX}/records/{bosun.namespace}/2026-W40/old-deploy-0ld0ld0l.json"
    s3.client().put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record).encode())
    operator.start()
    core = client.CoreV1Api(bosun.core.api_client)

    def report(week: str) -> client.V1ConfigMap | None:
        try:
            return core.read_namespaced_config_map(f"bosun-activity-{week.lower()}", bosun.namespace)
        except client.ApiException:
            return None

    written = wait_for(lambda: report("2026-W40"), timeout=60, what="the missed week's report")
    assert written.metadata.annotations[REPORT_FINAL] == "true"
    rows = list(csv.DictReader(io.StringIO(written.data["activity.csv"])))
    assert [(r["operation"], r["target_name"], r["initiator"], r["duration_seconds"]) for r in rows] == [
        ("old-deploy", "gone", "bob", "30.0")
    ]
    assert wait_for(lambda: report("2026-W41"), what="the empty week after it").data["activity.csv"].count("\n") == 1
    first = written.data["activity.csv"]
    core.delete_namespaced_config_map("bosun-activity-2026-w40", bosun.namespace)
    again = wait_for(lambda: report("2026-W40"), timeout=60, what="the report written again")
    assert again.data["activity.csv"] == first  # generating a week twice gives the same report


def test_a_week_too_big_for_one_config_map_is_written_in_parts_and_read_whole(
    bosun: Bosun, cluster: LocalCluster, s3: SeaweedFS, operator: OperatorProcess
) -> None:
    count, week = 1100, "2026-W39"  # about 1.2 MB of CSV: over the 1 MiB a ConfigMap may hold
    operator.stop()
    bucket = s3.client()
    for n in range(count):
        record = {
            "namespace": bosun.namespace,
            "name": f"deploy-{n:04d}",
            "uid": f"uid-{n:04d}",
            "type": "deploy",
            "targetKind": "App",
            "targetName": "web",
            "initiator": "bob",
            "phase": "Succeeded",
            "rollback": "NotNeeded",
            "created": f"2026-09-22T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "finished": f"2026-09-22T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "message": f"deploy {n}: " + "m" * 1000,
        }
        key = f"{PREFIX}/records/{bosun.namespace}/{week}/deploy-{n:04d}-uid-{n:04d}.json"
        bucket.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record).encode())
    operator.start()
    core = client.CoreV1Api(bosun.core.api_client)

    def first_part() -> client.V1ConfigMap | None:
        try:
            return core.read_namespaced_config_map("bosun-activity-2026-w39", bosun.namespace)
        except client.ApiException:
            return None

    written = wait_for(first_part, timeout=120, what="the big week's report")
    assert written.metadata.annotations[REPORT_PARTS] == "3", written.metadata.annotations
    assert written.metadata.annotations[REPORT_OPERATIONS] == str(count)
    for part in (2, 3):
        assert core.read_namespaced_config_map(f"bosun-activity-2026-w39-{part}", bosun.namespace).data["activity.csv"]
    result = cli(cluster, "activity", "-n", bosun.namespace, "--week", week, "-o", "csv", timeout=120)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["operation"] for r in rows] == [f"deploy-{n:04d}" for n in range(count)]  # whole, in order


def test_finished_operations_are_removed_after_retention_once_archived(
    bosun: Bosun, cluster: LocalCluster, s3: SeaweedFS, operator: OperatorProcess, viewer: str
) -> None:
    operator.stop()
    operator.extra_env["BOSUN_OPERATION_RETENTION_SECONDS"] = "5"
    operator.start()
    try:
        bosun.apply(app("web", "example.com/web:1"))
        deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the deploy")[0]
        uid = bosun.get("operations", deploy)["metadata"]["uid"]
        assert bosun.wait_phase(deploy, timeout=120)["phase"] == "Succeeded"
        wait_for(lambda: not ops_of(bosun, "web", "deploy"), timeout=60, what="the Operation removed")
        removed = cli(cluster, "logs", deploy, "--timestamps", "-n", bosun.namespace, "--as", viewer)
        assert removed.returncode == 0, removed.stderr
        assert removed.stdout.encode() == stored_log(s3, bosun.namespace, deploy, uid)
        assert removed.stdout.rstrip().endswith("operation succeeded")
        gone = cli(cluster, "logs", "never-was", "-n", bosun.namespace, "--as", viewer)
        assert gone.returncode == 1 and "not found, and no log of it is kept" in gone.stderr
        listing = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/records/{bosun.namespace}/")
        assert [o["Key"] for o in listing.get("Contents", []) if f"/{deploy}-" in o["Key"]]
        assert deploy in {r["operation"] for r in report_rows(cluster, bosun.namespace)}
    finally:
        operator.stop()
        operator.extra_env["BOSUN_OPERATION_RETENTION_SECONDS"] = "600"
        operator.start()


def test_an_editor_cannot_alter_the_week_s_report_and_an_altered_one_is_flagged(
    bosun: Bosun, cluster: LocalCluster, api: client.ApiClient
) -> None:
    """The report is the namespace's audit record: the people it records cannot rewrite it."""
    editor = user_with_role(api, cluster, bosun.namespace, "edit", "update configmaps")
    bosun.apply(app("shop", "example.com/shop:1"))
    first = wait_for(lambda: ops_of(bosun, "shop", "deploy"), what="the deploy")[0]
    assert bosun.wait_phase(first, timeout=120)["phase"] == "Succeeded"
    name = f"bosun-activity-{this_week().lower()}"
    wait_for(lambda: any(r["operation"] == first for r in report_rows(cluster, bosun.namespace)), what="the report")
    report = json.loads(cluster.kubectl("get", "configmap", name, "-n", bosun.namespace, "-o", "json"))
    forged = json.loads(json.dumps(report))
    forged["data"]["activity.csv"] = forged["data"]["activity.csv"].replace(",kwok-admin,", ",someone-else,")
    assert forged["data"] != report["data"], "the initiator to forge is in the report"
    as_editor = ("-n", bosun.namespace, "--as", editor)
    with pytest.raises(RuntimeError, match="which only Bosun writes"):
        cluster.kubectl("replace", "-f", "-", *as_editor, input=json.dumps(forged))
    with pytest.raises(RuntimeError, match="which only Bosun writes"):  # a report for a week to come
        cluster.kubectl("create", "configmap", "bosun-activity-2099-w01", "--from-literal=activity.csv=x", *as_editor)
    with pytest.raises(RuntimeError, match="which only Bosun writes"):  # taking the label off first
        cluster.kubectl("label", "configmap", name, f"{REPORT_LABEL}-", *as_editor)
    cluster.kubectl("create", "configmap", "editors-own", "--from-literal=a=b", *as_editor)  # the rest is theirs

    cluster.kubectl("replace", "-f", "-", "-n", bosun.namespace, input=json.dumps(forged))  # an admin, past the policy
    read = cli(cluster, "activity", "-n", bosun.namespace, "--week", this_week(), "-o", "table")
    assert read.returncode == 0 and "Traceback" not in read.stderr, read.stderr
    assert f"warning: activity report {name} was altered after Bosun wrote it" in read.stderr, read.stderr
