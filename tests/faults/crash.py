"""Crash anywhere: SIGKILL the operator at every step of every operation type, at seeded random
moments inside steps, and in the middle of a rollback; restart it; check the end state.

The kill comes from a watch: the moment the operation's status shows the chosen step Running (or
a step Undoing, for a rollback), or a seeded delay after the operation was created.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from bosun.models.names import DATABASE_LABEL, GROUP, VERSION
from bosun.operations.app import DEPROVISION as APP_DEPROVISION
from bosun.operations.app import RELEASE
from bosun.operations.database_steps import (
    DEPROVISION_DELETE_BACKUP_FIRST,
    DEPROVISION_RETAIN,
    MOVE,
    PROVISION,
    RESIZE_BACKUP_FIRST,
    RESTART,
)
from tests.faults import invariants as check
from tests.faults.harness import Case, World
from tests.support.bosun_objects import Bosun
from tests.support.databases import NEIGHBOUR, database_manifest, ops_of, provision
from tests.support.endpoints import AttachedNodes, ReadyEndpoints, Sampler
from tests.support.operator_process import OperatorProcess
from tests.support.pod_policy import FAIL_LABEL, pod_policy
from tests.support.waiting import wait_for

SETTLE_SECONDS = 240


class Trigger:
    """Does `action` (SIGKILL the operator, say) once `when(operation body)` holds for an operation of
    `type_`, or a delay after that operation was first seen."""

    def __init__(
        self,
        bosun: Bosun,
        action: Callable[[], None],
        type_: str,
        when: Callable[[dict[str, Any]], bool] | None = None,
        after: float | None = None,
    ) -> None:
        self.bosun, self.action, self.type_, self.when, self.after = bosun, action, type_, when, after
        self.killed = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _kill(self) -> None:
        with self._lock:
            if not self.killed.is_set():
                self.action()
                self.killed.set()

    def _run(self) -> None:
        deadline = time.monotonic() + 180
        while not self._stopped.is_set() and time.monotonic() < deadline:
            try:  # a watch the API server ends early is opened again: the fault point must not be missed
                if self._watch_once():
                    break
            except (ProtocolError, ApiException, OSError):
                time.sleep(0.2)
        self._watch.stop()

    def _watch_once(self) -> bool:
        """Watch until the point is reached (True) or the stream ends (False)."""
        self._watch = watch.Watch()
        stream = self._watch.stream(
            self.bosun.custom.list_namespaced_custom_object, GROUP, VERSION, self.bosun.namespace, "operations",
            timeout_seconds=60,
        )  # fmt: skip
        for event in stream:
            body: dict[str, Any] = event["object"]
            if body["spec"]["type"] != self.type_:
                continue
            if self.after is not None:
                timer = threading.Timer(self.after, self._kill)
                timer.daemon = True
                timer.start()
                self.after = None  # armed once, from the operation's first sight
                if self.when is None:
                    return True
            if self.when is not None and self.when(body):
                self._kill()
                return True
        return False

    def __enter__(self) -> Trigger:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._watch.stop()
        self._thread.join(timeout=5)


def step_running(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: any(
        s["name"] == name and s["state"] == "Running" for s in (body.get("status") or {}).get("steps") or []
    )


def undoing(body: dict[str, Any]) -> bool:
    return any(s["state"] == "Undoing" for s in (body.get("status") or {}).get("steps") or [])


@dataclass(frozen=True)
class Scenario:
    name: str
    type_: str
    steps: list[str]
    prepare: Callable[[World, Bosun], None]
    start: Callable[[Bosun], None]
    verify: Callable[[World, Bosun, list[dict[str, Any]]], list[str]]
    failing: str = ""  # a pod_policy condition that makes the operation fail, for a rollback
    probe: dict[str, Any] = field(default_factory=dict)  # a pod the condition matches
    serving: int = 0  # ready endpoints of shop-web that must never be fewer during the operation
    attached: bool = False  # sample the database volume's attachments
    extra: dict[str, Any] = field(default_factory=dict)


# Apps ------------------------------------------------------------------------------------------


SHOP = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "App",
    "metadata": {"name": "shop"},
    "spec": {
        "image": "example.com/shop:1",
        "processes": [{"name": "web", "replicas": 2, "ports": [{"port": 8080}]}],
    },
}


def prepare_shop(world: World, bosun: Bosun) -> None:
    bosun.apply(SHOP)
    first = wait_for(lambda: ops_of(bosun, "shop", "deploy"), what="the first deploy")[0]
    assert bosun.wait_phase(first, timeout=120)["phase"] == "Succeeded"
    wait_for(lambda: _ready(world, bosun.namespace) >= 2, timeout=60, what="shop-web serving")


def _ready(world: World, namespace: str) -> int:
    slices = client.DiscoveryV1Api(world.api).list_namespaced_endpoint_slice(
        namespace, label_selector="kubernetes.io/service-name=shop-web"
    )
    return sum(1 for s in slices.items for e in s.endpoints or [] if e.conditions and e.conditions.ready)


def app_op(type_: str, **parameters: Any) -> Callable[[Bosun], None]:
    def start(bosun: Bosun) -> None:
        spec: dict[str, Any] = {"parameters": parameters} if parameters else {}
        bosun.operation(f"crash-{type_}", "shop", type_, **spec)

    return start


def verify_shop(replicas_if_done: int | None) -> Callable[[World, Bosun, list[dict[str, Any]]], list[str]]:
    def verify(world: World, bosun: Bosun, ops: list[dict[str, Any]]) -> list[str]:
        mine = [o for o in ops if o["metadata"]["name"].startswith("crash-")]
        done = bool(mine) and mine[0]["status"]["phase"] == "Succeeded"
        if replicas_if_done == 0 and done:
            return check.app_workloads(world.api, bosun.namespace, "shop", {})
        return check.app_workloads(world.api, bosun.namespace, "shop", {"web": replicas_if_done if done else 2})

    return verify


def _probe(labels: dict[str, str], image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }


RELEASE_STEPS = [s.name for s in RELEASE.steps]
APP_SCENARIOS = [
    Scenario("app-deploy", "deploy", RELEASE_STEPS, prepare_shop, app_op("deploy", image="example.com/shop:2"),
             verify_shop(2), failing="object.spec.containers[0].image == 'example.com/shop:2'", serving=2,
             probe=_probe({}, "example.com/shop:2")),
    Scenario("app-configure", "configure", RELEASE_STEPS, prepare_shop,
             app_op("configure", env=[{"name": "MODE", "value": "fast"}]), verify_shop(2), serving=2),
    Scenario("app-scale", "scale", RELEASE_STEPS, prepare_shop,
             app_op("scale", processes=[{"name": "web", "replicas": 3}]), verify_shop(3), serving=2),
    Scenario("app-restart", "restart", RELEASE_STEPS, prepare_shop, app_op("restart"), verify_shop(2), serving=2),
    Scenario("app-deprovision", "deprovision", [s.name for s in APP_DEPROVISION.steps], prepare_shop,
             app_op("deprovision"), verify_shop(0)),
]  # fmt: skip


# Databases -------------------------------------------------------------------------------------


def prepare_pg(world: World, bosun: Bosun) -> None:
    assert provision(bosun, database_manifest())["phase"] == "Succeeded"


def prepare_pg_deleting(world: World, bosun: Bosun) -> None:
    """A Database whose deprovision deletes its volume (the default keeps it)."""
    manifest = database_manifest()
    manifest["spec"]["storage"] = {"reclaim": "Delete"}
    assert provision(bosun, manifest)["phase"] == "Succeeded"


def db_op(type_: str, **parameters: Any) -> Callable[[Bosun], None]:
    def start(bosun: Bosun) -> None:
        bosun.apply(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Operation",
                "metadata": {"name": f"crash-{type_}"},
                "spec": {"target": {"kind": "Database", "name": "pg"}, "type": type_,
                         **({"parameters": parameters} if parameters else {})},
            }
        )  # fmt: skip

    return start


def verify_pg(world: World, bosun: Bosun, ops: list[dict[str, Any]]) -> list[str]:
    gone = any(o["spec"]["type"] == "deprovision" and o["status"]["phase"] == "Succeeded" for o in ops) or not any(
        o["spec"]["type"] == "provision" and o["status"]["phase"] == "Succeeded" for o in ops
    )
    if gone and any(o["spec"]["type"] == "provision" for o in ops):
        return check.database_single(world.api, bosun.namespace, "pg", exists=False)
    return check.database_single(world.api, bosun.namespace, "pg", exists=True)


def nothing(world: World, bosun: Bosun) -> None:
    return None


DB_SCENARIOS = [
    Scenario("db-provision", "provision", [s.name for s in PROVISION.steps], nothing,
             lambda bosun: bosun.apply(database_manifest()), verify_pg,
             failing=f"has(object.metadata.labels) && object.metadata.labels['{DATABASE_LABEL}'] == 'pg'",
             probe=_probe({DATABASE_LABEL: "pg"}, "postgres:16")),
    Scenario("db-restart", "restart", [s.name for s in RESTART.steps], prepare_pg, db_op("restart"), verify_pg,
             attached=True),
    Scenario("db-scale", "scale", [s.name for s in RESTART.steps], prepare_pg,
             db_op("scale", resources={"requests": {"cpu": "250m", "memory": "1Gi"}}), verify_pg, attached=True),
    Scenario("db-redeploy", "redeploy", [s.name for s in MOVE.steps], prepare_pg, db_op("redeploy", node=NEIGHBOUR),
             verify_pg, attached=True),
    Scenario("db-resize", "resize", [s.name for s in RESIZE_BACKUP_FIRST.steps], prepare_pg,
             db_op("resize", volumeSize="5Gi"), verify_pg, attached=True),
    Scenario("db-deprovision", "deprovision", [s.name for s in DEPROVISION_RETAIN.steps], prepare_pg,
             db_op("deprovision"), verify_pg),
    Scenario("db-deprovision-delete", "deprovision", [s.name for s in DEPROVISION_DELETE_BACKUP_FIRST.steps],
             prepare_pg_deleting, db_op("deprovision"), verify_pg),
]  # fmt: skip

SCENARIOS = APP_SCENARIOS + DB_SCENARIOS


# Running a case ---------------------------------------------------------------------------------


def operator_of(world: World) -> OperatorProcess:
    """The running operator of the current case's category; every other category's is stopped
    (each watches all namespaces: two would both act on one operation)."""
    key = str(world.state.get("operator-key", "crash-operator"))
    for other, process in world.state.items():
        alive = isinstance(process, OperatorProcess) and process.process is not None and process.process.poll() is None
        if other != key and alive:
            assert isinstance(process, OperatorProcess)
            process.stop(timeout=30)
    operator = world.state[key]
    assert isinstance(operator, OperatorProcess)
    if operator.process is None or operator.process.poll() is not None:
        operator.start()
    return operator


def kill_operator(world: World) -> Callable[[], None]:
    return lambda: operator_of(world).kill()


def run_scenario(
    world: World,
    namespace: str,
    scenario: Scenario,
    killer: dict[str, Any],
    action: Callable[[World], Callable[[], None]] = kill_operator,
    recover: Callable[[World], None] | None = None,
    operator_key: str = "crash-operator",
) -> list[str]:
    world.state["operator-key"] = operator_key
    operator_of(world)
    bosun = Bosun(world.api, world.cluster, namespace)
    scenario.prepare(world, bosun)
    samplers: list[tuple[Sampler[Any], Callable[[list[Any]], list[str]]]] = []
    if scenario.serving:
        endpoints = ReadyEndpoints(world.api, namespace, "shop-web")
        samplers.append((endpoints, lambda s: check.never_below(s, scenario.serving, "shop-web")))
    if scenario.attached:
        volume = bosun.get("databases", "pg")["status"]["volume"]["volumeName"]
        samplers.append((AttachedNodes(world.api, volume), check.never_double_attached))
    for sampler, _ in samplers:
        sampler.__enter__()
    violations: list[str] = []
    try:
        policy = (
            pod_policy(world.cluster, world.api, namespace, scenario.failing, scenario.probe, labels=FAIL_LABEL)
            if killer.get("rollback")
            else None
        )
        if policy is not None:
            policy.__enter__()
        try:
            with Trigger(bosun, action(world), scenario.type_, killer.get("when"), killer.get("after")) as kill:
                scenario.start(bosun)
                if not kill.killed.wait(timeout=120):
                    violations.append(f"the fault point was never reached ({killer.get('what')})")
            operator_of(world)  # restarted if killed: it resumes from status
            ops, late = check.settle(world.api, namespace, SETTLE_SECONDS)
            violations += late
        finally:
            if policy is not None:
                policy.__exit__(None, None, None)
            if recover is not None:
                recover(world)
    finally:
        for sampler, _ in samplers:
            sampler.__exit__()
    for sampler, judge in samplers:
        violations += sampler.problems("the sampler") + judge(sampler.samples)
    violations += check.outcomes(ops) + check.one_at_a_time(ops) + check.no_duplicate_operations(ops)
    violations += check.no_orphans(world.api, namespace)
    violations += scenario.verify(world, bosun, ops)
    # An operation is archived only once the store holds its whole log: compare the logs after that.
    violations += check.archived(world.api, namespace, 60)
    violations += check.logs_whole(check.operations(world.api, namespace), world.state.get("s3-client"))
    if killer.get("rollback"):
        mine = [o for o in ops if o["spec"]["type"] == scenario.type_ and o["metadata"]["name"].startswith("crash-")]
        mine = mine or [o for o in ops if o["spec"]["type"] == scenario.type_]
        if mine and mine[-1]["status"]["phase"] == "Succeeded":
            violations.append(f"{mine[-1]['metadata']['name']} succeeded although its pods were made to fail")
    return violations


def cases() -> list[Case]:
    found = []
    for scenario in SCENARIOS:
        for step in scenario.steps:
            point = {"when": step_running(step), "what": f"step {step} Running"}
            found.append(Case("crash", f"crash/{scenario.name}/at-{step}", _case(scenario, point)))
        found.append(Case("crash", f"crash/{scenario.name}/random", _random_case(scenario)))
        if scenario.failing:
            point = {"when": undoing, "rollback": True, "what": "a step Undoing"}
            found.append(Case("crash", f"crash/{scenario.name}/mid-rollback", _case(scenario, point)))
    return found


def _case(scenario: Scenario, point: dict[str, Any]) -> Callable[[World, random.Random, str], list[str]]:
    return lambda world, rng, namespace: run_scenario(world, namespace, scenario, point)


def _random_case(scenario: Scenario) -> Callable[[World, random.Random, str], list[str]]:
    def run(world: World, rng: random.Random, namespace: str) -> list[str]:
        delay = round(rng.uniform(0.2, 4.0), 2)
        return run_scenario(world, namespace, scenario, {"after": delay, "what": f"{delay}s after creation"})

    return run
