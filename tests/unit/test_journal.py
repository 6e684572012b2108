"""The journal's events: every line on the Operation, only milestones and warnings on its target."""

from __future__ import annotations

from typing import Any

from bosun.engine.journal import KubeJournal


class Kube:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, bool]] = []

    async def emit_event(self, involved: dict[str, Any], *, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((involved["kind"], reason, message, warning))


def obj(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": "shop"}}


async def test_the_target_hears_of_the_start_the_end_and_warnings_only() -> None:
    kube = Kube()
    journal = KubeJournal(kube, obj("Operation", "web-deploy"), obj("App", "web"))  # type: ignore[arg-type]
    journal.milestone("operation started: 3 steps")
    journal.info("step 1/3 apply: started")
    journal.warning("step roll-out: transient error, retry in 1.0s")
    journal.info("step 1/3 apply: succeeded in 0.1s")
    journal.milestone("operation succeeded")
    await journal.flush()
    on_operation = [(reason, message) for kind, reason, message, _ in kube.events if kind == "Operation"]
    on_app = [(message, warning) for kind, _, message, warning in kube.events if kind == "App"]
    assert [message for _, message in on_operation] == journal.lines  # every line, in order
    assert on_operation[2][0] == "OperationWarning"
    assert on_app == [
        ("operation web-deploy: operation started: 3 steps", False),
        ("operation web-deploy: step roll-out: transient error, retry in 1.0s", True),
        ("operation web-deploy: operation succeeded", False),
    ]


async def test_without_a_target_only_the_operation_hears() -> None:
    kube = Kube()
    journal = KubeJournal(kube, obj("Operation", "web-plan"), None)  # type: ignore[arg-type]
    journal.milestone("operation started: 1 steps")
    journal.warning("refused")
    await journal.flush()
    assert {kind for kind, *_ in kube.events} == {"Operation"} and len(kube.events) == 2
