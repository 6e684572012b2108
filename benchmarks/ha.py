"""Leader failover in the middle of a database move: how long until the standby leads, and how
long until the move it took over has finished.

    .venv/bin/python -m benchmarks ha

The measurement is the HA test of `tests/cluster/test_install.py` (two replicas installed from a
fresh-virtualenv wheel with the chart's identity and settings; the leader SIGKILLed while the
move is in its downtime), run with `BOSUN_HA_RESULTS` set: the test then also insists that the
move finished (the test alone accepts a truthful rollback, which a published figure must not
pass for a finished move), and writes what it measured. `hack/test` runs the test itself, so
this benchmark has no smoke size of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, Environment, Report

TEST = "tests/cluster/test_install.py::test_two_replicas_from_the_wheel_one_acts_and_the_standby_finishes_a_move"


def main(env: Environment, argv: list[str], out: Path) -> Report:
    argparse.ArgumentParser(prog="benchmarks ha", description=__doc__.splitlines()[0]).parse_args(argv)
    report = Report("ha", "Leader failover during a database move", out)
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "ha.json"
        ran = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", TEST],
            cwd=ROOT,
            env={**os.environ, "BOSUN_HA_RESULTS": str(results)},
            capture_output=True,
            text=True,
            check=False,
        )
        if ran.returncode != 0 or not results.exists():
            raise RuntimeError(
                f"the HA test failed (exit {ran.returncode}):\n{ran.stdout[-3000:]}\n{ran.stderr[-2000:]}"
            )
        measured = json.loads(results.read_text())
    report.data = measured
    report.say(
        "Two replicas with leader election; the leader SIGKILLed while a database move is in its "
        "downtime (stop, detach, attach or start). The standby must take the Lease (15 s, renewed "
        "every 2 s), resume the move from its status and finish it."
    )
    report.table(
        ["takeover after the kill (s)", "move finished after the kill (s)", "move", "recorded downtime (s)",
         "most nodes attached at once", "killed during"],
        [[measured["takeover_seconds"], measured["finished_seconds"], measured["phase"],
          measured["recorded_downtime_seconds"], measured["most_attached"], measured["killed_during"]]],
    )  # fmt: skip
    return report
