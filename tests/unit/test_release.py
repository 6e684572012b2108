"""When an archived Operation may leave the operator's watch: only once nothing of Kopf's holds it."""

from __future__ import annotations

from typing import Any

import pytest

from bosun.lifecycle import releasable
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
