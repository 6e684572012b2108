"""Database move downtime: Bosun's redeploy against the naive move, with simulated image pulls.

    .venv/bin/python -m benchmarks moves [--runs 5] [--pull-seconds 20]

Side by side in one run, on fresh nodes of the zone `pulls` (tests/support/image_pulls.py: a pod's
containers start only once its volume is attached and its image is on the node; the first start
of an image on a node pays `--pull-seconds`; a stopping pod takes 1 s):

- **Bosun**: a Database `pg`, moved by `redeploy` to a node that has never run its image;
- **naive**: the same pod, claim and Service made by hand, moved as a user would without an
  operator: `kubectl delete pod` (which waits until it is gone), then the pod again on the new node.

For each move a thread samples every 50 ms the Service's ready endpoints (the client's view), the
pods and the VolumeAttachments. Downtime is the time with no ready endpoint. The floor is what no
tool can avoid, measured in the same move: the pod's stop, the attach/detach controller's detach,
the attacher's attach of the new node, and the container's start with the image present.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support.bosun_objects import Bosun
from tests.support.databases import database_manifest, move, provision
from tests.support.image_pulls import ImagePulls
from tests.support.waiting import wait_for

from benchmarks.common import Environment, Report, median, pyplot
from bosun.models.database import DatabaseSpec
from bosun.workloads import database as build


@dataclass
class Sample:
    at: float
    ready: int
    pods: dict[str, bool]  # name -> being deleted
    attached: dict[str, bool]  # node -> attached


@dataclass
class Timeline:
    """Samples of one Service, its pods and its volume's attachments, every 50 ms, in a thread."""

    api: client.ApiClient
    namespace: str
    service: str
    volume: str
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        discovery, core = client.DiscoveryV1Api(self.api), client.CoreV1Api(self.api)
        storage = client.StorageV1Api(self.api)
        while not self._stop.is_set():
            at = time.monotonic()
            slices = discovery.list_namespaced_endpoint_slice(
                self.namespace, label_selector=f"kubernetes.io/service-name={self.service}"
            ).items
            ready = sum(1 for s in slices for e in s.endpoints or [] if e.conditions and e.conditions.ready)
            pods = {
                p.metadata.name: p.metadata.deletion_timestamp is not None
                for p in core.list_namespaced_pod(self.namespace).items
            }
            attached = {
                a.spec.node_name: bool(a.status and a.status.attached)
                for a in storage.list_volume_attachment().items
                if a.spec.source.persistent_volume_name == self.volume
            }
            self.samples.append(Sample(at, ready, pods, attached))
            time.sleep(max(0.0, 0.05 - (time.monotonic() - at)))

    def __enter__(self) -> Timeline:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def first(self, test: Any, after: float = 0.0) -> float:
        return next((s.at for s in self.samples if s.at >= after and test(s)), float("nan"))

    def phases(self, old_pod: str, old_node: str, new_node: str) -> dict[str, float]:
        """When the outage began and ended, and the parts of it, from the samples."""
        down = self.first(lambda s: s.ready == 0)
        up = self.first(lambda s: s.ready > 0, after=down)
        stopping = self.first(lambda s: s.pods.get(old_pod, False))
        gone = self.first(lambda s: old_pod not in s.pods, after=stopping)
        detached = self.first(lambda s: old_node not in s.attached, after=gone)
        asked = self.first(lambda s: new_node in s.attached, after=detached)
        attached = self.first(lambda s: s.attached.get(new_node, False), after=asked)
        return {
            "downtime": up - down,
            "until_stop": stopping - down,
            "stop": gone - stopping,
            "detach": detached - gone,
            "attach": attached - detached,
            "attacher": attached - asked,
            "start": up - attached,
        }


def floor(phases: dict[str, float], start_seconds: float) -> float:
    """What no tool avoids: the stop, the detach, the attacher's part of the attach, the start."""
    return phases["stop"] + phases["detach"] + phases["attacher"] + start_seconds


def volume_of(core: client.CoreV1Api, namespace: str, claim: str) -> str:
    volume = wait_for(
        lambda: core.read_namespaced_persistent_volume_claim(claim, namespace).spec.volume_name,
        what=f"claim {claim} to be bound",
    )
    return str(volume)


