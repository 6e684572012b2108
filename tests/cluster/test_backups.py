"""Backups on the KWOK cluster: the operation, its record, its failures and what outlives the Database.

KWOK's volumes hold no bytes and its pods run nothing, so what is proven here is the operation and
the record: the snapshot is asked for through the VolumeSnapshot API, owned by its record, and a
failed one leaves nothing behind. Snapshot-controller and the driver's snapshotter are played by
tests/support/snapshots.py; the data itself is proven on the real nodes.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from bosun.cli import backups as cli_backups
from bosun.cli.commands import Connection
from bosun.models.names import DATABASE_LABEL, FINALIZER, GROUP, SNAPSHOT_GROUP, SNAPSHOT_VERSION, VERSION
from bosun.operations.backup_schedule import operation_name
from tests.support.backups import scheduled, scheduled_by_hand, set_backup_policy
from tests.support.bosun_objects import Bosun
from tests.support.cluster import LocalCluster
from tests.support.crash import KillAtStep, restart_after
from tests.support.databases import database_manifest, ops_of, provision, run_op, start_op, steps
from tests.support.install import apply_operator_rbac
from tests.support.operator_process import OperatorProcess, module_operator
from tests.support.rbac import user_with_role
from tests.support.snapshots import Snapshots
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def snapshots(snapshot_controller: Snapshots) -> Iterator[Snapshots]:
    """The session's snapshotter, its failure and hold modes reset after each test."""
    yield snapshot_controller
    snapshot_controller.fail = ""
    snapshot_controller.hold.clear()


def snapshot_of(bosun: Bosun, name: str) -> dict[str, Any] | None:
    try:
        return dict(
            bosun.custom.get_namespaced_custom_object(
                SNAPSHOT_GROUP, SNAPSHOT_VERSION, bosun.namespace, "volumesnapshots", name
            )
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def backups_of(bosun: Bosun) -> list[str]:
    return sorted(b["metadata"]["name"] for b in bosun.list("backups"))


def conditions(bosun: Bosun, name: str = "pg") -> dict[str, str]:
    found = bosun.get("databases", name).get("status", {}).get("conditions") or []
    return {c["type"]: c["status"] for c in found}


def test_a_backup_snapshots_the_volume_records_it_and_the_database_stays_ready(pg: Bosun, snapshots: Snapshots) -> None:
    snapshots.hold.set()
    start_op(pg, "backup-1", "backup")
    wait_for(lambda: snapshot_of(pg, "backup-1"), what="the backup's VolumeSnapshot")
    # While the snapshot is being taken, the Database serves and says so: Ready, not Reconciling.
    assert conditions(pg) == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}
    assert pg.get("backups", "backup-1")["status"]["phase"] == "Pending"
    snapshots.hold.clear()
    status = pg.wait_phase("backup-1", timeout=120)
    assert status["phase"] == "Succeeded", status
    done = steps(status)
    assert list(done) == ["check", "consistency", "snapshot", "wait-ready"]
    assert "VolumeSnapshotClass bosun-local" in done["check"]["message"]
    # KWOK's nodes run no kubelet to exec a CHECKPOINT through: said, and crash-consistent anyway.
    assert done["consistency"]["state"] == "Skipped", done["consistency"]
    assert "crash-consistent all the same" in done["consistency"]["message"]
    record = pg.get("backups", "backup-1")
    assert record["spec"] | {"databaseUid": ""} == {
        "database": "pg",
        "databaseUid": "",
        "engine": "postgresql",
        "version": "16",
        "method": "VolumeSnapshot",
        "trigger": "OnDemand",
        "operation": "backup-1",
        "volumeSnapshotClassName": "bosun-local",
        "consistency": record["spec"]["consistency"],
    }
    assert record["spec"]["databaseUid"] == pg.get("databases", "pg")["metadata"]["uid"]
    assert record["status"]["phase"] == "Completed" and record["status"]["size"] == "1Gi"
    assert record["status"]["snapshot"] == "backup-1" and record["status"]["completedAt"]
    snapshot = snapshot_of(pg, "backup-1")
    assert snapshot is not None
    assert [o["uid"] for o in snapshot["metadata"]["ownerReferences"]] == [record["metadata"]["uid"]]
    assert snapshot["spec"]["source"] == {"persistentVolumeClaimName": "pg-data"}
    assert conditions(pg) == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}


