"""Dry runs: what an operation would do, found by the real planner and the steps' own read-only checks.

Why the real parts and not a model of them: a plan that a separate predictor makes drifts from what
the operation then does. A dry run calls the same planner (so a move names the node Bosun would
choose, or is refused with the same words) and each step's `check`, the read-only part of its
`run`; it never calls a `run`. Steps without a check are listed with what they do.

Expected durations come from this namespace's own history, never from a guess: the finished,
Succeeded, real (not dry-run) Operations still in the namespace whose steps are the same table's
steps (same names, same order), the newest `HISTORY_RUNS` of them. Each step gets the median and
the worst of its durations there; with no such run the report says "no history". Downtime is what
those runs measured: the `downtime N s` a step records in its message (a move's `start` does),
else the time spent in the table's downtime steps.
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bosun.engine.steps import PermanentError, Reversibility, Skipped, StepTable, TransientError
from bosun.models.base import parse_time
from bosun.models.operation import DryRunReport, Estimate, Operation, Phase, PlannedStep, StepStatus

HISTORY_RUNS = 10
CONFIDENT_RUNS = 5  # fewer runs than this: the range is shown, and called low confidence
RECORDED_DOWNTIME = re.compile(r"\bdowntime (\d+(?:\.\d+)?)s\b")


def estimate(values: Iterable[float]) -> Estimate:
    found = [round(v, 1) for v in values]
    if not found:
        return Estimate()
    return Estimate(
        runs=len(found),
        median_seconds=round(statistics.median(found), 1),
        best_seconds=min(found),
        worst_seconds=max(found),
        confidence="high" if len(found) >= CONFIDENT_RUNS else "low",
    )


def estimate_words(expected: Estimate) -> str:
    """`about 4.0s (median of 12 runs, 2.9-10.0s)`, or, from fewer than CONFIDENT_RUNS runs,
    `about 4.0s, low confidence: 3 runs (2.9-7.0s)`."""
    median, best, worst = (
        float(v or 0) for v in (expected.median_seconds, expected.best_seconds, expected.worst_seconds)
    )
    span = f"{best:.1f}-{worst:.1f}s"
    if expected.confidence == "high":
        return f"about {median:.1f}s (median of the last {expected.runs} runs, {span})"
    return f"about {median:.1f}s, low confidence: {expected.runs} run{'s' if expected.runs != 1 else ''} ({span})"


def past_runs(table: StepTable[Any], operations: Iterable[Operation]) -> list[Operation]:
    """The newest runs of this table in the namespace that succeeded (the ones worth timing)."""
    names = [s.name for s in table.steps]
    runs = [
        o
        for o in operations
        if not o.spec.dry_run
        and o.status.phase is Phase.SUCCEEDED
        and o.status.finished_at
        and [s.name for s in o.status.steps] == names
    ]
    runs.sort(key=lambda o: o.status.finished_at or "", reverse=True)
    return runs[:HISTORY_RUNS]


def _seconds(step: StepStatus) -> float | None:
    if not (step.started_at and step.finished_at):
        return None
    return (parse_time(step.finished_at) - parse_time(step.started_at)).total_seconds()


def total_of(operation: Operation) -> float | None:
    status = operation.status
    if not (status.started_at and status.finished_at):
        return None
    return (parse_time(status.finished_at) - parse_time(status.started_at)).total_seconds()


def downtime_of(operation: Operation, table: StepTable[Any]) -> float | None:
    """The downtime a finished run had: the figure a step recorded, else its downtime steps' time."""
    for step in operation.status.steps:
        recorded = RECORDED_DOWNTIME.search(step.message)
        if recorded:
            return float(recorded.group(1))
    spans = [_seconds(s) for s in operation.status.steps if s.name in table.downtime_steps]
    return sum(s for s in spans if s is not None) if spans and None not in spans else None


def downtime_so_far(steps: Iterable[StepStatus], downtime_steps: Iterable[str]) -> float | None:
    """The downtime an operation caused, also when it was rolled back part-way: the figure a step
    recorded, else the time from the first downtime step's start to the last one's end (or undo's
    end). None if no downtime step started."""
    names = set(downtime_steps)
    started: list[datetime] = []
    ended: list[datetime] = []
    for step in steps:
        recorded = RECORDED_DOWNTIME.search(step.message)
        if recorded:
            return float(recorded.group(1))
        if step.name in names and step.started_at:
            started.append(parse_time(step.started_at))
            ended.extend(parse_time(t) for t in (step.finished_at, step.undo_finished_at) if t)
    if not started or not ended:
        return None
    return float(round(max(0.0, (max(ended) - min(started)).total_seconds()), 1))


def _downtime_words(table: StepTable[Any], expected: Estimate | None) -> str:
    if not table.downtime_steps:
        return "none: this operation does not stop what serves"
    during = ", ".join(table.downtime_steps)
    if expected is None or not expected.runs:
        return f"during {during}; no history in this namespace to say how long"
    return f"{estimate_words(expected)}, during {during}"


async def examine(table: StepTable[Any], ctx: Any, summary: str, others: Iterable[Operation]) -> DryRunReport:
    """Every step's check, in order, and the namespace's history of this table."""
    history = past_runs(table, others)
    report = DryRunReport(plan=summary)
    for step in table.steps:
        planned = PlannedStep(name=step.name, description=step.description)
        durations = [_seconds(s) for run in history for s in run.status.steps if s.name == step.name]
        planned.expected = estimate(d for d in durations if d is not None)
        if step.reversibility is Reversibility.IRREVERSIBLE:
            planned.irreversible = step.irreversible_reason
        if step.check is not None:
            try:
                found = await asyncio.wait_for(step.check(ctx), timeout=step.timeout)
                planned.checked = str(found or "")
                if isinstance(found, Skipped):
                    planned.irreversible = ""  # the step would not run: nothing it does stays
            except PermanentError as refused:
                planned.refusal = str(refused)
                report.refusals.append(str(refused))
            except (TransientError, TimeoutError) as error:
                planned.checked = f"could not check now: {error or 'timed out'}"
        if planned.irreversible:
            report.irreversible.append(f"{step.name}: {planned.irreversible}")
        report.steps.append(planned)
    report.expected_seconds = estimate(t for t in (total_of(run) for run in history) if t is not None)
    if table.downtime_steps:
        report.expected_downtime = estimate(d for d in (downtime_of(run, table) for run in history) if d is not None)
    report.downtime = _downtime_words(table, report.expected_downtime)
    return report


def verdict(report: DryRunReport) -> tuple[Phase, str, str]:
    """The dry run's phase, reason and message: Failed when the real run would be refused."""
    if report.refusals:
        return Phase.FAILED, "WouldBeRefused", f"dry run: the real operation would be refused: {report.refusals[0]}"
    took = report.expected_seconds
    expected = estimate_words(took) if took.runs else "no history"
    return (
        Phase.SUCCEEDED,
        "DryRun",
        f"dry run: {len(report.steps)} steps would run; expected duration {expected}; downtime {report.downtime}; "
        "nothing was changed",
    )
