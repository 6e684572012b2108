"""A roll-out's verdict, and an undo's: judged on the pods, not on a condition the failure left behind."""

from __future__ import annotations

from typing import Any

import pytest

from bosun.errors import PermanentError
from bosun.models.app import AppSpec
from bosun.operations.app import rollout_problem
from bosun.workloads.app import deployment as build_deployment

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
        "metadata": {
            "name": name,
            "labels": dict(template["metadata"]["labels"]),
            "annotations": dict(template["metadata"]["annotations"]),
        },
        "spec": {"containers": [{"image": "example.com/shop:1"}]},
        "status": {"phase": "Running"},
    }


PODS = [running_pod("a"), running_pod("b")]
OTHER_PROCESS = {**running_pod("c"), "metadata": {"name": "c", "labels": {"app.kubernetes.io/component": "worker"}}}


def test_an_undo_is_judged_on_the_pods_it_brought_back() -> None:
    assert rollout_problem(WANTED, restored_deployment(), [*PODS, OTHER_PROCESS], undoing=True) == ""


def test_a_roll_out_past_its_progress_deadline_fails() -> None:
    with pytest.raises(PermanentError, match="progress deadline"):
        rollout_problem(WANTED, restored_deployment(), PODS)


def test_pods_of_another_process_do_not_count() -> None:
    assert rollout_problem(WANTED, restored_deployment(), [*PODS[:1], OTHER_PROCESS], undoing=True) == (
        "shop-web: 2/2 ready"
    )
