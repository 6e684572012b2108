"""Weekly CSV reports: ISO weeks, rows from Operation objects, the same bytes every time."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from bosun import metrics
from bosun.activity.report import (
    COLUMNS,
    OperationRecord,
    render_csv,
    render_parts,
    report_name,
    week_of,
    week_start,
    weeks_between,
)
from bosun.errors import PermanentError


def body(name: str, created: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {"type": "deploy", "target": {"kind": "App", "name": "web"}},
        "status": {"initiator": {"username": "alice"}, **status},
    }


def test_weeks_are_iso_weeks_starting_monday_utc() -> None:
    assert week_of(datetime(2026, 11, 23, tzinfo=UTC)) == "2026-W48"  # a Monday
    assert week_of(datetime(2026, 11, 22, 23, 59, tzinfo=UTC)) == "2026-W47"
    assert week_of(datetime(2027, 1, 1, tzinfo=UTC)) == "2026-W53"  # ISO years differ from calendar years
    assert week_start("2026-W48") == datetime(2026, 11, 23, tzinfo=UTC)
    assert weeks_between("2026-W52", "2027-W02") == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]
    assert report_name("2026-W48") == "bosun-activity-2026-w48"
    with pytest.raises(ValueError, match="not an ISO week"):
        week_start("last week")


def test_a_record_has_every_column_of_the_report() -> None:
    record = OperationRecord.of(
        body(
            "web-deploy-1",
            "2026-11-23T10:00:00Z",
            phase="Failed",
            rollback={"state": "Succeeded"},
            startedAt="2026-11-23T10:00:01Z",
            finishedAt="2026-11-23T10:00:31.5Z",
            message="step roll-out failed: pods failing",
        )
    )
    assert record.week == "2026-W48"
    assert record.key == "records/shop/2026-W48/web-deploy-1-uid-web-.json"
    assert dict(zip(COLUMNS, record.row(), strict=True)) == {
        "operation": "web-deploy-1",
        "type": "deploy",
        "target_kind": "App",
        "target_name": "web",
        "initiator": "alice",
        "phase": "Failed",
        "rollback": "Succeeded",
        "created": "2026-11-23T10:00:00Z",
        "started": "2026-11-23T10:00:01Z",
        "finished": "2026-11-23T10:00:31.5Z",
        "duration_seconds": "30.5",
        "message": "step roll-out failed: pods failing",
        "dry_run": "false",
        "predicted_downtime_seconds": "",
        "downtime_budget_seconds": "",
        "downtime_seconds": "",
        "approved_by": "",
    }


def test_the_report_puts_budget_prediction_and_measured_downtime_side_by_side() -> None:
    record = OperationRecord.of(
        body(
            "pg-restart",
            "2026-11-23T10:00:00Z",
            phase="Succeeded",
            downtime={"budgetSeconds": 30, "predictedSeconds": 4.25, "measuredSeconds": 5.0, "withinBudget": True},
            approval={"plan": "abc", "approvedBy": "carol"},
        )
    )
    row = dict(zip(COLUMNS, record.row(), strict=True))
    assert (row["predicted_downtime_seconds"], row["downtime_budget_seconds"], row["downtime_seconds"]) == (
        "4.2",
        "30.0",
        "5.0",
    )
    assert row["approved_by"] == "carol"


def test_the_report_is_sorted_deduplicated_and_the_same_every_time() -> None:
    records = [
        OperationRecord.of(body("b", "2026-11-24T00:00:00Z", phase="Succeeded")),
        OperationRecord.of(body("a", "2026-11-23T00:00:00Z", phase="Succeeded", message='says "hi", twice')),
        OperationRecord.of(body("b", "2026-11-24T00:00:00Z", phase="Succeeded")),
    ]
    first = render_csv(records)
    assert first == render_csv(list(reversed(records)))
    rows = list(csv.reader(io.StringIO(first)))
    assert rows[0] == COLUMNS
    assert [r[0] for r in rows[1:]] == ["a", "b"]
    assert rows[1][COLUMNS.index("message")] == 'says "hi", twice' and rows[1][COLUMNS.index("dry_run")] == "false"


class NoLists:
    """A Kube that must not be asked: this week's live rows come from the watch's index."""

    async def list_labelled(self, *_: Any) -> list[dict[str, Any]]:
        raise AssertionError("listed every Operation of the namespace")


async def test_this_weeks_report_takes_live_rows_from_the_watch_and_stored_records_win(tmp_path: Any) -> None:
    from bosun.activity.service import ActivityService
    from bosun.models.operation import Operation
    from bosun.store import LocalStore

    store = LocalStore(tmp_path)
    done = OperationRecord.of(body("web-deploy-1", "2026-11-23T10:00:00Z", phase="Succeeded"))
    await store.put(done.key, done.model_dump_json(by_alias=True).encode())
    live = [
        Operation.of(body("web-deploy-1", "2026-11-23T10:00:00Z", phase="Running")),  # a late event: stale
        Operation.of(body("web-restart-2", "2026-11-24T10:00:00Z", phase="Queued")),
        Operation.of(body("web-restart-0", "2026-11-16T10:00:00Z", phase="Queued")),  # last week's
    ]
    asked: list[str] = []

    def watched(namespace: str) -> list[Operation]:
        asked.append(namespace)
        return live

    activity = ActivityService(
        NoLists(),  # type: ignore[arg-type]
        store,
        retention_seconds=3600,
        clock=lambda: datetime(2026, 11, 25, tzinfo=UTC),
        live=watched,
    )
    records = {r.name: r.phase for r in await activity.records("shop", "2026-W48")}
    assert records == {"web-deploy-1": "Succeeded", "web-restart-2": "Queued"} and asked == ["shop"]
    with pytest.raises(AssertionError, match="listed every Operation"):  # a past week reads the Operations
        await activity.records("shop", "2026-W47")


def test_a_big_week_is_cut_into_parts_of_whole_rows_each_with_its_header() -> None:
    records = [
        OperationRecord.of(body(f"op-{n:04d}", f"2026-11-23T10:{n // 60:02d}:{n % 60:02d}Z", message="x" * 300))
        for n in range(400)
    ]
    parts = render_parts(records, part_bytes=20_000)
    assert len(parts) > 5 and all(len(p.encode()) <= 20_000 for p in parts)
    assert all(p.startswith(",".join(COLUMNS) + "\n") for p in parts)
    rows = [row for part in parts for row in list(csv.reader(io.StringIO(part)))[1:]]
    assert rows == list(csv.reader(io.StringIO(render_csv(records))))[1:]  # in order, none lost or doubled
    assert render_parts(records)[0] == render_csv(records)  # small weeks: one part, as before
    assert render_parts(records[:1], part_bytes=10)[0].count("\n") == 2  # a part holds one row at least
    assert [report_name("2026-W48", n) for n in (1, 2)] == ["bosun-activity-2026-w48", "bosun-activity-2026-w48-2"]


def on_wednesday(kube: Any, store: Any) -> Any:
    """An activity service on Wednesday 2026-11-25 (week 48), with nothing in flight."""
    from bosun.activity.service import ActivityService

    return ActivityService(
        kube,
        store,
        retention_seconds=3600,
        clock=lambda: datetime(2026, 11, 25, tzinfo=UTC),
        live=lambda _: [],
        status_writes=kube,  # the fakes record the archive marker themselves
    )


class Refusing(NoLists):
    """Refuses every report (as the API server refused a week's report past 1 MiB); records the rest."""

    def __init__(self) -> None:
        self.archived: list[str] = []

    async def apply(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        raise PermanentError("422 ConfigMap is invalid: Too long")

    async def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.archived.append(f"{name}: {patch['archived']}")
        return {}


async def test_a_report_the_api_server_refuses_does_not_hold_the_archive_back(tmp_path: Any) -> None:
    from bosun.store import LocalStore

    kube = Refusing()
    store = LocalStore(tmp_path)
    activity = on_wednesday(kube, store)
    done = body("web-deploy-1", "2026-11-23T10:00:00Z", phase="Succeeded", finishedAt="2026-11-23T10:01:00Z")
    refused = metrics.REPORT_REFUSED._value.get()
    record = await activity.archive(done)
    assert metrics.REPORT_REFUSED._value.get() == refused + 1  # said where an alert can see it
    assert await store.get(record.key) is not None  # the record, which the report is made from
    assert kube.archived == [f"web-deploy-1: {store.url(record.key)}"]


class Writes(NoLists):
    """Answers what a catch-up asks, and records each report part written."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    async def list_all(self, kind: str) -> list[dict[str, Any]]:
        return []

    async def list_labelled(self, *_: Any) -> list[dict[str, Any]]:
        return []  # a past week's report reads its namespace's Operations too

    async def read(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        return None

    async def apply(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(manifest["metadata"]["name"])
        return manifest

    async def delete_config_map(self, namespace: str, name: str) -> None:
        return None


async def test_a_catch_up_waits_for_an_archive_writing_the_same_weeks_report(tmp_path: Any) -> None:
    """Two writers of one report's parts at once could leave its first part counting the other's rows."""
    import asyncio

    from bosun.store import LocalStore

    store = LocalStore(tmp_path)
    old = OperationRecord.of(body("web-deploy-1", "2026-11-10T10:00:00Z", phase="Succeeded"))
    await store.put(old.key, old.model_dump_json(by_alias=True).encode())
    kube = Writes()
    activity = on_wednesday(kube, store)
    lock = activity._report_locks.setdefault(("shop", old.week), asyncio.Lock())
    await lock.acquire()  # an archive of that week is writing its report
    catching_up = asyncio.ensure_future(activity.catch_up())
    await asyncio.sleep(0.05)
    assert kube.applied == []
    lock.release()
    assert ("shop", old.week) in await catching_up
    assert report_name(old.week) in kube.applied
