"""Each invariant the fault harness checks, shown to fail on a violation injected on purpose: a
check that cannot fail proves nothing. (The ones that read the cluster are shown failing in
tests/cluster/test_fault_invariants.py.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bosun.models.names import EDIT_PART, TARGET_GENERATION
from tests.faults import invariants as check
from tests.support.endpoints import BLIND_SAMPLES, Sampler


def op(name: str, phase: str = "Succeeded", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": status.pop("annotations", {})},
        "spec": {"target": {"kind": "App", "name": "web"}, "type": "deploy"},
        "status": {"phase": phase, **status},
    }


def test_an_outcome_without_reason_rollback_or_named_leftovers_is_a_violation() -> None:
    refused = op("a", "Failed", reason="Refused", message="no", rollback={"state": "NotNeeded"})
    assert check.outcomes([op("ok"), refused]) == []
    assert "without a reason and message" in check.outcomes([op("b", "Failed", rollback={"state": "NotNeeded"})])[0]
    assert "no rollback recorded" in check.outcomes([op("c", "Failed", reason="X", message="y")])[0]
    silent = op("d", "Failed", reason="X", message="y", rollback={"state": "Failed"})
    assert "without naming what was not undone" in check.outcomes([silent])[0]
    stuck = op("e", "Failed", reason="X", message="y", rollback={"state": "Running"})
    assert "rollback ended Running" in check.outcomes([stuck])[0]


def test_two_operations_on_one_target_at_once_are_a_violation() -> None:
    first = op("a", startedAt="2026-01-01T00:00:00Z", finishedAt="2026-01-01T00:00:10Z")
    after = op("b", startedAt="2026-01-01T00:00:10Z", finishedAt="2026-01-01T00:00:20Z")
    inside = op("c", startedAt="2026-01-01T00:00:05Z", finishedAt="2026-01-01T00:00:06Z")
    assert check.one_at_a_time([first, after]) == []
    assert "acted on App/web at once" in check.one_at_a_time([first, inside])[0]


def test_one_edit_carried_out_twice_is_a_violation() -> None:
    marks = {TARGET_GENERATION: "3", EDIT_PART: "1/1"}
    assert check.no_duplicate_operations([op("a", annotations=dict(marks))]) == []
    twice = check.no_duplicate_operations([op("a", annotations=dict(marks)), op("b", annotations=dict(marks))])
    assert "a and b both carry out" in twice[0]


def test_a_log_the_store_lacks_lines_of_is_a_violation(tmp_path: Path) -> None:
    stored = tmp_path / "log"
    stored.write_text("one\ntwo\n")
    whole = op("a", log={"url": f"file://{stored}", "lines": ["one", "two"], "total": 2})
    assert check.logs_whole([whole]) == []
    lost = op("b", log={"url": f"file://{stored}", "lines": ["two", "three"], "total": 2})
    assert "not in the store" in check.logs_whole([lost])[0]
    short = op("c", log={"url": f"file://{stored}", "lines": ["two"], "total": 5})
    assert "status counted 5" in check.logs_whole([short])[0]


def test_the_sampled_invariants_fail_on_a_violation_and_on_no_samples_at_all() -> None:
    assert check.never_double_attached([{"a"}, set(), {"b"}]) == []
    assert "attached to 2 nodes" in check.never_double_attached([{"a"}, {"a", "b"}])[0]
    assert "never sampled" in check.never_double_attached([])[0]
    assert check.never_below([2, 2, 3], 2, "web") == []
    assert "fell to 1" in check.never_below([2, 1, 2], 2, "web")[0]
    assert "never sampled" in check.never_below([], 2, "web")[0]


def test_a_sampler_whose_probe_fails_goes_on_and_says_how_blind_it_was() -> None:
    answers = iter([1, 2] + [None] * (BLIND_SAMPLES + 2))

    def flaky() -> int:
        answer = next(answers, 3)
        if answer is None:
            raise ConnectionError("API server unreachable")
        return answer

    with Sampler(flaky) as sampler:
        deadline = time.monotonic() + 10
        while 3 not in sampler.samples and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sampler.samples[:2] == [1, 2] and 3 in sampler.samples  # it kept sampling after the failures
    (said,) = sampler.problems("endpoints")
    assert f"{BLIND_SAMPLES + 2} probes in a row failed" in said and "API server unreachable" in said
    with Sampler(lambda: 1) as healthy:
        time.sleep(0.2)
    assert healthy.problems("endpoints") == []


def test_a_downtime_counts_each_sample_for_as_long_as_it_held() -> None:
    sampler = Sampler(lambda: 0)
    sampler.samples, sampler.taken_at = [1, 0, 0, 1, 0], [0.0, 0.05, 0.4, 1.0, 1.05]
    assert sampler.seconds_where(lambda ready: ready == 0) == pytest.approx(0.95)  # 0.35 + 0.6, not 3 x 50 ms
