"""API economy: the requests Bosun makes per operation, counted from the API server's audit log.

    .venv/bin/python -m benchmarks api [--idle-seconds 20]

The local cluster's audit policy (hack/cluster.d/audit-policy.yaml) records every request of the
operator's ServiceAccount and nothing else. One namespace, one operation at a time: an App deploy
(2 replicas), a Database provision, a Database move (to a node Bosun chooses), a Database restart.
Each operation's window runs from its creation until it has finished and settled (its log archived,
its target's status written); the requests the idle operator makes anyway (measured alone first)
are reported apart.

What each operation should cost is `benchmarks/api_ideal.py`: the requests an ideal operator needs,
written down from what the operation must do, independently of what Bosun does. The ratio is
requests made over that; the table beside it says, request by request, what Bosun made beyond it
(and what it made fewer of).

Every list and watch is classed by what its answer grows with: one object (read by name), one
target (its labels), one node (its pods), the namespace, or the cluster. The operator's standing
watches (Kopf's, of every App, Database, Operation and the CRDs) are reopened every watch timeout
(60 s) from their last resource version, whatever runs: they carry only the changes since, and are
counted apart, told by the user agent the operator gives Kopf's requests and by their resource
version.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support.bosun_objects import Bosun
from tests.support.databases import database_manifest, ops_of, provision, run_op
from tests.support.waiting import wait_for

from benchmarks.api_ideal import IDEAL, ideal
from benchmarks.common import OPERATOR_USER, Environment, Report, pyplot
from bosun.models.names import API_VERSION, DATABASE_LABEL, INSTANCE_LABEL, KOPF_USER_AGENT, PREPULL_LABEL, TARGET_LABEL

WRITES = {"create", "update", "patch", "delete", "deletecollection"}
# Labels naming one App or Database (or one of its records): a selector on one of them is scoped to a target.
TARGET_LABELS = (INSTANCE_LABEL, DATABASE_LABEL, PREPULL_LABEL, TARGET_LABEL, "kubernetes.io/service-name")
SETTLE_SECONDS = 3.0


@dataclass
class Request:
    at: float  # epoch seconds
    verb: str
    resource: str
    name: str
    namespace: str
    query: dict[str, list[str]]
    user_agent: str = ""

    @property
    def grows_with(self) -> str:
        """What a list's or watch's answer grows with: one object (by name), one target (its
        labels), one node (its pods), the namespace, or the cluster. A selector is not enough to
        count as small: a label every Bosun pod carries grows with the namespace."""
        fields = " ".join(self.query.get("fieldSelector", []))
        labels = " ".join(self.query.get("labelSelector", []))
        if self.name or "metadata.name=" in fields:
            return "object"
        if "spec.nodeName=" in fields:
            return "node"
        if any(f"{key}=" in labels for key in TARGET_LABELS):
            return "target"
        return "namespace" if self.namespace else "cluster"

    @property
    def standing_watch_reopened(self) -> bool:
        """Kopf reopening one of its watches where the last one ended: only changes come back."""
        return self.verb == "watch" and KOPF_USER_AGENT in self.user_agent and "resourceVersion" in self.query


def read_audit(path: Path, since: float) -> list[Request]:
    found = []
    with path.open() as log:
        for line in log:
            event = json.loads(line)
            if event.get("user", {}).get("username") != OPERATOR_USER:
                continue
            at = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
            if at < since:
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            uri = urlparse(event["requestURI"])
            found.append(
                Request(
                    at,
                    event["verb"],
                    resource,
                    ref.get("name", ""),
                    ref.get("namespace", ""),
                    parse_qs(uri.query),
                    event.get("userAgent", ""),
                )
            )
    return found


@dataclass
class Window:
    label: str
    began: float
    ended: float

    def of(self, requests: list[Request]) -> list[Request]:
        return [r for r in requests if self.began <= r.at < self.ended]


def figures(requests: list[Request], idle_per_second: float, seconds: float, label: str = "") -> dict[str, Any]:
    writes = [r for r in requests if r.verb in WRITES]
    reads = [r for r in requests if r.verb not in WRITES]
    reopened = Counter(r.resource for r in reads if r.standing_watch_reopened)
    listed = [r for r in reads if r.verb in ("list", "watch") and not r.standing_watch_reopened]
    growth = Counter(r.grows_with for r in listed)
    by_kind = Counter(f"{r.verb} {r.resource}" for r in requests)
    needed: Counter[str] = Counter()
    for need in IDEAL.get(label, []):
        needed[need.request] += need.count
    beyond = {k: by_kind[k] - needed[k] for k in sorted(set(by_kind) | set(needed)) if by_kind[k] != needed[k]}
    minimum = ideal(label) if label in IDEAL else 0
    return {
        "requests": len(requests),
        "seconds": round(seconds, 1),
        "idle_share": round(idle_per_second * seconds, 1),
        "writes": len(writes),
        "reads": len(reads),
        "ideal": minimum,
        "ratio": round(len(requests) / minimum, 2) if minimum else float("nan"),
        "lists_by_growth": {g: growth[g] for g in GROWTH},
        "growing_lists": sorted(
            {f"{r.verb} {r.resource} ({r.grows_with})" for r in listed if r.grows_with in ("namespace", "cluster")}
        ),
        "standing_watches_reopened": dict(reopened),
        "beyond_ideal": beyond,
        "by_kind": dict(by_kind.most_common()),
    }


def finished_window(bosun: Bosun, label: str, began: float, operation: str) -> Window:
    status = bosun.wait_phase(operation, timeout=300)
    if status["phase"] != "Succeeded":
        raise RuntimeError(f"{label} ended {status['phase']}: {status.get('message')}")
    time.sleep(SETTLE_SECONDS)  # archive and target status follow the end
    return Window(label, began, time.time())


def run(env: Environment, out: Path, idle_seconds: float = 20.0, min_ready: int = 5) -> Report:
    report = Report("api", "API requests per operation (audit log)", out)
    if not env.audit_log.exists():
        raise RuntimeError(f"no audit log at {env.audit_log}: restart the cluster (hack/cluster down; hack/cluster up)")
    windows: list[Window] = []
    with env.operator(), env.namespace("bench-api") as bosun:
        time.sleep(3)  # start-up: the initial lists and watches
        idle = Window("idle", time.time(), time.time() + idle_seconds)
        time.sleep(idle_seconds)
        began = time.time()
        bosun.apply(
            {
                "apiVersion": API_VERSION,
                "kind": "App",
                "metadata": {"name": "web"},
                "spec": {
                    "image": "example.com/web:1",
                    "processes": [{"name": "web", "replicas": 2, "ports": [{"port": 8080}]}],
                },
            }
        )
        deploy = wait_for(lambda: ops_of(bosun, "web", "deploy"), what="the App's deploy")[-1]
        windows.append(finished_window(bosun, "App deploy (2 replicas)", began, deploy))
        began = time.time()
        first = provision(bosun, database_manifest(minReadySeconds=min_ready))
        if first["phase"] != "Succeeded":
            raise RuntimeError(f"provision ended {first['phase']}")
        windows.append(finished_window(bosun, "Database provision", began, ops_of(bosun, "pg", "provision")[-1]))
        for label, name, type_, parameters in (
            ("Database move (Bosun chooses the node)", "move", "redeploy", {}),
            ("Database restart", "restart", "restart", {}),
        ):
            began = time.time()
            run_op(bosun, name, type_, **parameters)
            windows.append(finished_window(bosun, label, began, name))
    requests = read_audit(env.audit_log, idle.began)
    idle_requests = idle.of(requests)
    idle_rate = len(idle_requests) / idle_seconds
    results = {w.label: figures(w.of(requests), idle_rate, w.ended - w.began, w.label) for w in windows}
    results["idle"] = figures(idle_requests, idle_rate, idle_seconds)
    report.data = {"idle_requests_per_second": round(idle_rate, 2), "operations": results}
    report.say(
        f"Idle operator: {idle_rate:.2f} requests/s ({len(idle_requests)} in {idle_seconds:g} s: "
        + (", ".join(f"{k} {v}" for k, v in results["idle"]["by_kind"].items()) or "none")
        + "). Each operation's window includes its share of that."
    )
    report.table(
        ["operation", "requests", "writes", "reads", "ideal", "ratio", "lists and watches by what they grow with",
         "standing watches reopened", "window (s)"],
        [
            [label, r["requests"], r["writes"], r["reads"], r["ideal"], r["ratio"],
             _counts({k: v for k, v in r["lists_by_growth"].items() if v}), _counts(r["standing_watches_reopened"]),
             r["seconds"]]
            for label, r in results.items() if label != "idle"
        ],
    )  # fmt: skip
    for label, r in results.items():
        if label != "idle":
            beyond = _counts({k: f"{v:+d}" for k, v in r["beyond_ideal"].items()})
            growing = ", ".join(r["growing_lists"]) or "none"
            report.say(f"- {label}: beyond the ideal: {beyond}; lists or watches that grow with the namespace "
                       f"or the cluster: {growing}")  # fmt: skip
    report.plot(_figure({k: v for k, v in results.items() if k != "idle"}))
    return report


GROWTH = ("object", "target", "node", "namespace", "cluster")


def _counts(counted: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counted.items()) or "none"


def _figure(results: dict[str, dict[str, Any]]) -> Any:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.5))
    labels = list(results)
    axis.barh(labels, [results[k]["requests"] for k in labels], label="requests made", color="tab:orange")
    axis.barh(labels, [results[k]["ideal"] for k in labels], label="an ideal operator (benchmarks/api_ideal.py)")
    axis.set(xlabel="API requests", title="API requests per operation")
    axis.invert_yaxis()
    axis.legend(loc="lower right", fontsize=8)
    return figure


def main(env: Environment, argv: list[str], out: Path) -> Report:
    options = argparse.ArgumentParser(prog="benchmarks api", description=__doc__.splitlines()[0])
    options.add_argument("--idle-seconds", type=float, default=20.0)
    args = options.parse_args(argv)
    return run(env, out, idle_seconds=args.idle_seconds)
