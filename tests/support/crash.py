"""SIGKILL the operator at a chosen step of an operation, the moment the step is recorded Running."""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import watch

from tests.support.bosun_objects import GROUP, VERSION, Bosun
from tests.support.operator_process import OperatorProcess


class KillAtStep:
    """SIGKILLs the operator the moment operation `name` shows `step` Running (a watch, not a poll)."""

    def __init__(self, bosun: Bosun, operator: OperatorProcess, step: str, name: str | None = None) -> None:
        self.bosun, self.operator, self.step, self.name = bosun, operator, step, name
        self.killed = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        stream = self._watch.stream(
            self.bosun.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.bosun.namespace,
            "operations",
            timeout_seconds=180,
        )
        for event in stream:
            body: dict[str, Any] = event["object"]
            if self.name and body["metadata"]["name"] != self.name:
                continue
            if any(
                s["name"] == self.step and s["state"] == "Running"
                for s in (body.get("status") or {}).get("steps") or []
            ):
                self.operator.kill()
                self.killed.set()
                self._watch.stop()
                return

    def __enter__(self) -> KillAtStep:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._watch.stop()
        self._thread.join(timeout=5)


def restart_after(kill: KillAtStep) -> None:
    assert kill.killed.wait(timeout=120), f"step {kill.step} was never seen Running"
    kill.operator.start()
