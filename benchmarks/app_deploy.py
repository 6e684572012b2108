"""App deploy: the time to deploy N replicas, and the fewest ready endpoints while a new release rolls out.

    .venv/bin/python -m benchmarks deploy [--replicas 20] [--min-ready-seconds 5]

An App with one web process of N replicas and a port: its first deploy (from nothing to N ready),
then a new image. A thread counts the Service's ready endpoints every 50 ms during the second
deploy: zero downtime means the count never falls below N.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support.bosun_objects import GROUP, VERSION, Bosun
from tests.support.databases import ops_of
from tests.support.endpoints import Sampler
from tests.support.waiting import wait_for

from benchmarks.common import Environment, Report, pyplot, seconds_between


def manifest(replicas: int, image: str, min_ready: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "App",
        "metadata": {"name": "web"},
        "spec": {
            "image": image,
            "minReadySeconds": min_ready,
            "terminationGracePeriodSeconds": 1,
            "processes": [{"name": "web", "replicas": replicas, "ports": [{"port": 8080}]}],
        },
    }


def deploy(bosun: Bosun, body: dict[str, Any], count: int) -> dict[str, Any]:
    bosun.apply(body)
    found = wait_for(lambda: [*ops_of(bosun, "web", "deploy")][count - 1 :], what=f"deploy {count}")
    name = found[0]
    status = bosun.wait_phase(name, timeout=900)
    if status["phase"] != "Succeeded":
        raise RuntimeError(f"deploy {count} ended {status['phase']}: {status.get('message')}")
    return status


def ready_endpoints(bosun: Bosun, service: str) -> Sampler[tuple[float, int]]:
    discovery = client.DiscoveryV1Api(bosun.core.api_client)

    def count() -> tuple[float, int]:
        slices = discovery.list_namespaced_endpoint_slice(
            bosun.namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items
        return time.monotonic(), sum(
            1 for s in slices for e in s.endpoints or [] if e.conditions and e.conditions.ready
        )

    return Sampler(count)


def run(env: Environment, out: Path, replicas: int = 20, min_ready: int = 5) -> Report:
    report = Report("deploy", "App deploy: time and ready endpoints", out)
    with env.operator(), env.namespace("bench-deploy") as bosun:
        first = deploy(bosun, manifest(replicas, "example.com/web:1", min_ready), 1)
        service = next(s.metadata.name for s in bosun.core.list_namespaced_service(bosun.namespace).items)
        wait_for(lambda: ready_endpoints_now(bosun, service) >= replicas, what="every replica behind the Service")
        with ready_endpoints(bosun, service) as sampler:
            second = deploy(bosun, manifest(replicas, "example.com/web:2", min_ready), 2)
    counts = [n for _, n in sampler.samples]
    dips = below(sampler.samples, replicas)
    data = {
        "replicas": replicas,
        "min_ready_seconds": min_ready,
        "first_deploy_seconds": seconds_between(first["startedAt"], first["finishedAt"]),
        "new_release_seconds": seconds_between(second["startedAt"], second["finishedAt"]),
        "fewest_ready": min(counts),
        "most_ready": max(counts),
        "dips_below_replicas": len(dips),
        "seconds_below_replicas": round(sum(dips), 2),
        "samples": len(counts),
    }
    report.data = data
    report.table(
        ["replicas", "first deploy (s)", "new release (s)", "fewest ready during it", "time below N (s)", "samples"],
        [[replicas, data["first_deploy_seconds"], data["new_release_seconds"], data["fewest_ready"],
          f"{data['seconds_below_replicas']} in {len(dips)} dips", len(counts)]],
    )  # fmt: skip
    report.say(f"minReadySeconds {min_ready}: a new pod must stay Ready that long before an old one stops.")
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 3))
    start = sampler.samples[0][0] if sampler.samples else 0.0
    axis.plot([t - start for t, _ in sampler.samples], counts)
    axis.axhline(replicas, color="k", linestyle="--", label=f"{replicas} replicas")
    axis.set(xlabel="seconds", ylabel="ready endpoints", title="Ready endpoints during a new release", ylim=(0, None))
    axis.legend()
    report.plot(figure)
    return report


def below(samples: list[tuple[float, int]], replicas: int) -> list[float]:
    """How long each stretch of samples with fewer than `replicas` ready endpoints lasted."""
    dips, since = [], None
    for at, count in samples:
        if count < replicas and since is None:
            since = at
        elif count >= replicas and since is not None:
            dips.append(at - since)
            since = None
    return dips


def ready_endpoints_now(bosun: Bosun, service: str) -> int:
    sampler = ready_endpoints(bosun, service)
    return sampler.probe()[1]


def main(env: Environment, argv: list[str], out: Path) -> Report:
    options = argparse.ArgumentParser(prog="benchmarks deploy", description=__doc__.splitlines()[0])
    options.add_argument("--replicas", type=int, default=20)
    options.add_argument("--min-ready-seconds", type=int, default=5)
    args = options.parse_args(argv)
    return run(env, out, args.replicas, args.min_ready_seconds)