def bosun_moves(env: Environment, bosun: Bosun, nodes: list[str], start_seconds: float) -> list[dict[str, Any]]:
    manifest = database_manifest(placement={"node": nodes[0]})
    first = provision(bosun, manifest)
    if first["phase"] != "Succeeded":
        raise RuntimeError(f"provision ended {first['phase']}: {first.get('message')}")
    volume = volume_of(env.core, bosun.namespace, build.claim_name("pg"))
    runs = []
    for n, (old, new) in enumerate(itertools.pairwise(nodes)):
        old_pod = next(p.metadata.name for p in env.core.list_namespaced_pod(bosun.namespace).items)
        with Timeline(env.api, bosun.namespace, "pg", volume) as timeline:
            status = move(bosun, f"move-{n}", new)
        if status["phase"] != "Succeeded":
            raise RuntimeError(f"move {n} ended {status['phase']}: {status.get('message')}")
        phases = timeline.phases(old_pod, old, new)
        recorded = bosun.get("databases", "pg")["status"]["lastMoveDowntimeSeconds"]
        steps = {s["name"]: _took(s) for s in status["steps"]}
        runs.append({**phases, "floor": floor(phases, start_seconds), "recorded": recorded, "steps": steps})
    return runs


def naive_moves(env: Environment, namespace: str, nodes: list[str], start_seconds: float) -> list[dict[str, Any]]:
    """The pod, claim, Service and Secret Bosun would make, with no operator; moved by hand."""
    spec = DatabaseSpec.model_validate(database_manifest()["spec"])
    core = env.core
    core.create_namespaced_secret(namespace, {"metadata": {"name": build.secret_name("pg")}, "data": {}})
    core.create_namespaced_persistent_volume_claim(namespace, build.claim("pg", spec))
    service = build.service("pg", "none", spec)
    service["metadata"].pop("ownerReferences", None)
    core.create_namespaced_service(namespace, service)

    def pod(name: str, node: str) -> dict[str, Any]:
        manifest = build.pod("pg", "none", spec, name, node)
        manifest["metadata"].pop("ownerReferences", None)
        return manifest

    core.create_namespaced_pod(namespace, pod("pg-0", nodes[0]))
    wait_for(lambda: _ready(core, namespace, "pg-0"), timeout=180, what="the naive database pod to be Ready")
    volume = volume_of(core, namespace, build.claim_name("pg"))
    runs = []
    for n, (old, new) in enumerate(itertools.pairwise(nodes)):
        old_pod, new_pod = f"pg-{n}", f"pg-{n + 1}"
        with Timeline(env.api, namespace, "pg", volume) as timeline:
            core.delete_namespaced_pod(old_pod, namespace)  # `kubectl delete pod` waits until it is gone
            wait_for(lambda p=old_pod: p not in _names(core, namespace), timeout=120, interval=0.05, what="stop")
            core.create_namespaced_pod(namespace, pod(new_pod, new))
            wait_for(lambda p=new_pod: _ready(core, namespace, p), timeout=180, interval=0.05, what="start")
            time.sleep(0.2)  # the endpoint follows the pod
        phases = timeline.phases(old_pod, old, new)
        runs.append({**phases, "floor": floor(phases, start_seconds)})
    return runs


def _names(core: client.CoreV1Api, namespace: str) -> set[str]:
    return {p.metadata.name for p in core.list_namespaced_pod(namespace).items}


