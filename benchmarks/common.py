"""What every benchmark shares: the local cluster, Bosun running as its own service account, reports.

The operator runs as a process with the chart's ServiceAccount token and RBAC (so the API server's
audit log, which records that account's requests and nobody else's, counts exactly what Bosun asks
for), in all-namespaces mode, as `bosun run` would in the cluster. Each benchmark writes a Markdown
table, a JSON file and PNG plots into the output directory; nothing is asserted.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client, config
from tests.support.bosun_objects import Bosun
from tests.support.cluster import ROOT, LocalCluster, find_or_start, serve_bosun_api
from tests.support.install import apply_operator_rbac, token_kubeconfig
from tests.support.operator_process import OperatorProcess
from tests.support.provenance import commit_of

RESULTS = ROOT / "benchmarks" / "results"
# The operator's log of a benchmark that failed, kept for whoever looks into it.
KEPT_LOGS = Path(os.environ.get("BOSUN_CACHE", Path.home() / ".cache" / "bosun")) / "benchmark-logs"
OPERATOR_USER = "system:serviceaccount:bosun-system:bosun"


@dataclass
class Environment:
    cluster: LocalCluster
    api: client.ApiClient
    work: Path

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def audit_log(self) -> Path:
        return self.cluster.kubeconfig.parent / "logs" / "audit.log"

    @contextmanager
    def namespace(self, prefix: str) -> Iterator[Bosun]:
        name = f"{prefix}-{uuid.uuid4().hex[:5]}"
        self.core.create_namespace({"metadata": {"name": name}})
        try:
            yield Bosun(self.api, self.cluster, name)
        finally:
            self.core.delete_namespace(name)
            # Gone before the next measurement (or test) starts: an operator watching every namespace
            # would otherwise find its objects (the dashboard benchmark's unstarted Operations) and drive them.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    self.core.read_namespace(name)
                except client.ApiException as error:
                    if error.status == 404:
                        break
                    raise
                time.sleep(0.5)

    @contextmanager
    def operator(self, checkout: Path = ROOT, **env: str) -> Iterator[OperatorProcess]:
        """Bosun as its ServiceAccount, as `bosun run` in the chart's Deployment.

        `checkout` is whose operator runs: this one by default, another commit's worktree to
        measure before and after."""
        kubeconfig = token_kubeconfig(self.cluster, self.work / "operator.kubeconfig")
        logs = Path(tempfile.mkdtemp(dir=self.work, prefix="operator-"))
        # That checkout's operator, whatever `bosun` the virtualenv has installed.
        source = {"PYTHONPATH": f"{checkout / 'operator'}:{checkout}"}
        process = OperatorProcess(kubeconfig, logs, command=["-m", "bosun", "run"], env={**source, **env})
        process.start()
        try:
            yield process
        except BaseException as error:  # the work dir goes with the run: its operator's log must not
            kept = KEPT_LOGS / f"{logs.name}-{datetime.now():%Y%m%d-%H%M%S}"
            shutil.copytree(logs, kept, dirs_exist_ok=True)
            error.add_note(f"the operator's log is kept in {kept}")
            raise
        finally:
            process.stop(timeout=30)


@contextmanager
def environment() -> Iterator[Environment]:
    cluster = find_or_start()
    serve_bosun_api(cluster)
    apply_operator_rbac(cluster)
    api = config.new_client_from_config(str(cluster.kubeconfig), context=cluster.context)
    # The samplers and watchers of a benchmark share this client from several threads.
    api.configuration.connection_pool_maxsize = 32
    with tempfile.TemporaryDirectory(prefix="bosun-bench-") as work:
        yield Environment(cluster, api, Path(work))


# figures -----------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def seconds_between(start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


@dataclass
class Report:
    """One benchmark's results: a Markdown table or two, a JSON document, plots."""

    name: str
    title: str
    out: Path
    data: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.lines += ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        self.lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]

    def say(self, text: str) -> None:
        self.lines += ["", text]

    def plot(self, figure: Any, suffix: str = "") -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{self.name}{suffix}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        self.lines += ["", f"![{self.title}{suffix}]({path.name})"]
        return path

    def write(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        took = time.monotonic() - self.began
        stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        commit = commit_of(ROOT)
        made = f"commit `{commit[:7]}{commit[40:]}`"  # the short hash, and whether the tree had changes
        head = [f"## {self.title}", "", f"_{stamp}; {made}; {machine()}; took {took:.0f} s_"]
        (self.out / f"{self.name}.md").write_text("\n".join(head + self.lines) + "\n")
        document = {"benchmark": self.name, "machine": machine(), "when": stamp, "commit": commit,
                    "seconds": round(took, 1)}  # fmt: skip
        (self.out / f"{self.name}.json").write_text(json.dumps({**document, **self.data}, indent=2) + "\n")
        print("\n".join(head + self.lines))
        return self.out / f"{self.name}.md"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
