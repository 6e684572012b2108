"""Backup schedules: which time is due, what retention releases, when a Database is late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bosun.models.database import BackupMethod, BackupPolicy, BackupRetention
from bosun.operations.backup_schedule import (
    GRACE_SECONDS,
    last_and_next,
    operation_name,
    overdue,
    released,
    scheduled_operation,
)

NOW = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)


def test_the_last_time_is_in_the_schedules_own_time_zone() -> None:
    last, upcoming = last_and_next("0 3 * * *", "Europe/Paris", NOW)
    assert last == datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # 03:00 in Paris, winter time
    assert upcoming == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    last, _ = last_and_next("30 22 * * *", "UTC", NOW)
    assert last == NOW  # a time exactly now is due now, not a day ago


def test_a_missed_night_or_three_is_one_time_due_never_a_burst() -> None:
    """The operator was down three nights: only the last time counts, and it names one operation."""
    later = NOW + timedelta(days=3)
    last, _ = last_and_next("0 3 * * *", "UTC", later)
    assert last == datetime(2026, 12, 9, 3, 0, tzinfo=UTC)
    assert operation_name("pg", last) == "pg-scheduled-20261209-0300"


@pytest.mark.parametrize("schedule", ["99 * * * *", "0 3 * * funday"])
def test_a_schedule_that_cannot_be_read_is_an_error_not_a_crash(schedule: str) -> None:
    with pytest.raises(ValueError, match="is not a cron expression"):
        last_and_next(schedule, "UTC", NOW)


def record(name: str, days_ago: float | None, trigger: str = "Scheduled") -> dict[str, Any]:
    status: dict[str, str] = {"phase": "Pending"}
    if days_ago is not None:
        status = {"phase": "Completed", "completedAt": f"{NOW - timedelta(days=days_ago):%Y-%m-%dT%H:%M:%SZ}"}
    return {"metadata": {"name": name}, "spec": {"trigger": trigger}, "status": status}


def test_retention_keeps_the_newest_scheduled_backups_and_spares_the_others() -> None:
    records = [record(f"s{i}", i) for i in range(5)] + [record("manual", 10, "OnDemand"), record("pending", None)]
    assert released(records, BackupRetention(count=2), NOW) == ["s2", "s3", "s4"]
    assert released(records, BackupRetention(max_age_days=3), NOW) == ["s4"]  # older than 3 days
    assert released(records, BackupRetention(count=4, max_age_days=2), NOW) == ["s3", "s4"]
    assert released(records, None, NOW) == [] and released(records, BackupRetention(), NOW) == []


def test_the_newest_completed_backup_is_never_pruned_whatever_the_policy() -> None:
    """The schedule stopped two months ago: its last good backup must not age out behind it."""
    records = [record("old", 61), record("older", 62)]
    assert released(records, BackupRetention(max_age_days=30), NOW) == ["older"]


def test_late_means_nothing_completed_since_the_last_time_an_hour_ago() -> None:
    created = NOW - timedelta(days=10)
    graced, _ = last_and_next("0 * * * *", "UTC", NOW - timedelta(seconds=GRACE_SECONDS))  # an hourly schedule
    assert graced == datetime(2026, 12, 6, 21, 0, tzinfo=UTC)
    assert overdue(graced, created, None)
    assert overdue(graced, created, graced - timedelta(minutes=1))  # the last one is from before that time
    assert not overdue(graced, created, graced + timedelta(minutes=5))
    assert not overdue(graced, NOW - timedelta(minutes=30), None)  # it did not exist then


def test_the_schedules_minutely_successes_stay_out_of_the_log_and_its_failures_do_not() -> None:
    import logging

    from bosun.process import QuietTicks

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, message, None, None)

    quiet = QuietTicks()
    assert not quiet.filter(record("Timer 'build_registry.<locals>.backup_schedule' succeeded."))
    assert quiet.filter(record("Timer 'build_registry.<locals>.backup_schedule' failed with an exception. Will retry."))
    assert quiet.filter(record("Handler 'build_registry.<locals>.operation_seen' succeeded."))


def test_a_look_that_changes_nothing_makes_no_request() -> None:
    import asyncio
    from typing import cast

    from bosun.engine.target import TargetStatus
    from bosun.kube import Kube
    from bosun.operations.backup_schedule import OVERDUE, BackupSchedules

    class Statuses:
        calls: list[tuple[Any, ...]] = []

        async def condition(self, *args: Any) -> bool:
            self.calls.append(args)
            return True

    statuses = Statuses()
    schedules = BackupSchedules(cast(Kube, object()), cast(TargetStatus, statuses))
    said = {"type": OVERDUE, "status": "False", "reason": "OnSchedule", "message": "on schedule"}
    body: dict[str, Any] = {"metadata": {"namespace": "n", "name": "pg"}, "status": {"conditions": [said]}}
    asyncio.run(schedules._say(body, False, "on schedule", reason="OnSchedule"))
    assert statuses.calls == []
    asyncio.run(schedules._say(body, True, "late", reason="Late"))
    asyncio.run(schedules._say({**body, "status": {}}, None, ""))  # nothing to remove: no request
    assert [call[4] for call in statuses.calls] == [True]


class Cluster:
    """The few calls a tick makes: Operations and Backup records by label, creations, deletions."""

    def __init__(self, operations: list[dict[str, Any]]) -> None:
        self.operations = operations
        self.created: list[str] = []

    async def list_labelled(self, namespace: str, kind: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        return self.operations if kind == "Operation" else []

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body["metadata"]["name"])
        return body


class Statuses:
    def __init__(self) -> None:
        self.said: list[tuple[str, bool | None, str]] = []

    async def condition(self, kind: str, namespace: str, name: str, type_: str, value: bool | None, *rest: str) -> None:
        self.said.append((type_, value, rest[0] if rest else ""))


def scheduled_op(name: str, phase: str) -> dict[str, Any]:
    from bosun.models.names import BACKUP_TRIGGER

    return {"metadata": {"name": name, "annotations": {BACKUP_TRIGGER: "Scheduled"}}, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("earlier", "made"),
    [
        ("Pending", []),  # waiting for an approval, a window or another operation: no second one
        ("Running", []),
        ("Succeeded", ["pg-scheduled-20261206-2230"]),
        ("Failed", ["pg-scheduled-20261206-2230"]),
    ],
)
def test_times_do_not_pile_up_behind_a_scheduled_backup_that_has_not_ended(earlier: str, made: list[str]) -> None:
    import asyncio

    from bosun.operations.backup_schedule import BackupSchedules

    cluster = Cluster([scheduled_op("pg-scheduled-20261206-2229", earlier)])
    schedules = BackupSchedules(cluster, Statuses())  # type: ignore[arg-type]
    database = {
        "metadata": {"namespace": "ns", "name": "pg", "uid": "u1", "creationTimestamp": "2026-12-01T00:00:00Z"},
        "spec": {"engine": "postgresql", "version": "16", "backup": {"schedule": "* * * * *"}},
        "status": {"phase": "Running"},
    }
    asyncio.run(schedules.tick(database, NOW))
    assert cluster.created == made


def test_a_schedule_backs_up_the_way_its_policy_says() -> None:
    due = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    policy = BackupPolicy.model_validate({"schedule": "0 3 * * *", "method": "Dump"})
    dump = scheduled_operation("pg", due, policy.method)
    assert dump["metadata"]["name"] == "pg-scheduled-20261207-0300"
    assert dump["metadata"]["annotations"] == {"bosun.dev/backup-trigger": "Scheduled"}
    assert dump["spec"] == {
        "target": {"kind": "Database", "name": "pg"},
        "type": "backup",
        "parameters": {"method": "Dump"},
    }
    default = BackupPolicy.model_validate({"schedule": "0 3 * * *"}).method
    assert (
        default is BackupMethod.VOLUME_SNAPSHOT and "parameters" not in scheduled_operation("pg", due, default)["spec"]
    )