def test_a_snapshot_that_fails_is_rolled_back_and_leaves_no_record(pg: Bosun, snapshots: Snapshots) -> None:
    snapshots.fail = "the driver cannot snapshot this volume"
    status = run_op(pg, "backup-bad", "backup")
    assert (status["phase"], status["reason"]) == ("Failed", "SnapshotFailed"), status
    assert "the driver cannot snapshot this volume" in status["message"]
    assert status["rollback"]["state"] == "Succeeded"
    assert steps(status)["snapshot"]["state"] == "Undone"
    assert backups_of(pg) == []
    wait_for(lambda: snapshot_of(pg, "backup-bad") is None, what="the failed backup's snapshot to be deleted")
    assert conditions(pg)["Ready"] == "True"


def test_a_redis_that_cannot_save_is_refused_before_anything_is_made(db: Bosun, snapshots: Snapshots) -> None:
    """Redis' data reaches its volume only when it saves; without a SAVE (no kubelet to run it on
    KWOK) a snapshot would hold an older save, so the backup fails before any record is made."""
    status = provision(db, database_manifest("cache", engine="redis", version="7", minReadySeconds=1))
    assert status["phase"] == "Succeeded", status
    status = run_op(db, "cache-backup", "backup", target="cache")
    assert (status["phase"], status["reason"]) == ("Failed", "NotConsistent"), status
    assert "could not save" in status["message"]
    assert {s["name"]: s["state"] for s in status["steps"]}["snapshot"] == "Pending"
    assert backups_of(db) == [] and snapshot_of(db, "cache-backup") is None


def test_backups_outlive_their_database_and_are_listed_by_name(
    pg: Bosun, snapshots: Snapshots, api: client.ApiClient
) -> None:
    assert run_op(pg, "before-delete", "backup")["phase"] == "Succeeded"
    conn = Connection(pg.custom, pg.core, pg.namespace)
    out = io.StringIO()
    assert cli_backups.backups(conn, "db/pg", out) == 0
    listed = out.getvalue().splitlines()
    assert listed[0].split() == ["NAME", "PHASE", "TRIGGER", "SIZE", "COMPLETED", "VERSION", "OPERATION"]
    assert listed[1].split()[:4] == ["before-delete", "Completed", "OnDemand", "1Gi"]
    pg.custom.delete_namespaced_custom_object(GROUP, VERSION, pg.namespace, "databases", "pg")
    wait_for(
        lambda: "pg" not in [d["metadata"]["name"] for d in pg.list("databases")], what="pg to be gone", timeout=120
    )
    assert backups_of(pg) == ["before-delete"]
    assert snapshot_of(pg, "before-delete") is not None
    out = io.StringIO()
    assert cli_backups.backups(conn, "db/pg", out) == 0
    assert "before-delete" in out.getvalue()


def test_a_backup_record_cannot_be_edited(pg: Bosun, snapshots: Snapshots) -> None:
    assert run_op(pg, "kept", "backup")["phase"] == "Succeeded"
    with pytest.raises(client.ApiException) as refused:
        pg.custom.patch_namespaced_custom_object(
            GROUP, VERSION, pg.namespace, "backups", "kept", {"spec": {"database": "other"}}
        )
    assert refused.value.status == 422 and "its spec cannot change" in str(refused.value.body)


def test_the_cli_backup_creates_the_operation_and_follows_it(pg: Bosun, snapshots: Snapshots) -> None:
    conn = Connection(pg.custom, pg.core, pg.namespace)
    out, err = io.StringIO(), io.StringIO()
    code: list[int] = []
    worker = threading.Thread(target=lambda: code.append(cli_backups.backup(conn, "db/pg", True, out, err)))
    worker.start()
    worker.join(timeout=120)
    assert code == [0], (out.getvalue(), err.getvalue())
    name = out.getvalue().split()[0].removeprefix("operation/")
    assert name.startswith("pg-backup-")
    assert pg.get("backups", name)["status"]["phase"] == "Completed"


