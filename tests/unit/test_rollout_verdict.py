"""A roll-out's verdict, and an undo's: judged on the pods, not on a condition the failure left behind."""

from __future__ import annotations

import copy
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
        "metadata": {"name": "shop-web", "generation": 3, "annotations": dict(WANTED["metadata"]["annotations"])},
        "spec": copy.deepcopy(WANTED["spec"]),
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


def done_before(change: str) -> dict[str, Any]:
    """The Deployment as the shared watch may still show it just after an apply: the previous
    release, fully rolled out (its status says every replica is updated and ready)."""
    current = restored_deployment()
    current["status"]["conditions"] = []
    template = current["spec"]["template"]
    if change == "release":
        current["metadata"]["annotations"] = {k: "op-0" for k in current["metadata"]["annotations"]}
    elif change == "config":
        template["metadata"]["annotations"] = {k: "before" for k in template["metadata"]["annotations"]}
    else:
        current["spec"]["replicas"] = 3
        current["status"].update(replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3)
    return current


def test_the_applied_deployment_is_judged_once_the_watch_shows_it() -> None:
    fresh = restored_deployment()
    fresh["status"]["conditions"] = []
    assert rollout_problem(WANTED, fresh, PODS) == ""


@pytest.mark.parametrize("change", ["release", "config", "replicas"])
def test_a_deployment_not_yet_seen_as_applied_is_never_taken_as_rolled_out(change: str) -> None:
    """A shared watch can lag an apply: the old object's finished status must not end the roll-out."""
    assert rollout_problem(WANTED, done_before(change), PODS) == "shop-web: waiting to see the applied Deployment"


def test_an_image_pinned_by_an_admission_webhook_still_rolls_out() -> None:
    """A mutating webhook may rewrite the image to its digest: the roll-out is judged all the same."""
    pinned = restored_deployment()
    pinned["status"]["conditions"] = []
    pinned["spec"]["template"]["spec"]["containers"][0]["image"] = "example.com/shop@sha256:" + "0" * 64
    assert rollout_problem(WANTED, pinned, PODS) == ""


def test_a_pod_being_stopped_is_not_failing_however_its_container_ended() -> None:
    """A scale-down on a real node: the removed pod's server ignored SIGTERM and was killed (137)."""
    killed = running_pod("c")
    killed["status"]["containerStatuses"] = [{"state": {"terminated": {"exitCode": 137, "reason": "Error"}}}]
    current = restored_deployment()
    current["status"]["conditions"] = []
    with pytest.raises(PermanentError, match="exit code 137"):
        rollout_problem(WANTED, current, [*PODS, killed])
    killed["metadata"]["deletionTimestamp"] = "2026-12-06T06:50:00Z"
    assert rollout_problem(WANTED, current, [*PODS, killed]) == "shop-web: 2/2 ready"  # waiting, not failing
