"""A spec edit whose Operation could not be created for a moment is tried again in seconds.

Kopf retries a failed handler after 60 s. In the fault harness one injected 500 on the create of a
Database's provision Operation held the provision back for a minute; a refusal, by contrast, is
said once and never retried.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from bosun.errors import PermanentError, TransientError
from bosun.handlers import _edit, edit_retry
from bosun.models.names import API_VERSION
from bosun.models.operation import TargetKind


class Answering:
    """A Kube whose create answers with `error`, and which records the Events it is asked for."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.events: list[str] = []

    async def create(self, *_: Any) -> dict[str, Any]:
        raise self.error

    async def emit_event(self, body: dict[str, Any], *, reason: str, message: str, warning: bool) -> None:
        self.events.append(reason)


def database() -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": API_VERSION,
            "kind": "Database",
            "metadata": {"name": "pg", "namespace": "shop", "uid": "u1", "generation": 1},
            "spec": {"engine": "postgres", "version": "16", "storage": {"size": "1Gi"}},
        }
    )


def memo(kube: Answering) -> Any:
    """The services `_edit` acts through: only the Kube is reached before the create fails."""
    return SimpleNamespace(kube=kube, operations=None)


async def test_a_transient_error_is_retried_in_seconds_not_a_minute() -> None:
    kube = Answering(TransientError("create Operation shop/pg-provision-g1: 500 injected"))
    body = database()
    with pytest.raises(kopf.TemporaryError) as raised:
        await _edit(memo(kube), TargetKind.DATABASE, body, None, dict(body["spec"]), retry=0)
    assert raised.value.delay == 1.0 and kube.events == []
    assert [edit_retry(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


async def test_a_refusal_is_said_once_and_not_retried() -> None:
    kube = Answering(PermanentError("create Operation shop/pg-provision-g1: 422 invalid", "ApiRefused"))
    body = database()
    with pytest.raises(kopf.PermanentError):
        await _edit(memo(kube), TargetKind.DATABASE, body, None, dict(body["spec"]))
    assert kube.events == ["EditNotCarriedOut"]