@pytest.mark.parametrize("step", ["snapshot", "wait-ready"])
def test_a_backup_killed_at_a_step_ends_with_one_record_and_one_snapshot(
    pg: Bosun, database_operator: OperatorProcess, snapshots: Snapshots, step: str
) -> None:
    name = f"crash-{step}"
    with KillAtStep(pg, database_operator, step, name) as kill:
        start_op(pg, name, "backup")
        restart_after(kill)
    status = pg.wait_phase(name, timeout=180)
    assert status["phase"] == "Succeeded", status
    assert backups_of(pg) == [name]
    assert pg.get("backups", name)["status"]["phase"] == "Completed"
    listed = pg.custom.list_namespaced_custom_object(SNAPSHOT_GROUP, SNAPSHOT_VERSION, pg.namespace, "volumesnapshots")
    assert [s["metadata"]["name"] for s in listed["items"]] == [name]


def restored(name: str, backup: str, **spec: Any) -> dict[str, Any]:
    return database_manifest(name, minReadySeconds=1, source={"backup": backup}, **spec)


def test_a_database_restored_from_a_backup_starts_on_a_volume_made_from_its_snapshot(
    pg: Bosun, snapshots: Snapshots
) -> None:
    assert run_op(pg, "nightly", "backup")["phase"] == "Succeeded"
    status = provision(pg, restored("copy", "nightly"))
    assert status["phase"] == "Succeeded", status
    assert "the volume starts as VolumeSnapshot nightly" in steps(status)["check"]["message"]
    claim = pg.core.read_namespaced_persistent_volume_claim("copy-data", pg.namespace)
    assert claim.spec.data_source.to_dict() == {
        "api_group": SNAPSHOT_GROUP,
        "kind": "VolumeSnapshot",
        "name": "nightly",
    }
    assert pg.get("databases", "copy")["status"]["phase"] == "Running"
    # The restored data answers only to the passwords it was written with: the copy gets pg's.
    secret = pg.core.read_namespaced_secret
    assert secret("copy-credentials", pg.namespace).data == secret("pg-credentials", pg.namespace).data
    assert "with the credentials Backup nightly kept" in steps(status)["credentials"]["message"]
    # The source is fixed once the Database exists.
    with pytest.raises(client.ApiException) as refused:
        pg.custom.patch_namespaced_custom_object(
            GROUP, VERSION, pg.namespace, "databases", "copy", {"spec": {"source": {"backup": "other"}}}
        )
    assert refused.value.status == 422 and "spec.source cannot change" in str(refused.value.body)


@pytest.mark.parametrize(
    ("spec", "reason", "said"),
    [
        ({"backup": "no-such-backup"}, "BackupNotFound", "there is no Backup no-such-backup"),
        ({"backup": "nightly", "version": "17"}, "BackupMismatch", "holds postgresql 16 data"),
        ({"backup": "nightly", "engine": "mysql", "version": "16"}, "BackupMismatch", "holds postgresql 16 data"),
        ({"backup": "nightly", "storage": {"size": "512Mi"}}, "BackupTooLarge", "at least 1Gi"),
    ],
)
def test_a_restore_that_cannot_be_is_refused_before_anything_is_created(
    pg: Bosun, snapshots: Snapshots, spec: dict[str, Any], reason: str, said: str
) -> None:
    assert run_op(pg, "nightly", "backup")["phase"] == "Succeeded"
    backup = spec.pop("backup")
    status = provision(pg, restored("copy", backup, **spec))
    assert (status["phase"], status["reason"]) == ("Failed", reason), status
    assert said in status["message"] and "restore refused" in status["message"]
    assert (
        pg.core.list_namespaced_persistent_volume_claim(pg.namespace, label_selector=f"{DATABASE_LABEL}=copy").items
        == []
    )
    assert pg.core.list_namespaced_secret(pg.namespace, label_selector=f"{DATABASE_LABEL}=copy").items == []


