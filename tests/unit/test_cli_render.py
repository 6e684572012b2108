"""What the CLI prints and how it exits, from Operation objects alone."""

from __future__ import annotations

from typing import Any

import pytest

from bosun.cli.main import parser
from bosun.cli.render import exit_code, progress_bar, step_table


def steps(*states: str) -> list[dict[str, Any]]:
    return [{"name": f"s{n}", "state": state} for n, state in enumerate(states, start=1)]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ({"phase": "Running"}, None),
        ({"phase": "Succeeded"}, 0),
        ({"phase": "Failed", "rollback": {"state": "Succeeded"}}, 3),
        ({"phase": "Cancelled", "rollback": {"state": "Succeeded"}}, 3),
        ({"phase": "Failed", "rollback": {"state": "NotNeeded"}}, 3),
        ({"phase": "Failed", "rollback": {"state": "Failed"}}, 4),
    ],
)
def test_exit_codes_tell_the_outcomes_apart(status: dict[str, Any], code: int | None) -> None:
    assert exit_code(status) == code


def test_progress_bar_counts_done_steps_and_names_the_current_one() -> None:
    status = {"phase": "Running", "steps": steps("Succeeded", "Skipped", "Running", "Pending")}
    assert progress_bar(status, width=8) == "[####----] 2/4 s3 Running (Running)"
    assert progress_bar({"phase": "Succeeded", "steps": steps("Succeeded", "Succeeded")}, width=4) == (
        "[####] 2/2 (Succeeded)"
    )


def test_step_table_shows_timings_and_what_was_not_undone() -> None:
    operation = {
        "metadata": {"name": "web-deploy"},
        "spec": {"type": "deploy", "target": {"kind": "App", "name": "web"}},
        "status": {
            "phase": "Failed",
            "progress": "1/2",
            "reason": "PodsFailing",
            "message": "pods failing",
            "startedAt": "2026-11-23T10:00:00Z",
            "finishedAt": "2026-11-23T10:00:12Z",
            "steps": [
                {
                    "name": "migrate",
                    "state": "NotUndone",
                    "startedAt": "2026-11-23T10:00:00Z",
                    "finishedAt": "2026-11-23T10:00:02.5Z",
                    "attempts": 1,
                },
                {"name": "roll-out", "state": "Failed", "attempts": 2, "message": "pods failing"},
            ],
            "rollback": {
                "state": "Failed",
                "message": "1 step not undone",
                "notUndone": [{"step": "migrate", "reason": "a migration cannot be undone"}],
            },
        },
    }
    text = step_table(operation)
    assert "Operation: web-deploy (deploy of App web)" in text
    assert "Phase:     Failed 1/2" in text
    lines = text.splitlines()
    migrate = next(line for line in lines if " migrate " in line)
    assert "NotUndone" in migrate and "2.5s" in migrate
    assert "not undone: migrate: a migration cannot be undone" in text
    assert "Took:      12.0s" in text


def test_activity_refuses_a_week_that_is_not_an_iso_week(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["activity", "--week", "week 47"])
    assert exited.value.code == 2
    assert "not an ISO week such as 2026-W47" in capsys.readouterr().err
