"""Every benchmark at a tiny size, so none can rot; the figures themselves are in benchmarks/results.

These check what each benchmark's design depends on (the image-pull simulation really slows a
first start, the audit log really counts requests), not how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from benchmarks import api_economy, app_deploy, burst, dashboard, moves, scale
from benchmarks.common import Environment, environment

from tests.support.cluster import ROOT

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


def test_the_api_benchmark_counts_the_operators_requests_from_the_audit_log(env: Environment, tmp_path: Path) -> None:
    api_economy.run(env, tmp_path, idle_seconds=3, min_ready=1).write()
    result = json.loads((tmp_path / "api.json").read_text())["operations"]
    move = result["Database move (Bosun chooses the node)"]
    # Every move creates the new pod and writes its status: the audit log saw the operator do it.
    assert move["by_kind"].get("create pods", 0) >= 2, move  # the puller and the new pod
    assert move["by_kind"].get("patch operations/status", 0) >= 8, move  # at least one save per step
    assert move["writes"] > 0 and 0 < move["ideal"] < move["requests"], move  # api_ideal.py's list, not Bosun's
    assert move["beyond_ideal"].get("create pods", 0) >= 0, move  # what Bosun made beyond it, by request
    # Every list and watch is classed by what it grows with. A database's provision and restart
    # read their pods by label or name; the move lists the nodes of the volume's zone (by label,
    # counted as the cluster's); an App's roll-out follows the namespace's shared watches.
    for label in ("Database provision", "Database restart"):
        grows = result[label]["lists_by_growth"]
        assert grows["namespace"] == 0 and grows["cluster"] == 0, (label, result[label]["growing_lists"])
    assert move["lists_by_growth"]["cluster"] <= 1 and move["lists_by_growth"]["namespace"] == 0, move
    assert result["App deploy (2 replicas)"]["lists_by_growth"]["namespace"] >= 1, result["App deploy (2 replicas)"]
    assert (
        result["App deploy (2 replicas)"]["by_kind"].get("create deployments", 0)
        + result["App deploy (2 replicas)"]["by_kind"].get("patch deployments", 0)
        >= 1
    )


def test_the_scale_benchmark_times_the_engine_and_the_footprint(env: Environment, tmp_path: Path) -> None:
    scale.run(env, tmp_path, nodes=2, apps=4, databases=1, in_flight=(1, 3), idle_seconds=3, restart_seconds=8).write()
    result = json.loads((tmp_path / "scale.json").read_text())
    assert result["throughput"]["operations"] == 5 and result["throughput"]["failed"] == 0, result
    for count in ("1", "3"):
        latency = result["latency"][count]
        assert latency["failed"] == 0 and 0 < latency["start_p50"] <= latency["start_p99"], latency
        assert latency["engine_transitions"] >= int(count), latency  # the operator's own histogram, scraped
        assert 0 < latency["engine_transition_p50_max"] <= latency["engine_transition_p99_max"], latency
        # where the time went: the API server's own time for each status write, the loop's lag, the machine
        assert latency["status_writes"] >= 2 * int(count), latency  # a start and an end at least
        assert 0 < latency["status_write_p50_max"] <= latency["status_write_p99_max"], latency
        assert latency["loop_lags"] >= 1 and latency["apiserver_requests_per_second"] > 0, latency
        assert 0 < latency["machine_cores_busy"] <= psutil.cpu_count(), latency
    assert result["idle"]["rss_mb_idle"] > 10 and result["startup"]["rss_mb"] > 10, result
    held = result["etcd"]  # what Bosun keeps in etcd, by kind
    assert held["apps"]["objects"] == 4 and held["databases"]["objects"] == 1, held
    assert held["operations"]["objects"] >= 9 and held["configmaps"].get("log copies", 0) > 0, held
    assert held["total_bytes"] == sum(held[k]["bytes"] for k in ("apps", "databases", "operations", "configmaps"))


def test_the_deploy_benchmark_samples_ready_endpoints_through_a_release(env: Environment, tmp_path: Path) -> None:
    app_deploy.run(env, tmp_path, replicas=3, min_ready=0).write()
    result = json.loads((tmp_path / "deploy.json").read_text())
    assert result["samples"] > 10 and result["most_ready"] >= 3, result
    assert result["fewest_ready"] == 3, result  # zero downtime: never below the replicas


def test_the_burst_benchmark_times_every_first_deploy_of_the_operator_it_was_given(
    env: Environment, tmp_path: Path
) -> None:
    burst.run(env, tmp_path, apps=3, runs=1, checkout=ROOT, label="sample").write()
    result = json.loads((tmp_path / "burst-sample.json").read_text())
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    assert result["commit"].startswith(head.stdout.strip()), result["commit"]  # whose operator ran is recorded
    (run,) = result["runs"]
    assert run["failed"] == 0 and len(run["curve"]) == 3, run
    assert 0 < run["half_done_seconds"] <= run["seconds"] == result["median_seconds"], run
    assert (tmp_path / "burst-sample.png").stat().st_size > 0


def test_the_dashboard_benchmark_times_each_page_with_the_namespace_full_of_operations(
    env: Environment, tmp_path: Path
) -> None:
    dashboard.run(env, tmp_path, operations=30, requests=2).write()
    result = json.loads((tmp_path / "dashboard.json").read_text())
    assert result["operations"] == 30 and len(result["pages"]) == 4, result
    for label, figures in result["pages"].items():
        assert 0 < figures["p50_ms"] <= figures["max_ms"], (label, figures)
