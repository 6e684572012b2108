"""API faults: every operation type with a seeded 10 % of the operator's API requests failing
(500, 429, 409, a 500 after the write went through, latency, watch streams cut)."""

from __future__ import annotations

import random
from collections.abc import Callable

from tests.faults.crash import SCENARIOS, Scenario, run_scenario
from tests.faults.harness import Case, World
from tests.support.fault_proxy import FaultProxy

RATE = 0.10


def _run(scenario: Scenario) -> Callable[[World, random.Random, str], list[str]]:
    def run(world: World, rng: random.Random, namespace: str) -> list[str]:
        proxy = world.state["proxy"]
        assert isinstance(proxy, FaultProxy)
        proxy.rng = random.Random(rng.random())
        # No kill: the faults are the proxy's; the trigger only marks the operation's start.
        violations = run_scenario(
            world, namespace, scenario, {"after": 0.0, "what": "start"}, action=lambda w: lambda: None,
            operator_key="api-operator",
        )  # fmt: skip
        return violations

    return run


def cases() -> list[Case]:
    return [Case("api", f"api/{s.name}", _run(s)) for s in SCENARIOS]
