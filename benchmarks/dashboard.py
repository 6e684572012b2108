"""The dashboard's page times with many operations in a namespace.

    .venv/bin/python -m benchmarks dashboard [--operations 1000] [--requests 20]

One namespace holds an App and `--operations` Operations of it (no operator runs: they stay
Pending, which changes nothing the pages read). The dashboard (`kubectl bosun dashboard`, as the
cluster's admin) is started, each page is asked for once to warm its watches, then `--requests`
times; the figures are the server's answer times as a client on the same machine sees them. The
target: under 300 ms with 1,000 operations (issue #31), which the dashboard meets by serving from
its watches and paginating (25 operations a page), never by listing per request.
"""

from __future__ import annotations

import argparse
import time
import urllib.request
from pathlib import Path

from benchmarks.common import Environment, Report, percentile, pyplot
from bosun.cli import commands, dashboard
from bosun.models.names import GROUP, PLURALS, VERSION


def _operation(name: str) -> dict[str, object]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Operation",
        "metadata": {"name": name},
        "spec": {"target": {"kind": "App", "name": "web"}, "type": "restart"},
    }


def run(env: Environment, out: Path, operations: int = 1000, requests: int = 20) -> Report:
    report = Report("dashboard", "Dashboard page times", out)
    with env.namespace("bench-dash") as bosun:
        bosun.app("web")
        started = time.monotonic()
        for n in range(operations):
            bosun.custom.create_namespaced_custom_object(
                GROUP, VERSION, bosun.namespace, PLURALS["Operation"], _operation(f"web-op-{n:05d}")
            )
        created = time.monotonic() - started
        conn = commands.connect(str(env.cluster.kubeconfig), env.cluster.context, bosun.namespace, None)
        server = dashboard.serve(dashboard.Cluster(conn))
        base = f"http://127.0.0.1:{server.server_address[1]}"
        last_page = -(-operations // dashboard.PAGE_SIZE)
        pages = {
            "namespace": f"/ns/{bosun.namespace}",
            "Activity tab, newest": f"/ns/{bosun.namespace}/apps/web",
            "Activity tab, oldest page": f"/ns/{bosun.namespace}/apps/web?page={last_page}",
            "an operation": f"/ns/{bosun.namespace}/operations/web-op-00000",
        }
        times: dict[str, list[float]] = {}
        cold: dict[str, float] = {}
        try:
            for label, path in pages.items():
                began = time.monotonic()
                with urllib.request.urlopen(base + path, timeout=120) as answer:  # the first lists what it watches
                    answer.read()
                cold[label] = (time.monotonic() - began) * 1000
                times[label] = []
                for _ in range(requests):
                    began = time.monotonic()
                    with urllib.request.urlopen(base + path, timeout=60) as answer:
                        answer.read()
                    times[label].append((time.monotonic() - began) * 1000)
        finally:
            server.shutdown()
    report.data = {
        "operations": operations,
        "requests": requests,
        "created_seconds": round(created, 1),
        "pages": {
            label: {
                "p50_ms": round(percentile(t, 50), 1),
                "p99_ms": round(percentile(t, 99), 1),
                "max_ms": round(max(t), 1),
                "first_ms": round(cold[label], 1),
            }
            for label, t in times.items()
        },
    }
    report.say(
        f"One App and {operations} of its Operations in a namespace; each page asked for {requests} times after "
        "a first request, which starts the dashboard's watches (a namespace's first page lists its Apps, "
        "Databases and Operations once). Answer times as a client on the same machine sees them."
    )
    report.table(
        ["page", "first request (ms)", "then p50 (ms)", "p99 (ms)", "max (ms)"],
        [[label, f["first_ms"], f["p50_ms"], f["p99_ms"], f["max_ms"]] for label, f in report.data["pages"].items()],
    )
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 3))
    labels = list(times)
    axis.boxplot([times[k] for k in labels], orientation="horizontal", tick_labels=labels)
    axis.axvline(300, color="tab:red", linestyle="--", label="300 ms")
    axis.set(xlabel="ms", title=f"Dashboard page times, {operations} operations in the namespace")
    axis.legend(fontsize=8)
    report.plot(figure)
    return report


def main(env: Environment, argv: list[str], out: Path) -> Report:
    options = argparse.ArgumentParser(prog="benchmarks dashboard", description=__doc__.splitlines()[0])
    options.add_argument("--operations", type=int, default=1000)
    options.add_argument("--requests", type=int, default=20)
    args = options.parse_args(argv)
    return run(env, out, operations=args.operations, requests=args.requests)
