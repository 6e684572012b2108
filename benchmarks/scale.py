"""The operator at scale: engine latency, throughput, footprint and start-up, on fake nodes.

    .venv/bin/python -m benchmarks scale [--nodes 50] [--apps 500] [--databases 50]
                                         [--in-flight 1,50,500] [--idle-seconds 60] [--finished 0]

1. **Throughput**: `--apps` Apps (1 replica, no wait for stability) and `--databases` Databases
   are created at once on `--nodes` fake nodes; each makes its first operation (deploy,
   provision). Operations completed per minute, and what was busy meanwhile (CPU of the operator
   and of the API server, sampled each second).
2. **Engine latency**: with 1, 50, 500 ... restarts in flight at once over distinct Apps,
   Operation created → first step running, and a step's end → the next step's start, as a client
   watching the Operations sees them (status times have a one-second resolution).
3. **Footprint**: the operator's RSS and CPU idle with everything above in place, plus
   `--finished` Operations that failed at once (records, as finished operations are): it must
   not poll the world. Then a restart: time from start to steady state, RSS then.

Every figure is measured by watching the cluster from outside the operator; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client, watch
from tests.support.bosun_objects import GROUP, VERSION, Bosun
from tests.support.cluster import fake_node

from benchmarks.common import Environment, Report, mean, median, percentile, pyplot
from bosun.activity.service import REPORT_LABEL
from bosun.models.names import FINISHED_PHASES

NODE_PREFIX = "kwok-scale-"  # zone "scale" (hack/cluster.d/stages-storage.yaml reads it from the name)


@dataclass
class Seen:
    """What a client watching one Operation saw, in local monotonic time."""

    created: float = 0.0
    first_running: float | None = None
    finished: float | None = None
    phase: str = ""
    reason: str = ""
    archived: bool = False
    transitions: list[float] = field(default_factory=list)  # step end -> next step start
    _ended: dict[int, float] = field(default_factory=dict)
    _started: set[int] = field(default_factory=set)


class Watcher:
    """Watches a namespace's Operations in a thread and times what each one does."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.seen: dict[str, Seen] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def created(self, name: str, at: float) -> None:
        with self.lock:
            self.seen.setdefault(name, Seen()).created = at

    def _run(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                stream = watch.Watch().stream(
                    self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, "operations",
                    resource_version=version, timeout_seconds=5,
                )  # fmt: skip
                for event in stream:
                    version = event["object"]["metadata"]["resourceVersion"]
                    self._saw(event["object"], time.monotonic())
            except client.ApiException:
                version = ""

    def _saw(self, body: dict[str, Any], now: float) -> None:
        name, status = body["metadata"]["name"], body.get("status") or {}
        with self.lock:
            seen = self.seen.setdefault(name, Seen(created=now))
            for index, step in enumerate(status.get("steps") or []):
                state = step.get("state")
                if state in ("Running", "Succeeded", "Skipped", "Failed") and index not in seen._started:
                    seen._started.add(index)
                    if seen.first_running is None:
                        seen.first_running = now
                    if index - 1 in seen._ended:
                        seen.transitions.append(now - seen._ended[index - 1])
                if state in ("Succeeded", "Skipped") and index not in seen._ended:
                    seen._ended[index] = now
            seen.phase = status.get("phase", "")
            seen.reason = f"{status.get('reason', '')}: {status.get('message', '')}"[:200]
            seen.archived = bool(status.get("archived"))
            if seen.phase in FINISHED_PHASES and seen.finished is None:
                seen.finished = now

    def wait_finished(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                left = [n for n in names if self.seen.get(n, Seen()).finished is None]
            if not left:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{len(left)} operations still unfinished, e.g. {left[:3]}")

    def wait_archived(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                left = [n for n, s in self.seen.items() if not s.archived]
            if not left:
                return
            time.sleep(1)
        raise TimeoutError(f"{len(left)} operations still unarchived, e.g. {left[:3]}")

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()


class Usage:
    """CPU (share of one core) and RSS of processes, sampled every second in a thread."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.samples: list[tuple[float, dict[str, float], float]] = []  # time, cpu by name, operator RSS MB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = {n: p.cpu_times() for n, p in self.processes.items()}
        then = time.monotonic()
        while not self._stop.wait(1.0):
            now = time.monotonic()
            cpu = {}
            for name, process in self.processes.items():
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                cpu[name] = (times.user + times.system - last[name].user - last[name].system) / (now - then)
                last[name] = times
            rss = self.processes["operator"].memory_info().rss / 2**20 if "operator" in cpu else 0.0
            self.samples.append((now, cpu, rss))
            then = now

    def between(self, start: float, end: float, name: str) -> list[float]:
        return [cpu.get(name, 0.0) for at, cpu, _ in self.samples if start <= at <= end]

    def __enter__(self) -> Usage:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def cluster_pids(env: Environment) -> dict[str, int]:
    pids = env.cluster.kubeconfig.parent / "pids"
    return {name: int((pids / f"{name}.pid").read_text()) for name in ("kube-apiserver", "etcd")}


def add_nodes(core: client.CoreV1Api, count: int) -> None:
    existing = {n.metadata.name for n in core.list_node().items}
    for n in range(1, count + 1):
        if f"{NODE_PREFIX}{n}" not in existing:
            core.create_node(fake_node(f"{NODE_PREFIX}{n}", "scale", cpu="64", memory="256Gi", pods="250"))


def remove_nodes(core: client.CoreV1Api) -> None:
    for node in core.list_node().items:
        if node.metadata.name.startswith(NODE_PREFIX):
            core.delete_node(node.metadata.name)


def app(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {
            "image": "example.com/shop:1",
            "minReadySeconds": 0,
            "terminationGracePeriodSeconds": 0,
        },
    }


def database(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Database",
        "metadata": {"name": name},
        "spec": {
            "engine": "postgresql",
            "version": "16",
            "placement": {"nodeSelector": {"topology.kubernetes.io/zone": "scale"}},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
    }


def create_all(bosun: Bosun, manifests: list[dict[str, Any]], plural: str) -> None:
    for manifest in manifests:
        bosun.custom.create_namespaced_custom_object(GROUP, VERSION, bosun.namespace, plural, manifest)


def operation(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Operation",
        "metadata": {"name": name},
        "spec": {"target": {"kind": "App", "name": target}, "type": "restart"},
    }


def run(
    env: Environment,
    out: Path,
    nodes: int = 50,
    apps: int = 500,
    databases: int = 50,
    in_flight: tuple[int, ...] = (1, 50, 500),
    idle_seconds: float = 60.0,
    restart_seconds: float = 20.0,
    settle_seconds: float = 5.0,
    finished: int = 0,
) -> Report:
    report = Report("scale", "The operator at scale", out)
    core = env.core
    add_nodes(core, nodes)
    data: dict[str, Any] = {"nodes": nodes, "apps": apps, "databases": databases, "idle_seconds": idle_seconds,
                            "restart_seconds": restart_seconds}  # fmt: skip
    try:
        with env.namespace("bench-scale") as bosun, Watcher(env.api, bosun.namespace) as watcher:
            with env.operator() as operator, Usage({**cluster_pids(env), "operator": operator.process.pid}) as usage:
                began = time.monotonic()
                create_all(bosun, [app(f"app-{n}") for n in range(apps)], "apps")
                create_all(bosun, [database(f"db-{n}") for n in range(databases)], "databases")
                created = time.monotonic()
                first = _wait_first_operations(watcher, apps + databases, timeout=60 + 2 * (apps + databases))
                ended = time.monotonic()
                done = sorted(s.finished for s in first if s.finished)
                data["throughput"] = {
                    "operations": len(first),
                    "failed": sum(1 for s in first if s.phase != "Succeeded"),
                    "create_seconds": round(created - began, 1),
                    "seconds": round(ended - began, 1),
                    "per_minute": round(60 * len(first) / (ended - began), 1),
                    "operator_cpu": round(median(usage.between(began, ended, "operator")), 2),
                    "apiserver_cpu": round(median(usage.between(began, ended, "kube-apiserver")), 2),
                    "etcd_cpu": round(median(usage.between(began, ended, "etcd")), 2),
                }
                curve = [(t - began, i + 1) for i, t in enumerate(done)]
                if finished:
                    bulk = time.monotonic()
                    names = [f"gone-{n}" for n in range(finished)]
                    for name in names:  # their target does not exist: each fails at once, a record
                        bosun.custom.create_namespaced_custom_object(
                            GROUP, VERSION, bosun.namespace, "operations", operation(name, f"gone-{name}")
                        )
                    watcher.wait_finished(names, timeout=300 + finished)
                    took = time.monotonic() - bulk
                    # Latency is measured once the records are archived: during that backlog it
                    # measures the backlog (1 operation: 1.7 s in one run, 12.6 s in the next).
                    watcher.wait_archived(timeout=600 + finished / 10)
                    drained = time.monotonic() - bulk
                    data["finished"] = {"operations": finished, "seconds": round(took, 1),
                                        "per_minute": round(60 * finished / took, 1),
                                        "archived_seconds": round(drained, 1)}  # fmt: skip
                latency = {}
                for count in in_flight:
                    before = Scrape.of(env, operator)
                    count = min(count, apps)
                    names = [f"restart-{count}-{n}" for n in range(count)]
                    for name, target in zip(names, range(count), strict=True):
                        bosun.custom.create_namespaced_custom_object(
                            GROUP, VERSION, bosun.namespace, "operations", operation(name, f"app-{target}")
                        )
                        watcher.created(name, time.monotonic())
                    watcher.wait_finished(names, timeout=120 + 2 * count)
                    phase = Scrape.of(env, operator).since(before)
                    seen = [watcher.seen[n] for n in names]
                    starts = [s.first_running - s.created for s in seen if s.first_running]
                    transitions = [t for s in seen for t in s.transitions]
                    latency[count] = {
                        "start_p50": round(percentile(starts, 50), 3),
                        "start_p99": round(percentile(starts, 99), 3),
                        "transition_p50": round(percentile(transitions, 50), 3),
                        "transition_p99": round(percentile(transitions, 99), 3),
                        "failed": sum(1 for s in seen if s.phase != "Succeeded"),
                        "failures": sorted({s.reason for s in seen if s.phase != "Succeeded"}),
                        **phase,
                        "operator_cpu": round(median(usage.between(before.at, phase["ended_at"], "operator")), 2),
                        "apiserver_cpu": round(
                            median(usage.between(before.at, phase["ended_at"], "kube-apiserver")), 2
                        ),
                    }
                data["latency"] = latency
                loaded = time.monotonic()
                watcher.wait_archived(timeout=600 + len(watcher.seen) / 10)  # the last records' archives
                time.sleep(settle_seconds)  # settling: target statuses, the last label patches
                quiet = time.monotonic()
                time.sleep(idle_seconds)
                idle_cpu = usage.between(quiet, time.monotonic(), "operator")
                rss_loaded = max(r for _, _, r in usage.samples)
                data["idle"] = {
                    "archived_after_seconds": round(quiet - settle_seconds - loaded, 1),
                    "operator_cpu": round(mean(idle_cpu), 4),
                    "operator_cpu_max": round(max(idle_cpu), 4),
                    "apiserver_cpu": round(median(usage.between(quiet, time.monotonic(), "kube-apiserver")), 4),
                    "rss_mb_peak": round(rss_loaded, 1),
                    "rss_mb_idle": round(usage.samples[-1][2], 1),
                    "operations": len(watcher.seen),
                }
                data["etcd"] = held_bytes(env.api, bosun.namespace)
            with env.operator() as operator, Usage({"operator": operator.process.pid}) as usage:
                restarted = time.monotonic()
                time.sleep(restart_seconds + idle_seconds)
                steady = next(
                    (at - restarted for at, cpu, _ in usage.samples if cpu.get("operator", 1) < 0.05), float("nan")
                )
                data["startup"] = {
                    "steady_seconds": round(steady, 1),
                    "rss_mb": round(usage.samples[-1][2], 1),
                    "cpu_after": round(
                        mean(usage.between(restarted + restart_seconds, time.monotonic(), "operator")), 4
                    ),
                }
    finally:
        remove_nodes(core)
    report.data = data
    _write(report, data, curve)
    return report


TRANSITION = "bosun_step_transition_seconds"  # the operator's own: a step's end to the next one's start
LOOP_LAG = "bosun_event_loop_lag_seconds"  # how late the operator's event loop ran what was due
SLOT_WAIT = "bosun_run_slot_wait_seconds"  # how long operations whose turn had come waited for a run slot
GC_PAUSE = "bosun_gc_pause_seconds"  # the operator's garbage collector's pauses, by generation
SERVER_LATENCY = "apiserver_request_duration_seconds"  # the API server's own time per request
STATUS_WRITE = {"verb": "PATCH", "resource": "operations", "subresource": "status"}


def histogram(text: str, name: str, labels: dict[str, str] | None = None) -> dict[float, float]:
    """Cumulative bucket counts of a Prometheus histogram, by upper bound, summed over the series
    that carry every one of `labels`."""
    wanted = [f'{key}="{value}"' for key, value in (labels or {}).items()]
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{") and all(w in line for w in wanted):
            bound = float(line.split('le="', 1)[1].split('"', 1)[0])
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def counter(text: str, name: str, skip: dict[str, str]) -> float:
    """The sum of a counter's series, but those carrying any of `skip`'s labels."""
    unwanted = [f'{key}="{value}"' for key, value in skip.items()]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f"{name}{{") and not any(u in line for u in unwanted)
    )


def quantiles(before: dict[float, float], after: dict[float, float], prefix: str) -> dict[str, float]:
    """Count, p50 and p99 of what was observed between two scrapes, as the upper bound of their bucket."""
    delta = {bound: count - before.get(bound, 0.0) for bound, count in after.items()}
    total = delta.get(float("inf"), 0.0)

    def bound(q: float) -> float:
        return next((b for b in sorted(delta) if total and delta[b] >= q * total), float("nan"))

    return {f"{prefix}s": total, f"{prefix}_p50_max": bound(0.5), f"{prefix}_p99_max": bound(0.99)}


@dataclass
class Scrape:
    """The operator's and the API server's metrics, and the machine's CPU times, at one moment:
    two of them tell where a phase's time went."""

    at: float
    operator: str
    apiserver: str
    cpu: Any

    @classmethod
    def of(cls, env: Environment, operator: Any) -> Scrape:
        apiserver = env.cluster.kubectl("get", "--raw", "/metrics")
        return cls(time.monotonic(), operator.metrics(), apiserver, psutil.cpu_times())

    def since(self, before: Scrape) -> dict[str, float]:
        seconds = self.at - before.at
        busy = (sum(self.cpu) - self.cpu.idle - self.cpu.iowait) - (
            sum(before.cpu) - before.cpu.idle - before.cpu.iowait
        )
        requests = counter(self.apiserver, "apiserver_request_total", {"verb": "WATCH"}) - counter(
            before.apiserver, "apiserver_request_total", {"verb": "WATCH"}
        )
        return {
            "ended_at": self.at,
            "machine_cores_busy": round(busy / seconds, 2),
            "apiserver_requests_per_second": round(requests / seconds, 1),
            **self._operator(before, TRANSITION, "engine_transition"),
            **self._operator(before, LOOP_LAG, "loop_lag"),
            **self._operator(before, SLOT_WAIT, "slot_wait"),
            **self._operator(before, GC_PAUSE, "full_gc", {"generation": "2"}),
            **quantiles(
                histogram(before.apiserver, SERVER_LATENCY, STATUS_WRITE),
                histogram(self.apiserver, SERVER_LATENCY, STATUS_WRITE),
                "status_write",
            ),
        }

    def _operator(
        self, before: Scrape, name: str, prefix: str, labels: dict[str, str] | None = None
    ) -> dict[str, float]:
        return quantiles(histogram(before.operator, name, labels), histogram(self.operator, name, labels), prefix)


def _wait_first_operations(watcher: Watcher, count: int, timeout: float) -> list[Seen]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with watcher.lock:
            seen = list(watcher.seen.values())
        if len(seen) >= count and all(s.finished for s in seen):
            return seen
        time.sleep(1)
    raise TimeoutError(f"{sum(1 for s in seen if s.finished)} of {count} first operations finished in {timeout:.0f}s")


def _json_sizes(pages: Any) -> tuple[int, int, dict[str, int]]:
    """Objects, bytes, and bytes by label class of every object the pages hold."""
    count, total = 0, 0
    by_class: dict[str, int] = {}
    for page in pages:
        for item in page.get("items") or []:
            size = len(json.dumps(item, separators=(",", ":")))
            labels = (item.get("metadata") or {}).get("labels") or {}
            kind = ("log copies" if labels.get("app.kubernetes.io/component") == "operation-log"
                    else "activity reports" if labels.get(REPORT_LABEL) else "other")  # fmt: skip
            by_class[kind] = by_class.get(kind, 0) + size
            count, total = count + 1, total + size
    return count, total, by_class


def _pages(fetch: Any) -> Any:
    token = ""
    while True:
        page = fetch(token)
        yield page
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return


def held_bytes(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """What Bosun keeps in etcd for the namespace, by kind: each object's JSON as the API server
    serves it (custom resources are stored as JSON; ConfigMaps as protobuf, a little smaller)."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    held: dict[str, Any] = {}
    for plural in ("apps", "databases", "operations"):

        def objects(token: str, plural: str = plural) -> dict[str, Any]:
            return dict(
                custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, limit=500, _continue=token or None
                )
            )

        count, total, _ = _json_sizes(_pages(objects))
        held[plural] = {"objects": count, "bytes": total}

    def config_maps(token: str) -> dict[str, Any]:
        answer = core.list_namespaced_config_map(namespace, limit=500, _continue=token or None, _preload_content=False)
        return dict(json.loads(answer.data))

    count, total, by_class = _json_sizes(_pages(config_maps))
    held["configmaps"] = {"objects": count, "bytes": total, **{k: v for k, v in sorted(by_class.items())}}
    held["total_bytes"] = sum(v["bytes"] for v in held.values() if isinstance(v, dict))
    return held


def _write(report: Report, data: dict[str, Any], curve: list[tuple[float, int]]) -> None:
    t, idle, start = data["throughput"], data["idle"], data["startup"]
    report.say(
        f"{data['apps']} Apps and {data['databases']} Databases created at once on {data['nodes']} fake nodes; "
        "each one's first operation (deploy, provision) runs."
    )
    if "finished" in data:
        f = data["finished"]
        report.say(
            f"Then {f['operations']} Operations whose target does not exist (each fails at once and stays a "
            f"record): {f['seconds']} s, {f['per_minute']} per minute; all archived after "
            f"{f.get('archived_seconds', 'n/a')} s. The latency phases start after that."
        )
    report.table(
        ["operations", "failed", "took (s)", "per minute", "operator CPU", "API server CPU", "etcd CPU"],
        [[t["operations"], t["failed"], t["seconds"], t["per_minute"], t["operator_cpu"], t["apiserver_cpu"],
          t["etcd_cpu"]]],
    )  # fmt: skip
    report.say(
        "CPU is the median share of one core while it ran. Engine latency, restarts started at once. "
        "Step → next, as a watching client sees it, is 0 when both land in one status write; the "
        "operator's own figure (`bosun_step_transition_seconds`: a step's end to the next one's start, "
        "the write between them included) is given as the upper bound of its histogram bucket:"
    )
    report.table(
        ["in flight", "created → first step p50 (s)", "p99 (s)", "step → next p50 (s)", "p99 (s)",
         "operator: step → next p50 (≤ s)", "p99 (≤ s)", "failed"],
        [[k, v["start_p50"], v["start_p99"], v["transition_p50"], v["transition_p99"],
          v.get("engine_transition_p50_max", "n/a"), v.get("engine_transition_p99_max", "n/a"), v["failed"]]
         for k, v in data["latency"].items()],
    )  # fmt: skip
    report.say(
        "Where the time went in each latency phase: the whole machine's CPU (cores busy, of "
        f"{psutil.cpu_count()}), the API server's requests per second (watches excluded) and its own "
        "time for the operator's status writes (`apiserver_request_duration_seconds`, PATCH "
        "operations/status), how late the operator's event loop ran what was due "
        "(`bosun_event_loop_lag_seconds`), and how long operations whose turn had come waited for a "
        "run slot (`bosun_run_slot_wait_seconds`), and the operator's full garbage collections "
        "(`bosun_gc_pause_seconds`, generation 2: how many, and their p99); histogram figures are "
        "bucket upper bounds:"
    )
    report.table(
        ["in flight", "machine cores busy", "API requests/s", "status write p50 (≤ s)", "p99 (≤ s)",
         "loop lag p50 (≤ s)", "p99 (≤ s)", "slot wait p50 (≤ s)", "p99 (≤ s)", "full GCs", "p99 (≤ s)", "operator CPU",
         "API server CPU"],
        [[k, v.get("machine_cores_busy", "n/a"), v.get("apiserver_requests_per_second", "n/a"),
          v.get("status_write_p50_max", "n/a"), v.get("status_write_p99_max", "n/a"),
          v.get("loop_lag_p50_max", "n/a"), v.get("loop_lag_p99_max", "n/a"),
          v.get("slot_wait_p50_max", "n/a"), v.get("slot_wait_p99_max", "n/a"),
          v.get("full_gcs", "n/a"), v.get("full_gc_p99_max", "n/a"),
          v.get("operator_cpu", "n/a"), v.get("apiserver_cpu", "n/a")]
         for k, v in data["latency"].items()],
    )  # fmt: skip
    for count, figures in data["latency"].items():
        for failure in figures.get("failures", []):
            report.say(f"- failed with {count} in flight: {failure}")
    report.say(
        f"Footprint: operator CPU is the mean share of one core over {data.get('idle_seconds', 30)} s (periodic "
        "work included: heartbeat every 20 s, memory trimmed every 60 s), after every Operation is archived; "
        f"after a restart, over the {data.get('idle_seconds', 30)} s that follow its first "
        f"{data.get('restart_seconds', 20)} s."
    )
    report.table(
        ["footprint", "operator CPU (core)", "RSS (MB)", "other"],
        [
            ["idle, everything in place", idle["operator_cpu"], idle["rss_mb_idle"],
             f"{idle['operations']} Operations, all archived {idle.get('archived_after_seconds', 'n/a')} s after "
             f"the last phase; peak RSS {idle['rss_mb_peak']} MB; max CPU {idle['operator_cpu_max']}"],
            ["after a restart", start["cpu_after"], start["rss_mb"], f"steady after {start['steady_seconds']} s"],
        ],
    )  # fmt: skip
    if "etcd" in data:
        held = data["etcd"]
        report.say(
            "What Bosun keeps in etcd for the namespace, by kind (each object's JSON as the API server serves "
            "it; ConfigMaps are stored as protobuf, a little smaller). Log copies go "
            "`logRetentionDays` after their last line, finished Operations `operationRetentionDays` after they "
            "end (both once archived in the store, which keeps everything for its own lifecycle):"
        )
        report.table(
            ["kind", "objects", "MB"],
            [[kind, held[kind]["objects"], round(held[kind]["bytes"] / 1e6, 2)]
             for kind in ("apps", "databases", "operations", "configmaps")]
            + [["all of it", "", round(held["total_bytes"] / 1e6, 2)]],
        )  # fmt: skip
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot([c[0] for c in curve], [c[1] for c in curve])
    left.set(xlabel="seconds since the objects were created", ylabel="operations finished", title="Throughput")
    counts = list(data["latency"])
    right.plot(counts, [data["latency"][k]["start_p99"] for k in counts], "o-", label="created → first step, p99")
    right.plot(counts, [data["latency"][k]["transition_p99"] for k in counts], "o-", label="step → next step, p99")
    right.set(xscale="log", xlabel="operations in flight", ylabel="seconds", title="Engine latency")
    right.legend(fontsize=8)
    report.plot(figure)


def main(env: Environment, argv: list[str], out: Path) -> Report:
    options = argparse.ArgumentParser(prog="benchmarks scale", description=__doc__.splitlines()[0])
    options.add_argument("--nodes", type=int, default=50)
    options.add_argument("--apps", type=int, default=500)
    options.add_argument("--databases", type=int, default=50)
    options.add_argument("--in-flight", default="1,50,500")
    options.add_argument("--idle-seconds", type=float, default=60.0)
    options.add_argument(
        "--settle-seconds", type=float, default=5.0, help="pause between the last archive and the idle minute"
    )
    options.add_argument("--finished", type=int, default=0, help="extra Operations that fail at once (records)")
    args = options.parse_args(argv)
    counts = tuple(int(c) for c in args.in_flight.split(","))
    return run(
        env, out, args.nodes, args.apps, args.databases, counts, args.idle_seconds,
        finished=args.finished, settle_seconds=args.settle_seconds,
    )  # fmt: skip