def test_a_dump_where_no_command_can_run_is_refused_before_anything_is_made(pg: Bosun) -> None:
    """A logical dump runs the engine's dump tool through the kubelet; KWOK's nodes have none, so it
    is refused at its check, before a record exists (the real nodes dump and restore PostgreSQL,
    MySQL and Redis: test_real_nodes.py)."""
    status = run_op(pg, "pg-dump", "backup", method="Dump")
    assert (status["phase"], status["reason"]) == ("Failed", "ExecUnavailable"), status
    assert "cannot run pg_dump" in status["message"] and "nothing was changed" in status["message"]
    assert [s["name"] for s in status["steps"]] == ["check", "dump"]
    assert backups_of(pg) == []
    redis = provision(pg, database_manifest("cache", engine="redis", version="7", minReadySeconds=1))
    assert redis["phase"] == "Succeeded", redis
    status = run_op(pg, "cache-dump", "backup", target="cache", method="Dump")  # Redis' own: an RDB by redis-cli
    assert (status["phase"], status["reason"]) == ("Failed", "ExecUnavailable"), status
    assert "cannot run redis-cli" in status["message"], status


def dump_record(bosun: Bosun, name: str, version: str) -> None:
    """A Dump record as the operator writes one (its dump is not in this operator's store)."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Backup",
        "metadata": {"name": name, "labels": {DATABASE_LABEL: "pg"}},
        "spec": {"database": "pg", "engine": "postgresql", "version": version, "method": "Dump",
                 "location": f"file:///nowhere/{name}.pgdump", "operation": name},
    }  # fmt: skip
    bosun.custom.create_namespaced_custom_object(GROUP, VERSION, bosun.namespace, "backups", body)
    bosun.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, bosun.namespace, "backups", name, {"status": {"phase": "Completed", "size": "1234"}}
    )


@pytest.mark.parametrize(
    ("version", "reason", "said"),
    [
        ("16", "BackupForeign", "the dump of Backup old-dump is not in"),
        ("17", "BackupMismatch", "newer than 16 (a dump restores into the same or a newer version)"),
    ],
)
def test_a_restore_from_a_dump_missing_from_the_store_or_newer_is_refused_before_anything_is_created(
    pg: Bosun, version: str, reason: str, said: str
) -> None:
    dump_record(pg, "old-dump", version)
    status = provision(pg, restored("copy", "old-dump"))
    assert (status["phase"], status["reason"]) == ("Failed", reason), status
    assert said in status["message"] and "restore refused" in status["message"]
    assert pg.core.list_namespaced_secret(pg.namespace, label_selector=f"{DATABASE_LABEL}=copy").items == []


def test_a_dump_record_deleted_takes_its_dump_out_of_the_store_first(
    pg: Bosun, database_operator: OperatorProcess
) -> None:
    """A dump lives where no garbage collector reaches: the operator holds the record's deletion
    (by hand here; by retention or with its namespace alike) until the object is gone. A record
    made without the finalizer (the operator makes its own with it) is given it on sight."""
    dumped = database_operator.log_dir / "store" / "backups" / pg.namespace / "pg" / "old-dump.pgdump"
    dumped.parent.mkdir(parents=True, exist_ok=True)
    dumped.write_bytes(b"PGDMP")
    dump_record(pg, "old-dump", "16")
    finalizers = lambda: pg.get("backups", "old-dump")["metadata"].get("finalizers") or []  # noqa: E731
    wait_for(lambda: FINALIZER in finalizers(), what="the operator's finalizer on the Dump record")
    pg.custom.delete_namespaced_custom_object(GROUP, VERSION, pg.namespace, "backups", "old-dump")
    wait_for(lambda: not pg.list("backups"), what="the record gone")
    assert not dumped.exists()
    assert f"its dump file://{dumped} too" in database_operator.log_text()


def test_a_restore_never_takes_a_volume_that_is_already_there(pg: Bosun, snapshots: Snapshots) -> None:
    """A claim kept by an earlier Database of the same name holds that Database's data, not the backup's."""
    assert run_op(pg, "nightly", "backup")["phase"] == "Succeeded"
    kept = {
        "metadata": {"name": "copy-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    pg.core.create_namespaced_persistent_volume_claim(pg.namespace, kept)
    status = provision(pg, restored("copy", "nightly"))
    assert (status["phase"], status["reason"]) == ("Failed", "VolumeExists"), status
    assert pg.core.read_namespaced_persistent_volume_claim("copy-data", pg.namespace).spec.data_source is None


@pytest.fixture(scope="module")
def database_operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """This module's operator looks at backup schedules every 2 s (the default is a minute)."""
    yield from module_operator(
        cluster.kubeconfig,
        tmp_path_factory.mktemp("bosun-backups"),
        command=["-m", "bosun", "run"],
        env={"BOSUN_SCHEDULE_TICK_SECONDS": "2"},
    )