def _ready(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        pod = core.read_namespaced_pod(name, namespace)
    except client.ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _took(step: dict[str, Any]) -> float:
    from benchmarks.common import seconds_between

    if not step.get("startedAt") or not step.get("finishedAt"):
        return float("nan")
    return seconds_between(step["startedAt"], step["finishedAt"])


def run(env: Environment, out: Path, runs: int = 5, pull_seconds: float = 20.0, start_seconds: float = 1.0) -> Report:
    report = Report("moves", "Database move downtime: Bosun against the naive move", out)
    with ImagePulls(env.api, pull_seconds=pull_seconds, start_seconds=start_seconds) as pulls:
        nodes = pulls.add_nodes(2 * (runs + 1))
        try:
            with env.operator(), env.namespace("bench-bosun") as bosun, env.namespace("bench-naive") as naive:
                ours = bosun_moves(env, bosun, nodes[: runs + 1], start_seconds)
                theirs = naive_moves(env, naive.namespace, nodes[runs + 1 :], start_seconds)
        finally:
            pulls.remove_nodes()
    summary = {
        "bosun_median": median([r["downtime"] for r in ours]),
        "bosun_worst": max(r["downtime"] for r in ours),
        "bosun_recorded_median": median([r["recorded"] for r in ours]),
        "naive_median": median([r["downtime"] for r in theirs]),
        "naive_worst": max(r["downtime"] for r in theirs),
        "floor_median": median([r["floor"] for r in ours + theirs]),
    }
    summary["ratio"] = summary["naive_median"] / summary["bosun_median"]
    summary["bosun_above_floor"] = median([r["downtime"] - r["floor"] for r in ours])
    report.data = {
        "runs": runs,
        "pull_seconds": pull_seconds,
        "start_seconds": start_seconds,
        "summary": summary,
        "bosun": ours,
        "naive": theirs,
    }
    report.say(
        f"{runs} moves each, to nodes that never ran the image; image pull {pull_seconds:g} s, container start "
        f"{start_seconds:g} s, stop 1 s. Downtime: no ready endpoint in the Service (sampled every 50 ms)."
    )
    report.table(
        ["", "downtime median (s)", "worst (s)", "floor median (s)", "above the floor (s)", "status says (s)"],
        [
            ["Bosun redeploy", summary["bosun_median"], summary["bosun_worst"], median([r["floor"] for r in ours]),
             summary["bosun_above_floor"], summary["bosun_recorded_median"]],
            ["naive (delete, recreate)", summary["naive_median"], summary["naive_worst"],
             median([r["floor"] for r in theirs]), median([r["downtime"] - r["floor"] for r in theirs]), "n/a"],
        ],
    )  # fmt: skip
    report.say(f"**The naive move is down {summary['ratio']:.1f} times longer than Bosun's.**")
    parts = ["until_stop", "stop", "detach", "attach", "start"]
    report.table(
        ["median of (s)", *parts],
        [["Bosun", *[median([r[p] for r in ours]) for p in parts]],
         ["naive", *[median([r[p] for r in theirs]) for p in parts]]],
    )  # fmt: skip
    steps = sorted({s for r in ours for s in r["steps"]}, key=list(ours[0]["steps"]).index)
    report.table(["Bosun step", "median (s)"], [[s, median([r["steps"][s] for r in ours])] for s in steps])
    report.plot(_figure(ours, theirs, parts))
    return report


def _figure(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], parts: list[str]) -> Any:
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    runs = range(1, len(ours) + 1)
    left.plot(runs, [r["downtime"] for r in theirs], "o-", label="naive move")
    left.plot(runs, [r["downtime"] for r in ours], "o-", label="Bosun redeploy")
    left.plot(runs, [r["floor"] for r in ours], "k--", label="floor (stop+detach+attach+start)")
    left.set(xlabel="move", ylabel="downtime (s)", title="Client-observed downtime per move", ylim=(0, None))
    left.legend()
    where_it_goes(right, ours, theirs, parts)
    return figure


def where_it_goes(axes: Any, ours: list[dict[str, Any]], theirs: list[dict[str, Any]], parts: list[str]) -> None:
    """Stacked bars: the median of each part of the downtime, Bosun's move above the naive one's."""
    bottom = [0.0, 0.0]
    for part in parts:
        values = [median([r[part] for r in ours]), median([r[part] for r in theirs])]
        axes.barh(["Bosun", "naive"], values, left=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set(xlabel="seconds (medians)", title="Where the downtime goes")
    axes.legend(loc="lower right", fontsize=8)


def main(env: Environment, argv: list[str], out: Path) -> Report:
    options = argparse.ArgumentParser(prog="benchmarks moves", description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=5)
    options.add_argument("--pull-seconds", type=float, default=20.0)
    args = options.parse_args(argv)
    return run(env, out, runs=args.runs, pull_seconds=args.pull_seconds)
