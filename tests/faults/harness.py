"""Cases, their seeded selection, and the results table.

A case is a named function of a seeded random generator and a fresh namespace. It drives the
cluster into a fault and returns the invariant violations it found (an empty list: it converged).
Every case id is stable, so `hack/faults --case ID --seed N` re-runs one failing case alone.
"""

from __future__ import annotations

import random
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kubernetes import client

from tests.support.cluster import LocalCluster


@dataclass
class World:
    """What every case gets: the cluster, an API client, and the operator process(es) of its category."""

    cluster: LocalCluster
    api: client.ApiClient
    state: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    category: str
    id: str
    run: Callable[[World, random.Random, str], list[str]]


@dataclass
class Outcome:
    case: Case
    violations: list[str]
    seconds: float

    @property
    def converged(self) -> bool:
        return not self.violations


@contextmanager
def fresh_namespace(api: client.ApiClient, prefix: str) -> Iterator[str]:
    core = client.CoreV1Api(api)
    stem = re.sub(r"[^a-z0-9]+", "-", prefix.lower())[-40:].strip("-")
    name = f"f-{stem}-{uuid.uuid4().hex[:5]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"bosun.dev/faults": "1"})))
    for _ in range(60):  # the ServiceAccount controller must have made `default` before pods are created
        if core.list_namespaced_service_account(name).items:
            break
        time.sleep(0.25)
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def run_case(world: World, case: Case, seed: int) -> Outcome:
    rng = random.Random(f"{seed}:{case.id}")
    started = time.monotonic()
    try:
        with fresh_namespace(world.api, case.id) as namespace:
            violations = case.run(world, rng, namespace)
    except Exception as error:  # a broken case is a finding too, never a crash of the harness
        violations = [f"case raised {type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"]
    return Outcome(case, violations, time.monotonic() - started)


def select(
    cases: list[Case], *, seed: int, per_category: int | None, only: set[str], case_id: str | None
) -> list[Case]:
    """Every case, or a seeded sample of `per_category` from each category."""
    chosen = [c for c in cases if (not only or c.category in only) and (case_id is None or c.id == case_id)]
    if per_category is None:
        return chosen
    rng = random.Random(seed)
    sample: list[Case] = []
    for category in dict.fromkeys(c.category for c in chosen):
        mine = [c for c in chosen if c.category == category]
        sample.extend(rng.sample(mine, min(per_category, len(mine))))
    return sample


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| category | cases | converged | invariant violations | slowest convergence |",
        "| --- | --- | --- | --- | --- |",
    ]
    for category in dict.fromkeys(o.case.category for o in outcomes):
        mine = [o for o in outcomes if o.case.category == category]
        slowest = max(mine, key=lambda o: o.seconds)
        lines.append(
            f"| {category} | {len(mine)} | {sum(o.converged for o in mine)} | "
            f"{sum(len(o.violations) for o in mine)} | {slowest.seconds:.1f} s ({slowest.case.id}) |"
        )
    total = sum(len(o.violations) for o in outcomes)
    lines.append(f"| all | {len(outcomes)} | {sum(o.converged for o in outcomes)} | {total} | |")
    return "\n".join(lines)
