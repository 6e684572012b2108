"""Dry runs: the steps' own checks in order, refusals in their words, timings only from real history."""

from __future__ import annotations

from typing import Any

from bosun.engine.dryrun import downtime_of, estimate, examine, past_runs, verdict
from bosun.engine.steps import PermanentError, Skipped, Step, StepTable, irreversible, no_side_effect
from bosun.models.operation import Operation, Phase


class Ctx:
    def __init__(self) -> None:
        self.ran: list[str] = []


async def fits(ctx: Ctx) -> str:
    ctx.ran.append("check")
    return "node-b is Ready and has room"


async def cross_zone(ctx: Ctx) -> str:
    raise PermanentError("move refused before any downtime: node-c is in zone b", "MoveRefused")


async def change(ctx: Ctx) -> str:
    ctx.ran.append("run")  # a dry run must never get here
    return "changed"


async def nothing_to_migrate(ctx: Ctx) -> str:
    return Skipped("no beforeRelease command: nothing would run")


TABLE: StepTable[Ctx] = StepTable(
    "move",
    [
        no_side_effect("check-target", "check the target", fits, check=fits),
        irreversible("migrate", "run the migration", change, "a migration stays", check=nothing_to_migrate),
        Step("stop-old", "stop the old pod", change, change),
        Step("start", "start the new pod", change, change),
    ],
    downtime_steps=("stop-old", "start"),
)


def run(name: str, finished: str, seconds: list[float], *, phase: str = "Succeeded", **spec: Any) -> Operation:
    steps = [
        {
            "name": step.name,
            "state": "Succeeded",
            "startedAt": "2026-11-20T10:00:00Z",
            "finishedAt": f"2026-11-20T10:00:{took:04.1f}Z",
            "message": "",
        }
        for step, took in zip(TABLE.steps, seconds, strict=True)
    ]
    return Operation.of(
        {
            "metadata": {"name": name, "namespace": "ns", "uid": name},
            "spec": {"target": {"kind": "Database", "name": "pg"}, "type": "redeploy", **spec},
            "status": {
                "phase": phase,
                "steps": steps,
                "startedAt": "2026-11-20T10:00:00Z",
                "finishedAt": finished,
            },
        }
    )


async def test_checks_run_in_order_and_no_run_is_ever_called() -> None:
    ctx = Ctx()
    report = await examine(TABLE, ctx, "move pg from a to b", [])
    assert ctx.ran == ["check"]
    assert [s.name for s in report.steps] == ["check-target", "migrate", "stop-old", "start"]
    assert report.steps[0].checked == "node-b is Ready and has room"
    assert report.steps[2].checked == "" and report.steps[2].description == "stop the old pod"
    assert report.irreversible == []  # the migration would be skipped: nothing stays changed
    assert all(s.expected.runs == 0 for s in report.steps) and report.expected_seconds.runs == 0
    assert "no history" in report.downtime
    assert verdict(report)[0] is Phase.SUCCEEDED


async def test_a_refusal_is_reported_in_the_real_run_s_words() -> None:
    refusing = StepTable("move", [no_side_effect("check-target", "check", cross_zone, check=cross_zone)])
    report = await examine(refusing, Ctx(), "", [])
    assert report.refusals == ["move refused before any downtime: node-c is in zone b"]
    phase, reason, message = verdict(report)
    assert phase is Phase.FAILED and reason == "WouldBeRefused" and "node-c is in zone b" in message


async def test_timings_come_from_succeeded_real_runs_of_the_same_table_only() -> None:
    history = [
        run("m1", "2026-11-20T10:01:00Z", [1.0, 0.0, 2.0, 4.0]),
        run("m2", "2026-11-20T10:02:00Z", [3.0, 0.0, 2.0, 6.0]),
        run("m3", "2026-11-20T10:03:00Z", [2.0, 0.0, 1.0, 5.0]),
        run("failed", "2026-11-20T10:04:00Z", [9.0, 9.0, 9.0, 9.0], phase="Failed"),
        run("dry", "2026-11-20T10:05:00Z", [9.0, 9.0, 9.0, 9.0], dryRun=True),
    ]
    assert [o.name for o in past_runs(TABLE, history)] == ["m3", "m2", "m1"]
    report = await examine(TABLE, Ctx(), "", history)
    first = report.steps[0].expected
    assert (first.runs, first.median_seconds, first.worst_seconds) == (3, 2.0, 3.0)
    assert (first.best_seconds, first.confidence) == (1.0, "low")
    assert report.expected_downtime is not None
    assert (report.expected_downtime.median_seconds, report.expected_downtime.worst_seconds) == (6.0, 8.0)
    assert "about 6.0s" in report.downtime


def test_a_recorded_downtime_wins_over_the_steps_durations() -> None:
    moved = run("m", "2026-11-20T10:01:00Z", [1.0, 0.0, 2.0, 4.0])
    moved.status.steps[-1].message = "database Ready on b; downtime 2.9s (stop, detach, attach, start)"
    assert downtime_of(moved, TABLE) == 2.9
    assert estimate([]).runs == 0 and estimate([1, 2, 10]).median_seconds == 2


def test_a_prediction_says_how_sure_it_is() -> None:
    from bosun.engine.dryrun import estimate, estimate_words

    few = estimate([4.0, 9.0, 3.5])
    assert estimate_words(few) == "about 4.0s, low confidence: 3 runs (3.5-9.0s)"
    assert estimate_words(estimate([2.0])) == "about 2.0s, low confidence: 1 run (2.0-2.0s)"
    many = estimate([4.0, 9.0, 3.5, 4.2, 10.0, 3.9])
    assert many.confidence == "high"
    assert estimate_words(many) == "about 4.1s (median of the last 6 runs, 3.5-10.0s)"
