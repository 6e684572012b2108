"""One command for every benchmark: `python -m benchmarks NAME [options]` or `python -m benchmarks all`.

    .venv/bin/python -m benchmarks moves --runs 5       # one benchmark, its own options
    .venv/bin/python -m benchmarks all                  # every benchmark at its default size
    .venv/bin/python -m benchmarks smoke --out DIR      # every benchmark at a tiny size (hack/test)

Results (Markdown, JSON, PNG) go to benchmarks/results/ unless `--out` says otherwise; the local
cluster is started if it is not running.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import api_economy, app_deploy, burst, dashboard, ha, moves, real_backup, real_move, scale
from benchmarks.common import RESULTS, environment

BENCHMARKS = {
    "moves": moves,
    "api": api_economy,
    "scale": scale,
    "deploy": app_deploy,
    "burst": burst,
    "real-move": real_move,
    "real-backup": real_backup,
    "ha": ha,
    "dashboard": dashboard,
}
SMOKE = {
    "moves": ["--runs", "1", "--pull-seconds", "3"],
    "api": ["--idle-seconds", "5"],
    "deploy": ["--replicas", "3", "--min-ready-seconds", "0"],
    "burst": ["--apps", "3", "--runs", "1"],
    "real-move": ["--moves", "1", "--killed", "0", "--naive", "1", "--pull-seconds", "2"],
    "dashboard": ["--operations", "30", "--requests", "3"],
    "scale": ["--nodes", "3", "--apps", "6", "--databases", "2", "--in-flight", "1,3", "--idle-seconds", "5"],
}


def main() -> int:
    options = argparse.ArgumentParser(prog="benchmarks", description=__doc__.splitlines()[0])
    options.add_argument("name", choices=[*BENCHMARKS, "all", "smoke"])
    options.add_argument("--out", type=Path, default=RESULTS)
    args, rest = options.parse_known_args()
    # The HA benchmark is a test run with its figures written: hack/test runs that test already.
    chosen = {"all": list(BENCHMARKS), "smoke": list(SMOKE)}.get(args.name, [args.name])
    with environment() as env:
        for name in chosen:
            argv = SMOKE[name] if args.name == "smoke" else rest
            BENCHMARKS[name].main(env, argv, args.out).write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
