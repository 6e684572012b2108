"""Database move downtime on real nodes: a real PostgreSQL, a real pull, a volume that really moves.

    .venv/bin/python -m benchmarks real-move [--moves 10] [--killed 2] [--naive 3] [--pull-seconds 20]
                                             [--node-status-seconds 10]

The KWOK benchmark (`moves`) proves the order of Bosun's steps on simulated nodes; this one says
what a user will see. On the two real nodes of `hack/real-nodes` (a real kubelet, containerd and
runc each; the loop CSI driver, whose volumes detach from one node and attach to the other; images
pulled from a local registry through a throttle set so that PostgreSQL's image takes
`--pull-seconds` to pull), side by side in one run:

- **Bosun**: a Database on the `real` storage class, moved `--moves` times between the two nodes,
  the target's copy of the image removed before each move (a cold cache); `--killed` of those moves
  have the operator SIGKILLed when their `detach` step starts, and started again.
- **naive**: the same pod, claim, Service and Secret made by hand, moved as a user would without an
  operator: delete the pod, then create it on the other node (its image removed there first).

All along, a client commits one row at a time (one connection and one INSERT each, as
`tests/support/row_counter.py` does) through the Service's ClusterIP (kube-proxy runs on the host),
as an application in the cluster would. For each move: the client's
downtime (the longest gap between two acknowledged commits while the move ran), the time with no
ready endpoint (sampled every 50 ms) and its parts (stop, detach, attach, start), Bosun's recorded
downtime, how the operation ended, and how many nodes had the volume attached at once (never more
than one). At the end, every acknowledged row must be in the table: the rows lost are counted,
never assumed. Nothing is asserted here; `tests/cluster/test_real_nodes.py` runs a small sample.

A move waits for two kubelet reports of the volumes in use (the old node's before the detach, the
new node's before the mount). Kubelets report their node status every 10 s by default
(`nodeStatusUpdateFrequency`); `--node-status-seconds` starts the nodes with another period, and the
results go to `real-move-status-<N>s` so that both settings can be published side by side.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support import real_nodes as real
from tests.support.bosun_objects import Bosun
from tests.support.crash import KillAtStep
from tests.support.databases import move, ops_of, provision, run_op, start_op
from tests.support.row_counter import RowCounter
from tests.support.waiting import wait_for

from benchmarks.common import Environment, Report, median, pyplot, seconds_between
from benchmarks.moves import Timeline, volume_of, where_it_goes
from bosun.models.database import DatabaseSpec
from bosun.models.names import DATABASE_LABEL, GROUP, PLURALS, SERVING_LABEL, VERSION
from bosun.workloads import database as build

PARTS = ["stop", "detach", "attach", "start"]


def gap_between(counter: RowCounter, start: float, end: float) -> float:
    """The longest time with no acknowledged commit inside [start, end], edges included."""
    times = [start, *(t for t in counter.acked_at if start <= t <= end)]
    after = next((t for t in counter.acked_at if t > end), end)
    times.append(after)
    return max(b - a for a, b in itertools.pairwise(times))


def over_floor(run: dict[str, Any]) -> float:
    """How much longer the client waited than the move's real work took (stop, detach, attach, start)."""
    return float(run["client_downtime"] - sum(run[p] for p in PARTS))


def most_attached(timeline: Timeline) -> int:
    return max((sum(1 for attached in s.attached.values() if attached) for s in timeline.samples), default=0)


