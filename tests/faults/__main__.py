"""`hack/faults`: run the fault harness and print its table.

hack/faults                          every case of every category (seed 1)
hack/faults --sample 3 --seed 7      three seeded cases of each category
hack/faults --only crash,node        some categories
hack/faults --case crash/db-redeploy/at-attach --seed 7    one case again, alone
hack/faults --list                   the case ids
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from tests.faults import api as api_faults
from tests.faults import crash, hostile, invariants, nodes, store
from tests.faults.harness import Case, Outcome, World, fresh_namespace, run_case, select, table
from tests.support.bosun_objects import Bosun
from tests.support.cluster import ROOT, LocalCluster, find_or_start, serve_bosun_api
from tests.support.databases import database_manifest, ops_of, provision
from tests.support.fault_proxy import FaultProxy
from tests.support.operator_process import OperatorProcess
from tests.support.provenance import commit_of
from tests.support.s3_server import SeaweedFS
from tests.support.snapshots import played
from tests.support.waiting import wait_for

CATEGORIES = ("crash", "api", "node", "store", "hostile")


def all_cases() -> list[Case]:
    return crash.cases() + api_faults.cases() + nodes.cases() + store.cases() + hostile.cases()


def _operator(world: World, key: str, kubeconfig: Path, work: Path, env: dict[str, str] | None = None) -> None:
    logs = work / key
    logs.mkdir(parents=True, exist_ok=True)
    world.state[key] = OperatorProcess(kubeconfig, logs, command=["-m", "bosun", "run"], env=env)


def run(chosen: list[Case], seed: int, work: Path, log: bool = True) -> list[Outcome]:
    cluster: LocalCluster = find_or_start()
    serve_bosun_api(cluster)
    client_api = config.new_client_from_config(config_file=str(cluster.kubeconfig), context=cluster.context)
    world = World(cluster, client_api)
    world.state["admin-user"] = cluster.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").strip()
    for node in client.CoreV1Api(client_api).list_node().items:  # an interrupted node-loss case left it NotReady
        if nodes.NOT_READY in (node.metadata.labels or {}):
            nodes.recover(node.metadata.name)(world)
    categories = {c.category for c in chosen}
    for key in ("crash-operator", "hostile-operator"):
        _operator(world, key, cluster.kubeconfig, work)
    proxy = None
    if "api" in categories:
        proxy = FaultProxy(cluster.kubeconfig, cluster.context, rate=api_faults.RATE, seed=seed)
        world.state["proxy"] = proxy
        _operator(world, "api-operator", proxy.kubeconfig(work / "proxy-kubeconfig"), work)
    seaweed = None
    if "store" in categories:
        seaweed = SeaweedFS(work / "seaweedfs")
        seaweed.start()
        seaweed.client().create_bucket(Bucket="bosun")
        world.state["seaweed"], world.state["s3-client"] = seaweed, seaweed.client()
        _operator(world, "store-operator", cluster.kubeconfig, work, env=seaweed.env("bosun", "faults"))
    outcomes: list[Outcome] = []
    snapshots = played(client_api)  # backups before resizes and deletions need their snapshots taken
    snapshots.__enter__()
    try:
        for case in [c for c in chosen if c.category != "hostile"]:
            outcomes.append(_logged(run_case(world, case, seed), log))
        hostile_cases = [c for c in chosen if c.category == "hostile"]
        if hostile_cases:
            outcomes += _hostile(world, hostile_cases, seed, log)
    finally:
        for key in ("crash-operator", "hostile-operator", "api-operator", "store-operator"):
            operator = world.state.get(key)
            if isinstance(operator, OperatorProcess):
                operator.stop(timeout=30)
        snapshots.__exit__(None, None, None)
        if seaweed is not None:
            seaweed.stop()
        if proxy is not None:
            print(f"api faults injected: {dict(proxy.faults)} of {proxy.requests} requests", file=sys.stderr)
            proxy.close()
    return outcomes


def _hostile(world: World, cases: list[Case], seed: int, log: bool) -> list[Outcome]:
    """The hostile cases, with a snapshot of bystanders before and after every one of them."""
    world.state["operator-key"] = "hostile-operator"
    operator = crash.operator_of(world)
    outcomes = []
    with fresh_namespace(world.api, "bystanders") as bystanders:
        bosun = Bosun(world.api, world.cluster, bystanders)
        bosun.app("calm")
        assert provision(bosun, database_manifest("calm-db"))["phase"] == "Succeeded"
        calm = wait_for(lambda: ops_of(bosun, "calm", "deploy"), what="the calm App's first deploy")[0]
        bosun.wait_phase(calm, timeout=120)
        bosun.wait_settled("apps", "calm", calm)  # its status too, before the snapshot of bystanders
        unsettled = invariants.archived(world.api, bystanders, 120)  # and its week's report written
        assert not unsettled, unsettled
        before = hostile.snapshot(world.api, bystanders)
        started = time.monotonic()
        for case in cases:
            outcomes.append(_logged(run_case(world, case, seed), log))
        after = hostile.snapshot(world.api, bystanders)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        restarts = operator.starts - 1
        violations = [f"bystanders changed: {changed}"] if changed else []
        violations += [f"the operator restarted {restarts} times"] if restarts else []
        check = Case("hostile", "hostile/nothing-else-changed", lambda *_: violations)
        outcomes.append(_logged(Outcome(check, violations, time.monotonic() - started), log))
    return outcomes


def _logged(outcome: Outcome, log: bool) -> Outcome:
    if log:
        mark = "ok  " if outcome.converged else "FAIL"
        print(f"{mark} {outcome.seconds:6.1f}s {outcome.case.id}", file=sys.stderr, flush=True)
        for violation in outcome.violations:
            print(f"       - {violation}", file=sys.stderr, flush=True)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack/faults", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, help="this many seeded cases per category")
    parser.add_argument("--only", default="", help=f"comma-separated categories: {', '.join(CATEGORIES)}")
    parser.add_argument("--case", help="one case id")
    parser.add_argument("--match", default="", help="only case ids containing this text (e.g. crash/db-)")
    parser.add_argument("--list", action="store_true", help="list case ids and exit")
    parser.add_argument("--corpus", type=Path, help="write the hostile manifests to this directory and exit")
    args = parser.parse_args(argv)
    if args.corpus:
        print(f"wrote {hostile.write_corpus(args.corpus)} manifests to {args.corpus}")
        return 0
    only = {c for c in args.only.split(",") if c}
    unknown = only - set(CATEGORIES)
    if unknown:
        parser.error(f"unknown categories: {', '.join(sorted(unknown))}")
    chosen = select(all_cases(), seed=args.seed, per_category=args.sample, only=only, case_id=args.case)
    chosen = [c for c in chosen if args.match in c.id]
    if args.list:
        print("\n".join(c.id for c in chosen))
        return 0
    if not chosen:
        parser.error("no case matches")
    work = ROOT / ".cache" / "faults" / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outcomes = run(chosen, args.seed, work)
    seconds = time.monotonic() - started
    print(table(outcomes))
    print(f"\nseed {args.seed}, {len(outcomes)} cases in {seconds:.0f}s; operator logs in {work}")
    if not (args.case or args.match or args.sample):  # a whole run (of some categories): its results file
        path = write_results(
            outcomes, args.seed, seconds, sorted(only) or list(CATEGORIES), ROOT / "benchmarks" / "results"
        )
        print(f"results: {path} (and .json)")
    return 0 if all(o.converged for o in outcomes) else 1


def _summary(outcomes: list[Outcome]) -> dict[str, Any]:
    slowest = max(outcomes, key=lambda o: o.seconds)
    return {
        "cases": len(outcomes),
        "converged": sum(o.converged for o in outcomes),
        "violations": sum(len(o.violations) for o in outcomes),
        "slowest_seconds": round(slowest.seconds, 1),
        "slowest_case": slowest.case.id,
    }


def write_results(outcomes: list[Outcome], seed: int, seconds: float, categories: list[str], out: Path) -> Path:
    """faults.json and faults.md: what a whole run found, with the commit it ran on."""
    data = {
        "benchmark": "faults",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit_of(ROOT),
        "seed": seed,
        "categories": categories,
        "seconds": round(seconds, 1),
        "cases": len(outcomes),
        "converged": sum(o.converged for o in outcomes),
        "violations": sum(len(o.violations) for o in outcomes),
        "by_category": {
            category: _summary([o for o in outcomes if o.case.category == category])
            for category in dict.fromkeys(o.case.category for o in outcomes)
        },
        "failed": {o.case.id: o.violations for o in outcomes if not o.converged},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "faults.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "faults.md").write_text(
        f"# Fault harness\n\n_{data['when']}, commit `{data['commit'][:7]}`, seed {seed}, "
        f"{data['seconds']:.0f} s (`hack/faults`)_\n\n{table(outcomes)}\n"
    )
    return out / "faults.md"


if __name__ == "__main__":
    sys.exit(main())
