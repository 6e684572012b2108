"""The real operator, run with a test step table: `python -m tests.support.operator_under_test`.

The table's three steps each record their name in a ledger ConfigMap of their operation, once:
a step re-run after a crash finds its entry and adds nothing, so the ledger shows whether any side
effect happened twice. Annotations on the Operation steer it:
`test.bosun.dev/step-seconds` (each step lingers after its effect, so a test can kill the
operator mid-step; `undo-seconds` likewise for undos), `test.bosun.dev/fail-step` and
`test.bosun.dev/fail-undo` (a step whose run, or undo, fails after doing its work),
`test.bosun.dev/explode: plan` (the planner raises an unexpected error, as a bug would) and
`test.bosun.dev/table: short` (a two-step table, as if an upgrade changed the table under it).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any

from bosun.cli.main import parser, settings_from
from bosun.engine.service import Plan
from bosun.engine.steps import PermanentError, RetryPolicy, Step, StepTable
from bosun.kube import Kube
from bosun.models.operation import Operation, OperationType, TargetKind
from bosun.operations.registry import Registry
from bosun.process import run

TEST = "test.bosun.dev"  # annotations only this test planner reads
STEP_SECONDS = f"{TEST}/step-seconds"  # each step lingers this long after its effect
UNDO_SECONDS = f"{TEST}/undo-seconds"  # each undo likewise
FAIL_STEP = f"{TEST}/fail-step"  # this step's run fails after doing its work
FAIL_UNDO = f"{TEST}/fail-undo"  # this step's undo fails
EXPLODE = f"{TEST}/explode"  # "plan": the planner raises an unexpected error, as a bug would
TABLE = f"{TEST}/table"  # "short": a two-step table, as if an upgrade changed the table under it
REFUSE = f"{TEST}/refuse"  # the planner refuses the operation

STEPS = ("one", "two", "three")


@dataclass
class Ledger:
    kube: Kube
    namespace: str
    name: str
    annotations: dict[str, str]

    async def entries(self) -> tuple[list[str], dict[str, Any] | None]:
        current = await self.kube.read_config_map(self.namespace, self.name)
        text = ((current or {}).get("data") or {}).get("entries", "")
        return [e for e in text.split("\n") if e], current

    async def write(self, entries: list[str], current: dict[str, Any] | None) -> None:
        if current is None:
            await self.kube.create_config_map(self.namespace, self.name, {"entries": "\n".join(entries)})
            return
        current["data"] = {"entries": "\n".join(entries)}
        await self.kube.replace_config_map(self.namespace, current)

    async def linger(self, key: str = STEP_SECONDS) -> None:
        await asyncio.sleep(float(self.annotations.get(key, "0")))


def ledger_step(name: str) -> Step[Ledger]:
    async def run_step(ledger: Ledger) -> str:
        entries, current = await ledger.entries()
        if name in entries:
            message = f"{name} was already recorded"
        else:
            await ledger.write([*entries, name], current)
            message = f"recorded {name}"
        await ledger.linger()
        if ledger.annotations.get(FAIL_STEP) == name:
            raise PermanentError(f"{name} was told to fail")
        return message

    async def undo_step(ledger: Ledger) -> str:
        if ledger.annotations.get(FAIL_UNDO) == name:
            raise PermanentError(f"{name} was told not to undo")
        entries, current = await ledger.entries()
        if name in entries:
            await ledger.write([e for e in entries if e != name], current)
        await ledger.linger(UNDO_SECONDS)
        return f"removed {name}"

    return Step(
        name,
        f"record {name} in the ledger",
        run_step,
        undo_step,
        timeout=120,
        retry=RetryPolicy(attempts=5, initial_delay=0.2),
    )


LEDGER_TABLE = StepTable("ledger", [ledger_step(n) for n in STEPS])
SHORT_TABLE = StepTable("ledger-short", [ledger_step(n) for n in STEPS[:2]])


async def plan_ledger(kube: Kube, operation: Operation, target: dict[str, Any]) -> Plan[Ledger]:
    if operation.annotations.get(REFUSE):
        raise PermanentError("refused by the test planner", "Refused")
    if operation.annotations.get(EXPLODE) == "plan":
        raise ZeroDivisionError("the test planner divided by zero")
    table = SHORT_TABLE if operation.annotations.get(TABLE) == "short" else LEDGER_TABLE
    ledger = Ledger(kube, operation.namespace, f"ledger-{operation.name}", operation.annotations)
    return Plan(table, ledger, json.dumps({"table": table.name}))


def ledger_registry() -> Registry:
    registry = Registry()
    for type_ in (OperationType.DEPLOY, OperationType.CONFIGURE, OperationType.SCALE, OperationType.RESTART):
        registry.add(TargetKind.APP, type_, plan_ledger)
    return registry


if __name__ == "__main__":
    run(settings_from(parser().parse_args(["run", *sys.argv[1:]])), planner=ledger_registry())