def bosun_moves(
    env: Environment, operator: Any, bosun: Bosun, moves: int, killed: set[int], retain: bool = True
) -> dict[str, Any]:
    first = provision(bosun, real.database())
    if first["phase"] != "Succeeded":
        raise RuntimeError(f"provision ended {first['phase']}: {first.get('message')}")
    volume = volume_of(env.core, bosun.namespace, build.claim_name("pg"))
    password = base64.b64decode(env.core.read_namespaced_secret("pg-credentials", bosun.namespace).data["password"])
    counter = real.following_counter(env.core, bosun.namespace, "pg", password.decode())
    runs = []
    try:
        wait_for(lambda: len(counter.acknowledged) >= 20, timeout=60, what="20 rows before the first move")
        for n in range(moves):
            old = bosun.get("databases", "pg")["status"]["node"]
            new = next(node for node in real.NODES if node != old)
            real.forget_image(new)
            old_pod = next(p.metadata.name for p in _pods(env.core, bosun.namespace) if _serving(p))
            began = time.monotonic()
            with Timeline(env.api, bosun.namespace, "pg", volume) as timeline:
                if n in killed:
                    with KillAtStep(bosun, operator, "detach", f"move-{n}") as kill:
                        status = _move_killed(bosun, operator, kill, f"move-{n}", new)
                else:
                    status = move(bosun, f"move-{n}", new)
                ended = time.monotonic()
                written = len(counter.acknowledged)
                wait_for(lambda w=written: len(counter.acknowledged) > w, timeout=120, what="a commit after the move")
            phases = timeline.phases(old_pod, old, new)
            runs.append({
                "move": n, "from": old, "to": new, "killed": n in killed, "phase": status["phase"],
                "reason": status.get("reason", ""), "rollback": (status.get("rollback") or {}).get("state", ""),
                "client_downtime": gap_between(counter, began, ended), **phases,
                "recorded": bosun.get("databases", "pg")["status"].get("lastMoveDowntimeSeconds"),
                "steps": {s["name"]: _took(s) for s in status.get("steps") or []},
                "most_attached": most_attached(timeline), "seconds": ended - began,
            })  # fmt: skip
        others, reader = other_operations(env, bosun, counter, retain)
    finally:
        counter.stop()
    return {"runs": runs, "others": others, **_rows(counter, reader)}


def other_operations(
    env: Environment, bosun: Bosun, counter: RowCounter, retain: bool = True
) -> tuple[list[dict[str, Any]], RowCounter]:
    """With the same client writing: a restart in place, a resize (its filesystem grows offline here,
    so a restart follows), a version whose image does not exist (refused before any downtime), and a
    deprovision that retains the volume, after which a new Database finds every row on it."""
    done = []
    for name, type_, parameters in (
        ("restart", "restart", {}),
        ("resize", "resize", {"volumeSize": "512Mi"}),
    ):
        began = time.monotonic()
        status = run_op(bosun, f"{name}-real", type_, **parameters)
        ended = time.monotonic()
        written = len(counter.acknowledged)
        wait_for(lambda w=written: len(counter.acknowledged) > w, timeout=120, what=f"a commit after the {name}")
        done.append({"operation": name, "phase": status["phase"], "client_downtime": gap_between(counter, began, ended),
                     "seconds": ended - began, "reason": status.get("reason", "")})  # fmt: skip
    began = time.monotonic()
    bosun.apply(real.database(version="99"))  # the version alone changes: one operation, measured alone
    restart = wait_for(lambda: [o for o in ops_of(bosun, "pg", "restart") if o != "restart-real"], what="a restart")[0]
    status = bosun.wait_phase(restart, timeout=300)
    ended = time.monotonic()
    done.append({"operation": "version with no image", "phase": status["phase"], "reason": status.get("reason", ""),
                 "client_downtime": gap_between(counter, began, ended), "seconds": ended - began})  # fmt: skip
    if not retain:
        return done, counter
    bosun.apply(real.database(version="99", reclaim="Retain"))  # keep the volume this time (no operation)
    kept = set(counter.acknowledged)
    counter.stop()
    status = run_op(bosun, "deprovision-real", "deprovision")
    bosun.custom.delete_namespaced_custom_object(GROUP, VERSION, bosun.namespace, PLURALS["Database"], "pg")
    wait_for(lambda: not bosun.list("databases"), what="the Database gone")
    again = provision(bosun, real.database(reclaim="Retain", size="512Mi"))
    password = base64.b64decode(env.core.read_namespaced_secret("pg-credentials", bosun.namespace).data["password"])
    reader = real.following_counter(env.core, bosun.namespace, "pg", password.decode())
    reader.stop()
    missing = len(kept - reader.present())
    done.append({"operation": "deprovision (Retain), then a new Database", "phase": again["phase"],
                 "reason": status["phase"], "rows_missing": missing, "client_downtime": float("nan"),
                 "seconds": float("nan")})  # fmt: skip
    return done, reader  # the new Database's client: what is in the table now


