"""Backups on real nodes: a real PostgreSQL, real snapshots, and restores counted row by row.

    .venv/bin/python -m benchmarks real-backup [--retention 50] [--keep 10] [--no-schedule]

On the two real nodes of `hack/real-nodes` a snapshot is real: the cluster runs external-snapshotter's
snapshot-controller, the loop CSI driver runs its csi-snapshotter sidecar, and a snapshot is a copy
of the volume's disk taken with its filesystem frozen. A client commits one row at a time through
the Database's Service all along (`tests/support/row_counter.py`), and:

- **backups and restores, the operator SIGKILLed in the middle**: a backup as it is, a backup
  whose operator is SIGKILLed when its `snapshot` step starts (and started again), a restore
  whose operator is SIGKILLed when its `start` step starts, and a logical dump (`pg_dump`,
  streamed into the operator's store) replayed by `pg_restore`. Each backup is restored into a new
  Database, and the copy must hold one moment of the table: every row acknowledged before the
  backup began, none acknowledged after it ended, and no hole below the newest row it holds.
- **a schedule across the operator's downtime**: a backup every minute, the operator stopped
  across two of its times; back, it makes one backup, for the last time, never a burst.
- **retention**: `--retention` scheduled backups, then a retention count of `--keep`: the
  schedule's next look prunes the oldest, and the driver's copies on disk go with their records.
- at the end, every acknowledged row must be in the live table: the rows lost are counted.

Nothing is asserted here; `tests/cluster/test_real_nodes.py` runs a small sample. The results go
to `real-backup.{md,json,png}`.
"""

from __future__ import annotations

import argparse
import base64
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support import real_nodes as real
from tests.support.backups import one_moment, scheduled, scheduled_by_hand, set_backup_policy
from tests.support.bosun_objects import Bosun
from tests.support.crash import KillAtStep
from tests.support.databases import ops_of, provision, start_op
from tests.support.row_counter import RowCounter
from tests.support.waiting import wait_for

from benchmarks.common import Environment, Report, pyplot, seconds_between
from bosun.models.names import GROUP, PLURALS, SNAPSHOT_GROUP, SNAPSHOT_VERSION, VERSION
from bosun.operations.backup_schedule import operation_name
from bosun.workloads import database as build

DRIVER = "loop.csi.bosun.local"
CASES = (  # what, the backup step the operator is killed at, the restore step, the backup's method
    ("backup", "", "", ""),
    ("backup, operator SIGKILLed at its snapshot step", "snapshot", "", ""),
    ("restore, operator SIGKILLed at its start step", "", "start", ""),
    ("logical dump (pg_dump to the store), replayed by pg_restore", "", "", "Dump"),
)


def took(status: dict[str, Any]) -> float:
    began, ended = status.get("startedAt"), status.get("finishedAt")
    return seconds_between(began, ended) if began and ended else float("nan")


def backup(bosun: Bosun, operator: Any, name: str, kill_at: str, method: str = "") -> dict[str, Any]:
    parameters = {"method": method} if method else {}
    if not kill_at:
        start_op(bosun, name, "backup", **parameters)
        return bosun.wait_phase(name, timeout=300)
    with KillAtStep(bosun, operator, kill_at, name) as kill:
        start_op(bosun, name, "backup", **parameters)
        if not kill.killed.wait(timeout=180):
            raise RuntimeError(f"{name}: its {kill_at} step was never seen Running")
        operator.start()
    return bosun.wait_phase(name, timeout=300)


def restore(bosun: Bosun, operator: Any, name: str, source: str, kill_at: str) -> dict[str, Any]:
    manifest = real.database(name)
    manifest["spec"]["source"] = {"backup": source}
    manifest["spec"]["backup"] = {"beforeChanges": False}  # deleted after the count: no backup of a copy
    if not kill_at:
        return provision(bosun, manifest)
    with KillAtStep(bosun, operator, kill_at) as kill:
        bosun.apply(manifest)
        if not kill.killed.wait(timeout=300):
            raise RuntimeError(f"{name}: its provision's {kill_at} step was never seen Running")
        operator.start()
    made = wait_for(lambda: ops_of(bosun, name, "provision"), what=f"{name}'s provision")[0]
    return bosun.wait_phase(made, timeout=600)


