"""Scheduled backups: an Operation at each time of a Database's cron, retention, and loud silence.

Why Operations and not a CronJob: a scheduled backup is a backup like any other, queued behind
the Database's other operations, recorded, cancellable, crash-safe; a CronJob would be none of it.

- **On time, once.** Every minute (a Kopf timer per Database) the last time the cron named is
  computed in its time zone. If it is newer than the Database and its operation does not exist,
  it is created, named after that time (`<db>-scheduled-YYYYmmdd-HHMM`, UTC), so two ticks, two
  replicas or a restart cannot make it twice. Only the last time counts: an operator down for
  three nights makes one backup when it is back, not three. Nor do times pile up behind a
  scheduled backup that has not ended (waiting for an approval, a window, or the Database's
  other operations): while it waits, the times that pass make none; it is their backup.
- **Snapshots or dumps** (`method`): each time's Operation backs up the way the policy says.
- **Retention** applies to scheduled backups (on-demand and before-change ones are kept until
  someone deletes them): the newest `count` are kept, those older than `maxAgeDays` go. The newest
  completed backup of the Database is never pruned, whatever the policy says: if the schedule
  stops working, the last good backup must not age out behind it.
- **Loud when late.** A Database with no backup completed since the last scheduled time that is
  at least `GRACE_SECONDS` old gets condition `BackupOverdue=True` (and the metric
  `bosun_database_backup_overdue` 1): a backup that stopped happening must be seen, not found.
- **Once per time, whoever asks.** A time with a backup record made since it is not made again,
  even after its Operation was tidied away; records of an earlier Database of the same name
  (another uid) are neither counted nor pruned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from bosun import metrics
from bosun.backup_records import BackupRecords
from bosun.engine.target import TargetStatus
from bosun.kube import AlreadyExists, Kube
from bosun.models.backup import BackupTrigger
from bosun.models.base import now as clock_now
from bosun.models.base import parse_time
from bosun.models.database import BackupMethod, BackupRetention, DatabaseSpec
from bosun.models.names import API_VERSION, BACKUP_TRIGGER, FINISHED_PHASES, TARGET_KIND_LABEL, TARGET_LABEL

logger = logging.getLogger(__name__)

TICK_SECONDS = 60.0
GRACE_SECONDS = 3600.0  # how long after its time a scheduled backup may take before it is overdue
RECHECK_SECONDS = 300.0  # the records of a Database are listed at most this often (plus once per time)
OVERDUE = "BackupOverdue"


def last_and_next(schedule: str, time_zone: str, now: datetime) -> tuple[datetime, datetime]:
    """The schedule's last time at or before `now`, and its next one (UTC); ValueError if invalid."""
    if not croniter.is_valid(schedule):
        raise ValueError(f"backup.schedule {schedule!r} is not a cron expression croniter accepts")
    local = now.astimezone(ZoneInfo(time_zone))
    it = croniter(schedule, local + timedelta(seconds=1))
    last = it.get_prev(datetime).astimezone(UTC)
    return last, croniter(schedule, local).get_next(datetime).astimezone(UTC)


def operation_name(database: str, due: datetime) -> str:
    return f"{database}-scheduled-{due.astimezone(UTC):%Y%m%d-%H%M}"


def scheduled_operation(database: str, due: datetime, method: BackupMethod) -> dict[str, Any]:
    """The backup Operation of one scheduled time (a dump's says so; a snapshot is the default)."""
    spec: dict[str, Any] = {"target": {"kind": "Database", "name": database}, "type": "backup"}
    if method is not BackupMethod.VOLUME_SNAPSHOT:
        spec["parameters"] = {"method": method.value}
    return {
        "apiVersion": API_VERSION,
        "kind": "Operation",
        "metadata": {
            "name": operation_name(database, due),
            "labels": {TARGET_KIND_LABEL: "Database", TARGET_LABEL: database},
            "annotations": {BACKUP_TRIGGER: BackupTrigger.SCHEDULED.value},
        },
        "spec": spec,
    }


def completed_at(record: dict[str, Any]) -> datetime | None:
    status = record.get("status") or {}
    if status.get("phase") != "Completed" or not status.get("completedAt"):
        return None
    return parse_time(status["completedAt"])


def released(records: list[dict[str, Any]], retention: BackupRetention | None, now: datetime) -> list[str]:
    """The scheduled backups the retention lets go (names), never the newest completed one."""
    if retention is None or (retention.count is None and retention.max_age_days is None):
        return []
    done = [(completed_at(r), r) for r in records]
    done_sorted = sorted(((t, r) for t, r in done if t is not None), key=lambda pair: pair[0], reverse=True)
    newest = done_sorted[0][1]["metadata"]["name"] if done_sorted else ""
    scheduled = [(t, r) for t, r in done_sorted if (r.get("spec") or {}).get("trigger") == BackupTrigger.SCHEDULED]
    out: list[str] = []
    for index, (moment, record) in enumerate(scheduled):
        name = record["metadata"]["name"]
        beyond_count = retention.count is not None and index >= retention.count
        too_old = retention.max_age_days is not None and now - moment > timedelta(days=retention.max_age_days)
        if (beyond_count or too_old) and name != newest:
            out.append(name)
    return out


def overdue(graced_due: datetime, created: datetime, newest: datetime | None) -> bool:
    """No backup completed since `graced_due`, the schedule's last time at or before an hour ago
    (`GRACE_SECONDS`: a backup may take that long), which came after the Database was created (a new
    Database is not late for a time before it existed). An hourly schedule is late two hours after
    its last backup; a daily one an hour after the time it missed."""
    if graced_due <= created:
        return False
    return newest is None or newest < graced_due