def _move_killed(bosun: Bosun, operator: Any, kill: KillAtStep, name: str, node: str) -> dict[str, Any]:
    start_op(bosun, name, "redeploy", node=node)
    if not kill.killed.wait(timeout=180):
        raise RuntimeError(f"{name}: the detach step was never seen Running")
    operator.start()
    return bosun.wait_phase(name, timeout=300)


def naive_moves(env: Environment, namespace: str, moves: int) -> dict[str, Any]:
    """The pod, claim, Service and Secret Bosun would make, with no operator; moved by hand."""
    spec = DatabaseSpec.model_validate(real.database()["spec"])
    core = env.core
    password = "naive-password"
    core.create_namespaced_secret(namespace, {"metadata": {"name": build.secret_name("pg")},
                                              "stringData": {"password": password}})  # fmt: skip
    core.create_namespaced_persistent_volume_claim(namespace, build.claim("pg", spec))
    service = build.service("pg", "none", spec)
    service["metadata"].pop("ownerReferences", None)
    core.create_namespaced_service(namespace, service)
    nodes = list(real.NODES)

    def pod(name: str, node: str) -> dict[str, Any]:
        manifest = build.pod("pg", "none", spec, name, node)
        manifest["metadata"].pop("ownerReferences", None)
        return manifest

    core.create_namespaced_pod(namespace, pod("pg-0", nodes[0]))
    counter = real.following_counter(core, namespace, "pg", password)
    volume = volume_of(core, namespace, build.claim_name("pg"))
    runs = []
    try:
        wait_for(lambda: len(counter.acknowledged) >= 20, timeout=60, what="20 rows before the first move")
        for n in range(moves):
            old, new = nodes[n % 2], nodes[(n + 1) % 2]
            real.forget_image(new)
            old_pod, new_pod = f"pg-{n}", f"pg-{n + 1}"
            began = time.monotonic()
            with Timeline(env.api, namespace, "pg", volume) as timeline:
                core.delete_namespaced_pod(old_pod, namespace)  # `kubectl delete pod` waits until it is gone
                wait_for(lambda p=old_pod: p not in {x.metadata.name for x in _pods(core, namespace)},
                         timeout=120, interval=0.05, what="the stop")  # fmt: skip
                core.create_namespaced_pod(namespace, pod(new_pod, new))
                written = len(counter.acknowledged)
                wait_for(lambda w=written: len(counter.acknowledged) > w, timeout=300, interval=0.05,
                         what="a commit after the naive move")  # fmt: skip
                ended = time.monotonic()
            phases = timeline.phases(old_pod, old, new)
            runs.append({"move": n, "from": old, "to": new, "client_downtime": gap_between(counter, began, ended),
                         **phases, "most_attached": most_attached(timeline)})  # fmt: skip
    finally:
        counter.stop()
    return {"runs": runs, **_rows(counter)}


def _rows(counter: RowCounter, reader: RowCounter | None = None) -> dict[str, int]:
    """Rows acknowledged and lost: every acknowledged row must be in the table `reader` reads
    (the database as it is at the end; by default the one `counter` wrote to)."""
    present = (reader or counter).present()
    lost = len(set(counter.acknowledged) - present)
    return {"acknowledged": len(counter.acknowledged), "uncertain": len(counter.uncertain), "lost": lost}


def _pods(core: client.CoreV1Api, namespace: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"{DATABASE_LABEL}=pg").items)


def _serving(pod: client.V1Pod) -> bool:
    return (pod.metadata.labels or {}).get(SERVING_LABEL) == "true" and pod.metadata.deletion_timestamp is None


def _took(step: dict[str, Any]) -> float:
    if not step.get("startedAt") or not step.get("finishedAt"):
        return float("nan")
    return seconds_between(step["startedAt"], step["finishedAt"])


