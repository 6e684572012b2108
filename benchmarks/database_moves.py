"""Database move downtime on the local cluster: N redeploys back and forth between two nodes.

    .venv/bin/python benchmarks/database_moves.py [--moves 6] [--grace 10]

Starts the local cluster if it is not running (and leaves it as it found it), runs the operator,
provisions one PostgreSQL Database and moves it between kwok-zone-a-1 and kwok-zone-a-2. Prints,
per move, the downtime Bosun recorded (`status.lastMoveDowntimeSeconds`: old pod told to stop →
new pod Ready) and each step's duration; then the median and the worst. Nothing is asserted:
the figures go into the issue notes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path

from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.bosun_objects import Bosun  # noqa: E402
from tests.support.cluster import find_or_start, stop  # noqa: E402
from tests.support.databases import database_manifest, move, provision  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402

NODES = ["kwok-zone-a-2", "kwok-zone-a-1"]


def seconds(start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--moves", type=int, default=6)
    options.add_argument("--grace", type=int, default=10, help="(informational) the pod's termination grace")
    args = options.parse_args()
    cluster = find_or_start()
    try:
        for manifests in ("crds", "manifests/admission-policies.yaml"):
            cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / manifests))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
        api = config.new_client_from_config(str(cluster.kubeconfig), context=cluster.context)
        core = client.CoreV1Api(api)
        namespace = f"bench-{uuid.uuid4().hex[:5]}"
        core.create_namespace({"metadata": {"name": namespace}})
        operator = OperatorProcess(cluster.kubeconfig, Path(tempfile.mkdtemp()), command=["-m", "bosun", "run"])
        operator.start()
        try:
            bosun = Bosun(api, cluster, namespace)
            assert provision(bosun, database_manifest())["phase"] == "Succeeded"
            downtimes, totals = [], []
            for n in range(args.moves):
                status = move(bosun, f"move-{n}", NODES[n % 2])
                if status["phase"] != "Succeeded":
                    print(f"move {n} ended {status['phase']}: {status.get('message')}")
                    return 1
                downtime = bosun.get("databases", "pg")["status"]["lastMoveDowntimeSeconds"]
                total = seconds(status["startedAt"], status["finishedAt"])
                downtimes.append(downtime)
                totals.append(total)
                took = ", ".join(f"{s['name']} {seconds(s['startedAt'], s['finishedAt']):.1f}" for s in status["steps"])
                print(f"move {n + 1} → {NODES[n % 2]}: downtime {downtime:.1f}s, operation {total:.1f}s ({took})")
            print(
                f"downtime over {len(downtimes)} moves: median {statistics.median(downtimes):.1f}s, "
                f"worst {max(downtimes):.1f}s; operation median {statistics.median(totals):.1f}s "
                f"(KWOK ends the old pod at a random point of its {args.grace}s grace period and starts the new "
                "one after simulated delays; the new pod's 5s readiness check is not downtime)"
            )
        finally:
            operator.stop()
            core.delete_namespace(namespace)
    finally:
        if cluster.started_here:
            stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
