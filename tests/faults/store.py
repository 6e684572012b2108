"""Store loss: the S3-compatible log store (SeaweedFS, objects on disk) is SIGKILLed in the middle
of an operation and started again; and the same with the operator SIGKILLed while the store is
down. No log line status showed may be missing from the store afterwards, and every operation
must still reach the activity record."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from tests.faults.crash import SCENARIOS, Scenario, operator_of, run_scenario, step_running
from tests.faults.harness import Case, World
from tests.support.s3_server import SeaweedFS

DOWN_SECONDS = 8.0


def _store(world: World) -> SeaweedFS:
    store = world.state["seaweed"]
    assert isinstance(store, SeaweedFS)
    return store


def lose_store(then_kill_operator: bool) -> Callable[[World], Callable[[], None]]:
    def action(world: World) -> Callable[[], None]:
        def act() -> None:
            _store(world).kill()
            if then_kill_operator:  # before the trigger returns, so the harness restarts it (store still down)
                time.sleep(1.0)
                operator_of(world).kill()
            threading.Timer(DOWN_SECONDS, lambda: _store(world).start()).start()

        return act

    return action


def store_back(world: World) -> None:
    store = _store(world)
    if store.process is None or store.process.poll() is not None:
        store.start()


def _scenario(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)


def _run(scenario: Scenario, step: str, then_kill_operator: bool) -> Callable[[World, random.Random, str], list[str]]:
    def run(world: World, rng: random.Random, namespace: str) -> list[str]:
        point = {"when": step_running(step), "what": f"store lost at step {step}"}
        return run_scenario(
            world, namespace, scenario, point, action=lose_store(then_kill_operator), recover=store_back,
            operator_key="store-operator",
        )  # fmt: skip

    return run


def cases() -> list[Case]:
    return [
        Case("store", "store/db-redeploy/killed-at-stop-old", _run(_scenario("db-redeploy"), "stop-old", False)),
        Case("store", "store/db-provision/killed-at-volume", _run(_scenario("db-provision"), "volume", False)),
        Case("store", "store/app-deploy/killed-at-roll-out", _run(_scenario("app-deploy"), "roll-out", False)),
        Case(
            "store", "store/db-redeploy/killed-then-operator-killed", _run(_scenario("db-redeploy"), "pre-pull", True)
        ),
        Case(
            "store", "store/app-restart/killed-then-operator-killed", _run(_scenario("app-restart"), "roll-out", True)
        ),
    ]
