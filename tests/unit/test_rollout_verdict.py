"""A roll-out's verdict, and an undo's: judged on the pods, not on a condition the failure left behind."""

from __future__ import annotations

from typing import Any

import pytest

from bosun.errors import PermanentError
from bosun.models.app import AppSpec
from bosun.models.operation import OperationType
from bosun.operations.app import AppContext, _rollout_problem
from bosun.workloads.app import Version
from bosun.workloads.app import deployment as build_deployment


class Pods:
    """The one thing the verdict reads from the cluster besides the Deployment: its pods."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods

    async def list_pods(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        return self.pods


SPEC = AppSpec.model_validate({"image": "example.com/shop:1", "processes": [{"name": "web", "replicas": 2}]})
WANTED = build_deployment("shop", "uid", SPEC, SPEC.processes[0], "op-1")


def restored_deployment() -> dict[str, Any]:
    """The previous release back, all pods Ready, but the failed roll-out's deadline still on record."""
    return {
        "metadata": {"name": "shop-web", "generation": 3},
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
        },
    }


def running_pod(name: str) -> dict[str, Any]:
    template = WANTED["spec"]["template"]
    return {
        "metadata": {"name": name, "annotations": dict(template["metadata"]["annotations"])},
        "spec": {"containers": [{"image": "example.com/shop:1"}]},
        "status": {"phase": "Running"},
    }


def context() -> AppContext:
    pods = Pods([running_pod("a"), running_pod("b")])
    version = Version(SPEC, "", "op-1")
    return AppContext(pods, "ns", "shop", "uid", "op-2", OperationType.DEPLOY, version, version)  # type: ignore[arg-type]


async def test_an_undo_is_judged_on_the_pods_it_brought_back() -> None:
    assert await _rollout_problem(context(), WANTED, restored_deployment(), undoing=True) == ""


async def test_a_roll_out_past_its_progress_deadline_fails() -> None:
    with pytest.raises(PermanentError, match="progress deadline"):
        await _rollout_problem(context(), WANTED, restored_deployment())