def condition(bosun: Bosun, kind: str) -> dict[str, Any] | None:
    found = bosun.get("databases", "pg").get("status", {}).get("conditions") or []
    return next((c for c in found if c["type"] == kind), None)


def test_a_schedule_backs_up_on_time_and_retention_prunes_the_oldest(pg: Bosun, snapshots: Snapshots) -> None:
    for name in ("old-0", "old-1", "old-2"):
        assert scheduled_by_hand(pg, name)["phase"] == "Succeeded"
    assert pg.get("backups", "old-0")["spec"]["trigger"] == "Scheduled"
    set_backup_policy(pg, {"schedule": "* * * * *", "retention": {"count": 2}})
    # The first look prunes to two scheduled backups, the oldest going with its snapshot.
    wait_for(lambda: "old-0" not in backups_of(pg), what="retention to release old-0", timeout=60)
    wait_for(lambda: snapshot_of(pg, "old-0") is None, what="old-0's snapshot to be collected", timeout=60)
    # The next minute makes a backup Operation named after its time, which succeeds.
    made = wait_for(
        lambda: [o for o in ops_of(pg, "pg", "backup") if o.startswith("pg-scheduled-")],
        what="the scheduled backup operation",
        timeout=150,
    )[0]
    assert pg.wait_phase(made, timeout=120)["phase"] == "Succeeded"
    assert pg.get("backups", made)["spec"]["trigger"] == "Scheduled"
    # Then two again: old-1 goes, the newest stay.
    wait_for(lambda: "old-1" not in backups_of(pg), what="retention to release old-1", timeout=150)
    assert "old-2" in backups_of(pg) or len([b for b in backups_of(pg) if b.startswith("pg-scheduled-")]) >= 2
    on_time = condition(pg, "BackupOverdue")
    assert on_time is not None and on_time["status"] == "False" and on_time["reason"] == "OnSchedule", on_time
    assert condition(pg, "Ready")["status"] == "True"  # type: ignore[index]


def test_a_schedule_that_cannot_be_read_is_loud_and_removing_it_clears_that(pg: Bosun) -> None:
    set_backup_policy(pg, {"schedule": "99 * * * *"})  # five fields, but no minute 99
    late = wait_for(lambda: condition(pg, "BackupOverdue"), what="the BackupOverdue condition", timeout=30)
    assert (late["status"], late["reason"]) == ("True", "InvalidSchedule") and "cannot be read" in late["message"]
    set_backup_policy(pg, None)
    wait_for(lambda: condition(pg, "BackupOverdue") is None, what="the condition to be removed", timeout=30)
    assert condition(pg, "Ready")["status"] == "True"  # type: ignore[index]


def test_a_resize_backs_up_first_and_the_backup_outlives_the_change(pg: Bosun) -> None:
    status = run_op(pg, "grow", "resize", volumeSize="2Gi")
    assert status["phase"] == "Succeeded", status
    done = steps(status)
    assert list(done)[:3] == ["check-volume", "backup", "expand"] and done["backup"]["state"] == "Succeeded"
    assert "can be restored from Backup grow-backup" in done["backup"]["message"]
    assert done["backup"]["finishedAt"] <= done["expand"]["startedAt"]
    record = pg.get("backups", "grow-backup")
    assert (record["spec"]["trigger"], record["spec"]["operation"]) == ("BeforeChange", "grow")
    assert record["status"]["phase"] == "Completed" and record["status"]["size"] == "1Gi"  # the size before


