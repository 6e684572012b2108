"""Activity records and weekly CSV reports: the pure part (no I/O).

An operation's record is what the weekly report needs of it, taken from the Operation object. The
record is archived in the store when the operation ends, so it outlives both the Operation object
(removed after the retention time) and its target (an App or Database deleted since).

A week is an ISO week (Monday 00:00 UTC to the next Monday); an operation belongs to the week in
which it was created. The CSV is sorted by creation time then name and has no generation
timestamp in it, so generating a week twice gives the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import Field

from bosun.models.base import KubeModel, parse_time
from bosun.models.names import REPORT_DIGEST, REPORT_PARTS
from bosun.models.operation import Operation

COLUMNS = [
    "operation",
    "type",
    "target_kind",
    "target_name",
    "initiator",
    "phase",
    "rollback",
    "created",
    "started",
    "finished",
    "duration_seconds",
    "message",
    "dry_run",
    "predicted_downtime_seconds",
    "downtime_budget_seconds",
    "downtime_seconds",
    "approved_by",
]


class OperationRecord(KubeModel):
    """One operation, as the activity report and the archive keep it."""

    namespace: str
    name: str
    uid: str
    type: str
    target_kind: str
    target_name: str
    initiator: str = ""
    phase: str = ""
    reason: str = ""
    rollback: str = ""
    created: str = ""
    started: str = ""
    finished: str = ""
    message: str = ""
    log_url: str = Field(default="", description="The whole log in the store.")
    dry_run: bool = Field(default=False, description="A dry run: planned and checked, nothing changed.")
    predicted_downtime_seconds: float | None = Field(default=None, description="Predicted before the stop.")
    downtime_budget_seconds: int | None = Field(default=None, description="Its downtime budget.")
    downtime_seconds: float | None = Field(default=None, description="The downtime measured.")
    approved_by: str = Field(default="", description="Who approved its plan, where approval was required.")

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> OperationRecord:
        """From an Operation body, read by the one parser of Operation bodies (`Operation.of`)."""
        return cls.of_operation(Operation.of(body))

    @classmethod
    def of_operation(cls, operation: Operation) -> OperationRecord:
        status = operation.status
        return cls(
            namespace=operation.namespace,
            name=operation.name,
            uid=operation.uid,
            type=operation.spec.type.value,
            target_kind=operation.spec.target.kind.value,
            target_name=operation.spec.target.name,
            initiator=status.initiator.username if status.initiator else "",
            phase=status.phase.value,
            reason=status.reason,
            rollback=status.rollback.state.value if status.rollback else "",
            created=operation.created,
            started=status.started_at or "",
            finished=status.finished_at or "",
            message=status.message,
            log_url=status.log.url if status.log else "",
            dry_run=operation.spec.dry_run,
            predicted_downtime_seconds=status.downtime.predicted_seconds if status.downtime else None,
            downtime_budget_seconds=status.downtime.budget_seconds if status.downtime else None,
            downtime_seconds=status.downtime.measured_seconds if status.downtime else None,
            approved_by=status.approval.approved_by if status.approval else "",
        )

    @property
    def week(self) -> str:
        return week_of(parse(self.created))

    @property
    def key(self) -> str:
        """Where the archive keeps it: by namespace and week, so a week's records list together."""
        return f"records/{self.namespace}/{self.week}/{self.name}-{self.uid[:8]}.json"

    def duration(self) -> str:
        if not (self.started and self.finished):
            return ""
        return f"{(parse(self.finished) - parse(self.started)).total_seconds():.1f}"

    def row(self) -> list[str]:
        return [
            self.name,
            self.type,
            self.target_kind,
            self.target_name,
            self.initiator,
            self.phase,
            self.rollback,
            self.created,
            self.started,
            self.finished,
            self.duration(),
            self.message,
            "true" if self.dry_run else "false",
            _figure(self.predicted_downtime_seconds),
            _figure(self.downtime_budget_seconds),
            _figure(self.downtime_seconds),
            self.approved_by,
        ]


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


parse = parse_time


def week_of(moment: datetime | date) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str) -> datetime:
    """Monday 00:00 UTC of an ISO week written 2026-W47."""
    try:
        year, number = week.split("-W")
        return datetime.fromisocalendar(int(year), int(number), 1).replace(tzinfo=UTC)
    except ValueError as error:
        raise ValueError(f"{week!r} is not an ISO week such as 2026-W47") from error


def weeks_between(first: str, last: str) -> list[str]:
    """Every week from `first` to `last`, both included."""
    weeks, moment = [], week_start(first)
    end = week_start(last)
    while moment <= end:
        weeks.append(week_of(moment))
        moment += timedelta(days=7)
    return weeks


# A ConfigMap holds at most 1 MiB: a week's report is cut into parts of at most this much CSV
# (about 2,500 operations each). One ConfigMap for a busy namespace's week failed to write past
# about 5,000 operations, and every archive of that week was retried behind it.
PART_BYTES = 512 * 1024
PARTS = REPORT_PARTS
DIGEST = REPORT_DIGEST


def csv_digest(text: str) -> str:
    """What a reader compares with DIGEST: a part changed by anyone but Bosun no longer matches."""
    return hashlib.sha256(text.encode()).hexdigest()


def render_csv(records: Iterable[OperationRecord]) -> str:
    """The report: one row per operation, oldest first; the same records give the same bytes."""
    return render_parts(records, part_bytes=None)[0]


def render_parts(records: Iterable[OperationRecord], part_bytes: int | None = PART_BYTES) -> list[str]:
    """The report as CSV parts, oldest rows first: each whole rows under its own header line, each
    at most `part_bytes` (a part holds one row at least), and the same records give the same parts."""
    unique = {r.uid or f"{r.namespace}/{r.name}": r for r in records}
    ordered = sorted(unique.values(), key=lambda r: (r.created, r.name, r.uid))
    header = _csv_line(COLUMNS)
    parts, current, size = [], [header], len(header.encode())
    for record in ordered:
        line = _csv_line(record.row())
        if part_bytes is not None and len(current) > 1 and size + len(line.encode()) > part_bytes:
            parts.append("".join(current))
            current, size = [header], len(header.encode())
        current.append(line)
        size += len(line.encode())
    parts.append("".join(current))
    return parts


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def report_name(week: str, part: int = 1) -> str:
    """The ConfigMap holding part `part` of a namespace's report for a week: bosun-activity-2026-w47,
    then bosun-activity-2026-w47-2 and on (the first part says how many there are)."""
    return f"bosun-activity-{week.lower()}" + (f"-{part}" if part > 1 else "")
