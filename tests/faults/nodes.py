"""Node loss: a node goes NotReady (KWOK's chaos stage) in the middle of an operation: the source
or the target of a database move, or a node running an App's pods during a deploy."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from kubernetes import client

from tests.faults.crash import SCENARIOS, Scenario, run_scenario, step_running
from tests.faults.harness import Case, World
from tests.support.databases import HOME, NEIGHBOUR
from tests.support.waiting import wait_for

NOT_READY = "node-not-ready.stage.kwok.x-k8s.io"


def _ready(api: client.ApiClient, node: str) -> bool:
    """Ready, and the node controller's not-ready/unreachable taints gone (a move refuses a tainted node)."""
    found = client.CoreV1Api(api).read_node(node)
    ready = any(c.type == "Ready" and c.status == "True" for c in found.status.conditions or [])
    tainted = any(t.key.startswith("node.kubernetes.io/") for t in found.spec.taints or [])
    return ready and not tainted


def lose(node: str) -> Callable[[World], Callable[[], None]]:
    return lambda world: (
        lambda: client.CoreV1Api(world.api).patch_node(node, {"metadata": {"labels": {NOT_READY: "true"}}})
    )


def recover(node: str) -> Callable[[World], None]:
    def back(world: World) -> None:
        client.CoreV1Api(world.api).patch_node(node, {"metadata": {"labels": {NOT_READY: None}}})
        wait_for(lambda: _ready(world.api, node), timeout=120, what=f"node {node} Ready and untainted again")

    return back


def _scenario(name: str) -> Scenario:
    """A crash scenario without its ready-endpoints floor: a lost node takes its pods' endpoints along."""
    return dataclasses.replace(next(s for s in SCENARIOS if s.name == name), serving=0)


def _run(scenario: Scenario, node: str, step: str) -> Callable[[World, random.Random, str], list[str]]:
    def run(world: World, rng: random.Random, namespace: str) -> list[str]:
        point = {"when": step_running(step), "what": f"node {node} lost at step {step}"}
        return run_scenario(world, namespace, scenario, point, action=lose(node), recover=recover(node))

    return run


def cases() -> list[Case]:
    redeploy, deploy = _scenario("db-redeploy"), _scenario("app-deploy")
    return [
        Case("node", "node/db-redeploy/target-lost-at-pre-pull", _run(redeploy, NEIGHBOUR, "pre-pull")),
        Case("node", "node/db-redeploy/target-lost-at-stop-old", _run(redeploy, NEIGHBOUR, "stop-old")),
        Case("node", "node/db-redeploy/source-lost-at-stop-old", _run(redeploy, HOME, "stop-old")),
        Case("node", "node/db-redeploy/source-lost-at-check", _run(redeploy, HOME, "check-target")),
        Case("node", "node/app-deploy/app-node-lost-at-roll-out", _run(deploy, HOME, "roll-out")),
        Case("node", "node/db-restart/home-lost-at-stop", _run(_scenario("db-restart"), HOME, "stop")),
    ]
