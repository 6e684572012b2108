"""A small burst: N Apps created at once, the time until every first deploy is done, and its rate.

    .venv/bin/python -m benchmarks burst [--apps 50] [--runs 3] [--checkout DIR --label NAME]

The issue size (`scale`) measures hundreds of objects; a team applying a Helm chart or an Argo CD
sync of a few dozen Apps meets this size, where start-up costs per operation (the first status
writes, the run-slot hand-out, the log's first flush) weigh more than steady throughput. Each run
gets a fresh namespace and a fresh operator, so runs do not share warm caches.

`--checkout DIR` runs another commit's operator (a `git worktree` of it) against the same cluster
and the same client, which is how "before" is measured; `--label` names the results file
(`burst-LABEL.json`). Every figure is measured from outside the operator; nothing is asserted.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.cluster import ROOT

from benchmarks.common import Environment, Report, median, pyplot
from benchmarks.scale import Usage, Watcher, add_nodes, app, cluster_pids, create_all, remove_nodes


def commit_of(checkout: Path) -> str:
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--", "operator"],
                           capture_output=True, text=True)  # fmt: skip
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def one_run(env: Environment, apps: int, checkout: Path) -> dict[str, Any]:
    with (
        env.namespace("bench-burst") as bosun,
        Watcher(env.api, bosun.namespace) as watcher,
        env.operator(checkout) as operator,
        Usage({**cluster_pids(env), "operator": operator.process.pid}) as usage,
    ):
        operator.wait_healthy(timeout=60)
        began = time.monotonic()
        names = [f"app-{n}" for n in range(apps)]
        create_all(bosun, [app(name) for name in names], "apps")
        created = time.monotonic()
        deadline = began + 120 + 4 * apps
        while time.monotonic() < deadline:
            with watcher.lock:
                seen = list(watcher.seen.values())
            if len(seen) >= apps and all(s.finished for s in seen):
                break
            time.sleep(0.2)
        else:
            raise TimeoutError(f"{sum(1 for s in seen if s.finished)} of {apps} deploys finished")
        done = sorted(s.finished - began for s in seen if s.finished)
        starts = sorted(s.first_running - s.created for s in seen if s.first_running)
        took = done[-1]
        return {
            "create_seconds": round(created - began, 2),
            "seconds": round(took, 2),
            "per_minute": round(60 * apps / took, 1),
            "failed": sum(1 for s in seen if s.phase != "Succeeded"),
            "first_step_p50": round(median(starts), 2),
            "half_done_seconds": round(done[len(done) // 2], 2),
            "operator_cpu": round(median(usage.between(began, began + took, "operator")), 2),
            "apiserver_cpu": round(median(usage.between(began, began + took, "kube-apiserver")), 2),
            "curve": [round(t, 2) for t in done],
        }


def run(env: Environment, out: Path, apps: int, runs: int, checkout: Path, label: str) -> Report:
    name = f"burst-{label}" if label else "burst"
    report = Report(name, f"A burst of {apps} Apps" + (f" ({label})" if label else ""), out)
    add_nodes(env.core, 5)
    try:
        results = [one_run(env, apps, checkout) for _ in range(runs)]
    finally:
        remove_nodes(env.core)
    report.data = {"apps": apps, "runs": results, "commit": commit_of(checkout), "label": label,
                   "median_seconds": median([r["seconds"] for r in results]),
                   "median_per_minute": median([r["per_minute"] for r in results])}  # fmt: skip
    report.say(
        f"{apps} Apps (1 replica, minReadySeconds 0) created at once on 5 fake nodes, operator of commit "
        f"`{report.data['commit']}`; a fresh namespace and operator per run. Done = the last first deploy "
        "Succeeded, as a client watching the Operations saw it. CPU is the median share of one core."
    )
    report.table(
        ["run", "created in (s)", "half done (s)", "all done (s)", "per minute", "created → first step p50 (s)",
         "failed", "operator CPU", "API server CPU"],
        [[i + 1, r["create_seconds"], r["half_done_seconds"], r["seconds"], r["per_minute"], r["first_step_p50"],
          r["failed"], r["operator_cpu"], r["apiserver_cpu"]] for i, r in enumerate(results)],
    )  # fmt: skip
    report.say(f"Median: all done in {report.data['median_seconds']} s, {report.data['median_per_minute']} per minute.")
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for i, r in enumerate(results):
        axes.plot(r["curve"], range(1, len(r["curve"]) + 1), label=f"run {i + 1}")
    axes.set(xlabel="seconds since the first App was created", ylabel="deploys done", title=report.title)
    axes.legend(fontsize=8)
    report.plot(figure)
    return report


def main(env: Environment, argv: list[str], out: Path) -> Report:
    options = argparse.ArgumentParser(prog="benchmarks burst", description=__doc__.splitlines()[0])
    options.add_argument("--apps", type=int, default=50)
    options.add_argument("--runs", type=int, default=3)
    options.add_argument("--checkout", type=Path, default=ROOT, help="whose operator runs (a worktree)")
    options.add_argument("--label", default="", help="names the results file: burst-LABEL")
    args = options.parse_args(argv)
    return run(env, out, args.apps, args.runs, args.checkout.resolve(), args.label)