def run(
    env: Environment,
    out: Path,
    moves: int = 10,
    killed: int = 2,
    naive: int = 3,
    pull_seconds: float = 20.0,
    retain: bool = True,
    node_status_seconds: int = 10,
) -> Report:
    name = "real-move" if node_status_seconds == 10 else f"real-move-status-{node_status_seconds}s"
    report = Report(name, "Database moves on real nodes: Bosun against the naive move", out)
    kills = {round((i + 1) * moves / (killed + 1)) for i in range(killed)} if killed else set()
    load_before = os.getloadavg()[0]  # what else the two cores were doing: said with the figures
    started_here = not real.running()  # nodes someone else started (a test module) stay up
    real.up(node_status_seconds)
    size = real.image_bytes()
    real.set_pull_rate(size / pull_seconds if pull_seconds > 0 else 0)
    try:
        with env.operator() as operator, env.namespace("bench-real") as bosun:
            ours = bosun_moves(env, operator, bosun, moves, kills, retain)
        with env.namespace("bench-real-naive") as plain:
            theirs = naive_moves(env, plain.namespace, naive)
    finally:
        real.set_pull_rate(0)
        if started_here:
            real.down()
    finished = [r for r in ours["runs"] if r["phase"] == "Succeeded"]
    summary = {
        "bosun_median": median([r["client_downtime"] for r in finished]),
        "bosun_worst": max((r["client_downtime"] for r in ours["runs"]), default=float("nan")),
        "bosun_recorded_median": median([r["recorded"] for r in finished if r["recorded"] is not None]),
        "bosun_floor_median": median([sum(r[p] for p in PARTS) for r in finished]),
        # The target: a client sees no more than the real work (stop, detach, attach, start) + 1 s.
        "bosun_worst_over_floor": max((over_floor(r) for r in finished), default=float("nan")),
        "naive_median": median([r["client_downtime"] for r in theirs["runs"]]),
        "naive_worst": max((r["client_downtime"] for r in theirs["runs"]), default=float("nan")),
        "succeeded": len(finished),
        "moves": moves,
        "killed": len(kills),
        "killed_succeeded": sum(1 for r in ours["runs"] if r["killed"] and r["phase"] == "Succeeded"),
        "lost": ours["lost"] + theirs["lost"],
        "acknowledged": ours["acknowledged"] + theirs["acknowledged"],
        "most_attached": max(r["most_attached"] for r in ours["runs"] + theirs["runs"]),
        "others": {o["operation"]: o["phase"] for o in ours["others"]},
        "rows_missing_after_retain": next((o["rows_missing"] for o in ours["others"] if "rows_missing" in o), None),
    }
    summary["ratio"] = summary["naive_median"] / summary["bosun_median"]
    load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    report.data = {"moves": moves, "killed_moves": sorted(kills), "naive_moves": naive, "pull_seconds": pull_seconds,
                   "node_status_seconds": node_status_seconds,
                   "image_bytes": size, "load_average_1m": load, "summary": summary, "bosun": ours,
                   "naive": theirs}  # fmt: skip
    report.say(
        f"Two real nodes (kubelet, containerd, runc), PostgreSQL 15 built from Debian's packages "
        f"({size / 2**20:.0f} MiB of layers, pulled at {size / 2**20 / pull_seconds:.0f} MiB/s so a pull takes "
        f"{pull_seconds:g} s), volumes of the loop CSI driver. The target node's copy of the image is removed "
        "before every move. A client commits one row at a time through the Service's ClusterIP (kube-proxy on "
        f"the host). Kubelets report their node status every {node_status_seconds} s. Load average "
        f"(1 min) {load['before']} before the run and {load['after']} after it, on {os.cpu_count()} cores."
    )
    report.table(
        ["", "moves", "client downtime median (s)", "worst (s)", "status says, median (s)", "rows acknowledged",
         "rows lost", "most nodes attached at once"],
        [["Bosun redeploy", f"{summary['succeeded']} of {moves} succeeded ({len(kills)} with the operator killed)",
          summary["bosun_median"], summary["bosun_worst"], summary["bosun_recorded_median"], ours["acknowledged"],
          ours["lost"], max(r["most_attached"] for r in ours["runs"])],
         ["naive (delete, recreate)", naive, summary["naive_median"], summary["naive_worst"], "n/a",
          theirs["acknowledged"], theirs["lost"], max(r["most_attached"] for r in theirs["runs"])]],
    )  # fmt: skip
    report.say(
        f"**The naive move is down {summary['ratio']:.1f} times longer than Bosun's** (medians). A client waited at "
        f"most {summary['bosun_worst_over_floor']:.2f} s longer than a Bosun move's stop, detach, attach and start "
        "took together (the last column below)."
    )
    report.table(
        ["median of (s)", *PARTS, "no ready endpoint"],
        [["Bosun", *[median([r[p] for r in finished]) for p in PARTS], median([r["downtime"] for r in finished])],
         ["naive", *[median([r[p] for r in theirs["runs"]]) for p in PARTS],
          median([r["downtime"] for r in theirs["runs"]])]],
    )  # fmt: skip
    report.table(
        ["move", "to", "operator killed", "ended", "client downtime (s)", "status says (s)", *PARTS,
         "client minus the four (s)"],
        [[r["move"], r["to"], "yes" if r["killed"] else "",
          r["phase"] + (f" ({r['reason']}, rollback {r['rollback']})" if r["phase"] != "Succeeded" else ""),
          r["client_downtime"], r["recorded"], *[r[p] for p in PARTS], over_floor(r)] for r in ours["runs"]],
    )  # fmt: skip
    report.say("The other operations, with the same client writing:")
    report.table(
        ["operation", "ended", "client downtime (s)", "took (s)", "acknowledged rows missing after"],
        [[o["operation"], o["phase"] + (f" ({o['reason']})" if o.get("reason") and o["phase"] != "Succeeded" else ""),
          o["client_downtime"], o["seconds"], o.get("rows_missing", "")] for o in ours["others"]],
    )  # fmt: skip
    report.say(
        "Where the time goes, as the 50 ms samples saw it: stop (the old pod told to stop until it is gone), "
        "detach (until its VolumeAttachment is gone), attach (until the new node's is attached), start (until "
        f"the new pod is a ready endpoint). A kubelet reports the volumes it uses in its node status every "
        f"{node_status_seconds} s here (`nodeStatusUpdateFrequency`; Kubernetes' default is 10 s): the detach waits "
        f"for the old node's report and the mount for the new node's, up to {node_status_seconds} s each. Step times "
        "are the operation's own (1 s resolution)."
    )
    report.plot(_figure(ours["runs"], theirs["runs"]))
    return report