def test_a_database_that_opted_out_changes_without_a_backup_and_says_so(pg: Bosun) -> None:
    pg.custom.patch_namespaced_custom_object(
        GROUP, VERSION, pg.namespace, "databases", "pg", {"spec": {"backup": {"beforeChanges": False}}}
    )
    status = run_op(pg, "grow-bare", "resize", volumeSize="2Gi")
    assert status["phase"] == "Succeeded", status
    backup = steps(status)["backup"]
    assert backup["state"] == "Skipped" and "the Database opted out" in backup["message"]
    assert backups_of(pg) == []


def test_a_deprovision_that_deletes_the_volume_leaves_a_backup_to_restore_from(db: Bosun) -> None:
    provision(db, database_manifest("scratch", minReadySeconds=1, storage={"size": "1Gi", "reclaim": "Delete"}))
    status = run_op(db, "drop", "deprovision", target="scratch")
    assert status["phase"] == "Succeeded", status
    assert [s["name"] for s in status["steps"]][:2] == ["backup", "stop"]
    assert db.core.list_namespaced_persistent_volume_claim(db.namespace).items == []
    assert db.get("backups", "drop-backup")["status"]["phase"] == "Completed"
    again = provision(db, restored("scratch-again", "drop-backup"))
    assert again["phase"] == "Succeeded", again


def test_people_read_and_delete_backups_and_ask_for_them_but_never_write_one(
    api: client.ApiClient, cluster: LocalCluster, namespace: str
) -> None:
    """A restore trusts a record: editors and admins may delete one, nobody but the operator writes one."""
    apply_operator_rbac(cluster)
    editor = user_with_role(api, cluster, namespace, "edit", "delete backups.bosun.dev")
    viewer = user_with_role(api, cluster, namespace, "view", "get backups.bosun.dev")

    def can(user: str, verb: str, resource: str) -> bool:
        said = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, "--as", user, check=False)
        return said.strip().endswith("yes")

    assert can(editor, "create", "operations.bosun.dev")  # a backup is asked for as an Operation
    assert all(can(editor, verb, "backups.bosun.dev") for verb in ("get", "list", "watch", "delete"))
    assert not any(can(editor, verb, "backups.bosun.dev") for verb in ("create", "update", "patch"))
    assert not can(editor, "patch", "backups.bosun.dev/status")
    assert can(viewer, "list", "backups.bosun.dev") and not can(viewer, "delete", "backups.bosun.dev")


def test_times_missed_while_the_operator_was_down_make_one_backup_when_it_is_back(
    pg: Bosun, database_operator: OperatorProcess
) -> None:
    """Down across two times of a schedule: back, it makes the last one only, never a burst."""
    set_backup_policy(pg, {"schedule": "* * * * *"})
    first = wait_for(lambda: scheduled(pg), what="the first scheduled backup", timeout=150)
    database_operator.stop()
    down_at = datetime.now(UTC)
    back_after = down_at.replace(second=0, microsecond=0) + timedelta(minutes=2, seconds=3)
    time.sleep((back_after - datetime.now(UTC)).total_seconds())  # two whole minutes' times pass
    missed = operation_name("pg", back_after.replace(second=0) - timedelta(minutes=1))
    database_operator.start()
    last = operation_name("pg", back_after.replace(second=0))
    wait_for(lambda: last in scheduled(pg), what=f"the backup of the last time, {last}", timeout=60)
    time.sleep(5)  # a few more looks: nothing else is made
    made_since = [o for o in scheduled(pg) if o not in first]
    assert made_since == [last] and missed not in made_since, (first, made_since)
    assert pg.wait_phase(last, timeout=120)["phase"] == "Succeeded"


def test_a_restored_database_provisioned_again_finds_its_own_volume(pg: Bosun) -> None:
    """The source is read once: after a deprovision that kept the volume, the copy is itself."""
    assert run_op(pg, "nightly", "backup")["phase"] == "Succeeded"
    assert provision(pg, restored("copy", "nightly"))["phase"] == "Succeeded"
    assert run_op(pg, "copy-down", "deprovision", target="copy")["phase"] == "Succeeded"
    again = run_op(pg, "copy-up", "provision", target="copy")
    assert again["phase"] == "Succeeded", again
    assert steps(again)["volume"]["state"] == "Skipped" and "restored" not in again.get("message", "")