def backup_and_restore(
    env: Environment, operator: Any, bosun: Bosun, counter: RowCounter, n: int, case: tuple[str, ...]
) -> dict[str, Any]:
    what, kill_backup, kill_restore, method = case
    start = len(counter.acknowledged)
    wait_for(lambda: len(counter.acknowledged) >= start + 20, timeout=60, what="20 rows")
    before = len(counter.acknowledged)
    backed_up = backup(bosun, operator, f"backup-{n}", kill_backup, method)
    after = len(counter.acknowledged)
    wait_for(lambda: len(counter.acknowledged) >= after + 20, timeout=60, what="20 rows after the backup")
    run: dict[str, Any] = {
        "case": what,
        "method": method or "VolumeSnapshot",
        "backup": backed_up["phase"],
        "backup_seconds": took(backed_up),
        "steps": {s["name"]: s["state"] for s in backed_up.get("steps") or []},
        "rows_during_backup": after - before,
    }
    if backed_up["phase"] != "Succeeded":
        return run | {"restore": "not tried", "reason": backed_up.get("reason", "")}
    copy = f"copy-{n}"
    restored = restore(bosun, operator, copy, f"backup-{n}", kill_restore)
    run |= {"restore": restored["phase"], "restore_seconds": took(restored), "reason": restored.get("reason", "")}
    if restored["phase"] == "Succeeded":
        # the copy's own credentials: a snapshot's copy keeps the backup's, a dump's has new ones
        secret = env.core.read_namespaced_secret(build.secret_name(copy), bosun.namespace)
        own = base64.b64decode(secret.data["password"]).decode()
        reader = RowCounter(real.cluster_ip(env.core, bosun.namespace, copy), own)
        wait_for(lambda: reader.sql("SELECT 1").returncode == 0, timeout=120, what=f"{copy} to answer")
        run |= one_moment(counter.acknowledged, reader.present(), before, after)
    bosun.custom.delete_namespaced_custom_object(GROUP, VERSION, bosun.namespace, PLURALS["Database"], copy)
    wait_for(lambda: copy not in {d["metadata"]["name"] for d in bosun.list("databases")}, timeout=300,
             what=f"{copy} deleted")  # fmt: skip
    return run


def across_downtime(bosun: Bosun, operator: Any) -> dict[str, Any]:
    """Down across two minutes' times of a `* * * * *` schedule: back, one backup, the last time's."""
    set_backup_policy(bosun, {"schedule": "* * * * *"})
    first = wait_for(lambda: scheduled(bosun), what="the first scheduled backup", timeout=150)
    bosun.wait_phase(first[0], timeout=300)
    operator.stop()
    down_at = datetime.now(UTC)
    back_after = down_at.replace(second=0, microsecond=0) + timedelta(minutes=2, seconds=3)
    time.sleep((back_after - datetime.now(UTC)).total_seconds())
    operator.start()
    back_at = time.monotonic()
    last = operation_name("pg", back_after.replace(second=0))
    wait_for(lambda: last in scheduled(bosun), what=f"the backup of the last time, {last}", timeout=120)
    made_after = time.monotonic() - back_at
    status = bosun.wait_phase(last, timeout=300)
    time.sleep(10)  # more looks of the schedule: nothing else is made for the times missed
    set_backup_policy(bosun, None)
    made = [o for o in scheduled(bosun) if o not in first]
    times = [down_at.replace(second=0, microsecond=0) + timedelta(minutes=k) for k in (1, 2)]
    return {
        "down_seconds": (back_after - down_at).total_seconds(),
        "times_passed": [operation_name("pg", t) for t in times],
        "made": made,
        "made_only_the_last": made == [operation_name("pg", times[-1])],
        "phase": status["phase"],
        "made_seconds_after_start": made_after,
    }


