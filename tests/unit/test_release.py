"""When an archived Operation may leave the operator's watch: only once nothing of Kopf's holds it."""

from __future__ import annotations

from typing import Any

import pytest

from bosun.errors import PermanentError, TransientError
from bosun.lifecycle import OperationLifecycle, releasable
from bosun.models.names import ARCHIVED_LABEL, FINALIZER


def body(archived: str | None = "s3://b/records/x.json", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "op", "namespace": "ns", **meta}, "status": {"archived": archived} if archived else {}}


def test_an_archived_operation_kopf_has_let_go_is_released() -> None:
    assert releasable(body())
    assert releasable(body(finalizers=["example.com/keep"], labels={"app": "x"}))


@pytest.mark.parametrize(
    "held",
    [
        body(archived=None),  # not archived yet: its daemon still has work
        body(archived=""),
        body(finalizers=[FINALIZER]),  # Kopf has not removed its finalizer yet: leaving now would strand it
        body(deletionTimestamp="2026-11-26T00:00:00Z"),  # going anyway
        body(archived="not archived: the store is down"),  # the let-go marker of a deleted one
        body(labels={ARCHIVED_LABEL: "true"}),  # already out
    ],
)
def test_anything_still_holding_it_keeps_it_watched(held: dict[str, Any]) -> None:
    assert not releasable(held)


class Flaky:
    """The API server answering the label patch with `errors` first, then accepting it."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.patches = 0

    async def patch_object(self, namespace: str, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches += 1
        if self.errors:
            raise self.errors.pop(0)
        return patch


def lifecycle(kube: Flaky) -> OperationLifecycle:
    return OperationLifecycle(kube, None, None, retry_first_seconds=0.01, release_seconds=0.2)  # type: ignore[arg-type]


async def test_a_label_patch_that_fails_for_a_moment_is_tried_again() -> None:
    """An archived record gets no later event to retry on: a transient failure must not strand it."""
    kube = Flaky(TransientError("503"), TransientError("timeout"))
    assert await lifecycle(kube).release(body())
    assert kube.patches == 3


async def test_a_refused_or_lasting_failure_gives_up_without_raising() -> None:
    refused = Flaky(PermanentError("refused by the policy", "ApiRefused"))
    assert not await lifecycle(refused).release(body())
    assert refused.patches == 1  # no point repeating a refusal
    down = Flaky(*[TransientError("503")] * 100)
    assert not await lifecycle(down).release(body())
    assert 4 <= down.patches < 100  # 0.01, 0.02, 0.04, 0.08 s apart: within its 0.2 s, then it gives up


async def test_a_label_patch_outlasts_an_api_server_down_for_a_while() -> None:
    """Down longer than a few seconds (the old 4 attempts in 7 s): it is still labelled once it is back."""
    kube = Flaky(*[TransientError("503")] * 6)  # 0.01 + ... + 0.32 s = 0.63 s of failures
    assert await OperationLifecycle(kube, None, None, retry_first_seconds=0.01, release_seconds=5).release(  # type: ignore[arg-type]
        body()
    )
    assert kube.patches == 7
