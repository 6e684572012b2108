"""The Argo CD health checks (charts/argocd-values.yaml) read Bosun's status as intended (run in real Lua)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime

VALUES = Path(__file__).resolve().parents[2] / "charts" / "argocd-values.yaml"
CHECKS = yaml.safe_load(VALUES.read_text())["configs"]["cm"]


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: convert(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([convert(v) for v in value])
        return value

    lua.globals().obj = convert(obj)
    result = lua.execute(CHECKS[f"resource.customizations.health.bosun.dev_{kind}"])
    return str(result["status"]), str(result["message"])


def app(generation: int, observed: int | None, **conditions: str) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [{"type": t, "status": s, "message": f"{t} is {s}"} for t, s in conditions.items()]
    }
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize("kind", ["App", "Database"])
def test_target_health(kind: str) -> None:
    assert health(kind, {"metadata": {"generation": 1}})[0] == "Progressing"
    assert health(kind, app(2, 2, Ready="True", Reconciling="False", Stalled="False"))[0] == "Healthy"
    assert health(kind, app(2, 2, Ready="False", Reconciling="True", Stalled="False"))[0] == "Progressing"
    assert health(kind, app(2, 2, Ready="False", Reconciling="False", Stalled="True")) == (
        "Degraded",
        "Stalled is True",
    )
    # A new generation not yet taken up is not judged by the old one's outcome.
    assert health(kind, app(3, 2, Ready="False", Reconciling="False", Stalled="True"))[0] == "Progressing"


def test_deprovisioned_app_is_suspended() -> None:
    assert health("App", {"metadata": {}, "status": {"phase": "Deprovisioned"}})[0] == "Suspended"


def test_operation_health() -> None:
    assert health("Operation", {"status": {"phase": "Running", "message": "step 2/4"}}) == ("Progressing", "step 2/4")
    assert health("Operation", {"status": {"phase": "Succeeded"}})[0] == "Healthy"
    assert health("Operation", {"status": {"phase": "Failed", "message": "failed: rolled back"}})[0] == "Degraded"
    assert health("Operation", {"status": {"phase": "Cancelled"}})[0] == "Degraded"