def _figure(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> Any:
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot([r["move"] + 1 for r in ours], [r["client_downtime"] for r in ours], "o-", label="Bosun redeploy")
    killed = [r for r in ours if r["killed"]]
    left.plot([r["move"] + 1 for r in killed], [r["client_downtime"] for r in killed], "rx", markersize=10,
              label="operator SIGKILLed mid-move")  # fmt: skip
    left.plot([r["move"] + 1 for r in theirs], [r["client_downtime"] for r in theirs], "o-", label="naive move")
    left.set(xlabel="move", ylabel="client downtime (s)", title="Real PostgreSQL moves", ylim=(0, None))
    left.legend(fontsize=8)
    where_it_goes(right, [r for r in ours if r["phase"] == "Succeeded"], theirs, PARTS)
    return figure


def main(env: Environment, argv: list[str], out: Path) -> Report:
    options = argparse.ArgumentParser(prog="benchmarks real-move", description=__doc__.splitlines()[0])
    options.add_argument("--moves", type=int, default=10)
    options.add_argument("--killed", type=int, default=2, help="moves whose operator is SIGKILLed at detach")
    options.add_argument("--naive", type=int, default=3)
    options.add_argument("--pull-seconds", type=float, default=20.0)
    options.add_argument("--node-status-seconds", type=int, default=10, help="the kubelets' nodeStatusUpdateFrequency")
    args = options.parse_args(argv)
    return run(env, out, args.moves, args.killed, args.naive, args.pull_seconds,
               node_status_seconds=args.node_status_seconds)  # fmt: skip