def _of(record: dict[str, Any], uid: str) -> bool:
    """A record of this Database (by uid; a record from before uids were kept counts by name)."""
    kept = (record.get("spec") or {}).get("databaseUid") or ""
    return kept in ("", uid)


@dataclass
class _Seen:
    due: datetime | None = None  # the last time whose operation this process made (or found)
    checked_due: datetime | None = None
    checked_at: datetime | None = None


class BackupSchedules:
    """Ticks every Database: creates the scheduled backup, prunes, says when backups are late."""

    def __init__(self, kube: Kube, statuses: TargetStatus | None = None) -> None:
        self.kube = kube
        self.records = BackupRecords(kube)
        self.statuses = statuses or TargetStatus(kube)
        self._seen: dict[str, _Seen] = {}

    async def tick(self, body: dict[str, Any], now: datetime | None = None) -> None:
        now = now or clock_now()
        meta = body["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        spec = DatabaseSpec.model_validate(body.get("spec") or {})
        policy = spec.backup
        status = body.get("status") or {}
        if policy is None or not policy.schedule or status.get("phase") == "Deprovisioned":
            # No schedule (any more), or nothing to back up: nothing is late.
            if self._seen.pop(uid, None) is not None:
                metrics.forget_database(namespace, name)
            if any(c.get("type") == OVERDUE for c in status.get("conditions") or []):  # no request otherwise
                await self._say(body, None, "")
            return
        try:
            last_due, next_due = last_and_next(policy.schedule, policy.time_zone, now)
            graced_due, _ = last_and_next(policy.schedule, policy.time_zone, now - timedelta(seconds=GRACE_SECONDS))
        except (ValueError, KeyError) as error:
            await self._say(body, True, f"the backup schedule cannot be read: {error}", reason="InvalidSchedule")
            return
        seen = self._seen.setdefault(uid, _Seen())
        created = parse_time(meta["creationTimestamp"])
        due_now = last_due > created and seen.due != last_due and status.get("phase") == "Running"
        stale = seen.checked_at is None or (now - seen.checked_at).total_seconds() >= RECHECK_SECONDS
        if not due_now and seen.checked_due == last_due and not stale:
            return
        # Only this Database's records: a deleted one of the same name keeps its backups untouched.
        records = [r for r in await self.records.of_database(namespace, name) if _of(r, uid)]
        if due_now:
            # Made already (by an earlier process, whose Operation may since have been tidied away)?
            made = [r for r in records if parse_time(r["metadata"]["creationTimestamp"]) >= last_due]
            waiting = [] if made else await self._waiting(namespace, name, operation_name(name, last_due))
            if waiting:
                logger.info("backup of %s/%s due %s not made: %s has not ended", namespace, name, last_due, waiting[0])
            elif not made:
                await self._create(namespace, name, last_due, policy.method)
            seen.due = last_due
        for gone in released(records, policy.retention, now):
            logger.info("backup %s/%s released by the retention of %s", namespace, gone, name)
            await self.records.delete(namespace, gone)
        times = [t for t in map(completed_at, records) if t is not None]
        newest = max(times) if times else None
        late = overdue(graced_due, created, newest)
        metrics.BACKUP_OVERDUE.labels(namespace, name).set(1 if late else 0)
        if newest is not None:
            metrics.BACKUP_AGE.labels(namespace, name).set((now - newest).total_seconds())
        seen.checked_due, seen.checked_at = last_due, now
        if late:
            since = f"the newest completed at {newest:%Y-%m-%d %H:%M} UTC" if newest else "none ever completed"
            message = f"no backup completed since the one scheduled at {graced_due:%Y-%m-%d %H:%M} UTC ({since})"
        else:
            message = f"on schedule; next at {next_due:%Y-%m-%d %H:%M} UTC"
        await self._say(body, late, message, reason="Late" if late else "OnSchedule")

    async def _waiting(self, namespace: str, database: str, this_time: str) -> list[str]:
        """Scheduled backups of the Database, made for an earlier time, that have not ended."""
        found = await self.kube.list_labelled(
            namespace, "Operation", {TARGET_KIND_LABEL: "Database", TARGET_LABEL: database}
        )
        return sorted(
            o["metadata"]["name"]
            for o in found
            if (o["metadata"].get("annotations") or {}).get(BACKUP_TRIGGER) == BackupTrigger.SCHEDULED.value
            and (o.get("status") or {}).get("phase") not in FINISHED_PHASES
            and o["metadata"]["name"] != this_time
        )

    async def _create(self, namespace: str, database: str, due: datetime, method: BackupMethod) -> None:
        name = operation_name(database, due)
        try:
            await self.kube.create(namespace, scheduled_operation(database, due, method))
            logger.info("scheduled backup %s/%s created (due %s)", namespace, name, due.isoformat())
        except AlreadyExists:
            pass  # made by an earlier tick, process or replica

    async def _say(self, body: dict[str, Any], late: bool | None, message: str, reason: str = "") -> None:
        """Set (or, with None, remove) the BackupOverdue condition, through the target's one writer;
        no request when the Database in hand already says it (most looks change nothing)."""
        said = [c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == OVERDUE]
        wanted = None if late is None else ("True" if late else "False", reason, message)
        if [(c.get("status"), c.get("reason"), c.get("message")) for c in said] == ([wanted] if wanted else []):
            return
        meta = body["metadata"]
        await self.statuses.condition("Database", meta["namespace"], meta["name"], OVERDUE, late, reason, message)