def retention(env: Environment, bosun: Bosun, count: int, keep: int) -> dict[str, Any]:
    """`count` scheduled backups, then a retention of `keep`: records, snapshots and copies pruned."""
    custom = client.CustomObjectsApi(env.api)

    def records() -> list[dict[str, Any]]:
        found = custom.list_namespaced_custom_object(GROUP, VERSION, bosun.namespace, PLURALS["Backup"])["items"]
        return [b for b in found if b["spec"]["trigger"] == "Scheduled"]

    def disk() -> dict[str, int]:
        snaps = custom.list_namespaced_custom_object(
            SNAPSHOT_GROUP, SNAPSHOT_VERSION, bosun.namespace, "volumesnapshots"
        )
        listed = custom.list_cluster_custom_object(SNAPSHOT_GROUP, SNAPSHOT_VERSION, "volumesnapshotcontents")
        found = [c for c in listed["items"] if c["spec"].get("driver") == DRIVER]
        files = len(list((real.state() / "loop-csi" / "snapshots").glob("*.img")))
        return {"records": len(records()), "snapshots": len(snaps["items"]), "contents": len(found), "files": files}

    seconds = []
    for n in range(count - len(records())):
        status = scheduled_by_hand(bosun, f"kept-{n:02d}", timeout=300)
        if status["phase"] != "Succeeded":
            raise RuntimeError(f"kept-{n:02d} ended {status['phase']}: {status.get('message')}")
        seconds.append(took(status))
    before = disk()
    newest = sorted(records(), key=lambda b: b["status"].get("completedAt") or "")[-keep:]
    began = time.monotonic()
    set_backup_policy(bosun, {"schedule": "0 0 1 1 *", "timeZone": "UTC", "retention": {"count": keep}})
    wait_for(lambda: len(records()) <= keep, timeout=300, what=f"retention to keep {keep}")
    pruned_in = time.monotonic() - began
    pruned = before["records"] - keep
    left = {name: before[name] - pruned for name in ("snapshots", "contents", "files")}

    def settled() -> bool:
        now = disk()
        return now["records"] <= keep and all(now[name] <= count for name, count in left.items())

    wait_for(settled, timeout=300, what="the pruned backups' snapshots, contents and copies on disk gone")
    after = disk()
    set_backup_policy(bosun, None)
    return {
        "made": count,
        "keep": keep,
        "backup_seconds": seconds,
        "before": before,
        "after": after,
        "kept_newest": sorted(b["metadata"]["name"] for b in records())
        == sorted(b["metadata"]["name"] for b in newest),
        "pruned_seconds": pruned_in,
        "files_gone_seconds": time.monotonic() - began,
    }


def run(
    env: Environment,
    out: Path,
    cases: tuple[tuple[str, str, str, str], ...] = CASES,
    count: int = 50,
    keep: int = 10,
    schedule: bool = True,
) -> Report:
    report = Report("real-backup", "Backups and restores of a real PostgreSQL on real nodes", out)
    started_here = not real.running()
    real.up()
    try:
        with env.operator(BOSUN_SCHEDULE_TICK_SECONDS="5") as operator, env.namespace("bench-backup") as bosun:
            first = provision(bosun, real.database())
            if first["phase"] != "Succeeded":
                raise RuntimeError(f"provision ended {first['phase']}: {first.get('message')}")
            secret = env.core.read_namespaced_secret("pg-credentials", bosun.namespace)
            password = base64.b64decode(secret.data["password"]).decode()
            counter = real.following_counter(env.core, bosun.namespace, "pg", password)
            try:
                runs = [backup_and_restore(env, operator, bosun, counter, n, case) for n, case in enumerate(cases)]
                downtime = across_downtime(bosun, operator) if schedule else None
                pruning = retention(env, bosun, count, keep) if count else None
            finally:
                counter.stop()
            lost = len(set(counter.acknowledged) - counter.present())
    finally:
        if started_here:
            real.down()
    report.data = {
        "runs": runs,
        "schedule": downtime,
        "retention": pruning,
        "acknowledged": len(counter.acknowledged),
        "lost": lost,
    }
    _say(report, runs, downtime, pruning, len(counter.acknowledged), lost)
    return report


