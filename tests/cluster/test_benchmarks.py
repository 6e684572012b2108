"""Every benchmark at a tiny size, so none can rot; the figures themselves are in benchmarks/results.

These check what each benchmark's design depends on (the image-pull simulation really slows a
first start, the audit log really counts requests), not how fast anything is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks import moves
from benchmarks.common import Environment, environment

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def env() -> Iterator[Environment]:
    with environment() as bench:
        yield bench


def test_the_moves_benchmark_compares_bosun_with_the_naive_move(env: Environment, tmp_path: Path) -> None:
    moves.run(env, tmp_path, runs=1, pull_seconds=4.0).write()
    result = json.loads((tmp_path / "moves.json").read_text())
    bosun, naive = result["bosun"][0], result["naive"][0]
    # The naive pod waited for its image on the new node; Bosun's had it pulled before the stop.
    assert naive["start"] >= 4.0, naive
    assert bosun["start"] < 4.0, bosun
    assert bosun["downtime"] < naive["downtime"]
    for run in (bosun, naive):
        assert run["stop"] >= 0.9 and run["floor"] > 0, run  # the simulated stop takes 1 s
    assert (tmp_path / "moves.png").stat().st_size > 0
    assert "| Bosun redeploy |" in (tmp_path / "moves.md").read_text()