def _say(
    report: Report,
    runs: list[dict[str, Any]],
    downtime: dict[str, Any] | None,
    pruning: dict[str, Any] | None,
    acknowledged: int,
    lost: int,
) -> None:
    report.say(
        "Two real nodes (kubelet, containerd, runc), PostgreSQL 15 built from Debian's packages, volumes of the "
        "loop CSI driver; snapshots by external-snapshotter's snapshot-controller and csi-snapshotter, the driver "
        "copying the disk with its filesystem frozen. A client commits one row at a time through the Service "
        f"all along: **{acknowledged} rows acknowledged, {lost} lost** from the live table."
    )
    report.table(
        ["case", "backup", "took (s)", "rows written during it", "restore", "took (s)", "rows in the copy",
         "acknowledged before, missing", "acknowledged after, present", "holes"],
        [[r["case"], r["backup"], r["backup_seconds"], r["rows_during_backup"], r["restore"],
          r.get("restore_seconds", ""), r.get("rows", ""), r.get("missing_before", ""), r.get("present_after", ""),
          r.get("holes", "")] for r in runs],
    )  # fmt: skip
    report.say(
        "A copy holds one moment of the table when no row acknowledged before its backup began is missing, no "
        "row acknowledged after it ended is there, and no row is missing below the newest it holds. The rows "
        "written during the backup may be either side: the snapshot's moment is inside it."
    )
    if downtime:
        report.say(
            f"**A schedule across the operator's downtime**: a backup every minute, the operator stopped for "
            f"{downtime['down_seconds']:.0f} s, while {len(downtime['times_passed'])} of its times passed. Back, it "
            f"made {len(downtime['made'])} backup ({', '.join(downtime['made']) or 'none'}; only the last time's: "
            f"{'yes' if downtime['made_only_the_last'] else 'no'}), {downtime['made_seconds_after_start']:.1f} s after "
            f"it started, which ended {downtime['phase']}."
        )
    if pruning:
        before, after = pruning["before"], pruning["after"]
        report.say(
            f"**Retention**: {pruning['made']} scheduled backups, then a retention count of {pruning['keep']}. "
            f"Records {before['records']} → {after['records']} in {pruning['pruned_seconds']:.1f} s; VolumeSnapshots "
            f"{before['snapshots']} → {after['snapshots']}; the driver's snapshot contents {before['contents']} → "
            f"{after['contents']} and its copies on disk {before['files']} → {after['files']} "
            f"({pruning['files_gone_seconds']:.1f} s after the retention was set). The newest "
            f"{pruning['keep']} were kept: {'yes' if pruning['kept_newest'] else 'no'}. One backup took "
            f"{min(pruning['backup_seconds'], default=float('nan')):.1f} to "
            f"{max(pruning['backup_seconds'], default=float('nan')):.1f} s."
        )
        report.plot(_figure(pruning["backup_seconds"]))


def _figure(seconds: list[float]) -> Any:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.plot(range(1, len(seconds) + 1), seconds, "o-", markersize=3)
    axes.set(xlabel="backup", ylabel="operation took (s)", title="Backups of a real PostgreSQL, one after another",
             ylim=(0, None))  # fmt: skip
    return figure


def main(env: Environment, argv: list[str], out: Path) -> Report:
    options = argparse.ArgumentParser(prog="benchmarks real-backup", description=__doc__.splitlines()[0])
    options.add_argument("--cases", type=int, default=len(CASES), help="how many of the backup-and-restore cases")
    options.add_argument("--retention", type=int, default=50, help="scheduled backups made before the pruning")
    options.add_argument("--keep", type=int, default=10, help="the retention count then set")
    options.add_argument("--no-schedule", action="store_true", help="skip the schedule across downtime (4 min)")
    args = options.parse_args(argv)
    return run(env, out, CASES[: args.cases], args.retention, args.keep, not args.no_schedule)
