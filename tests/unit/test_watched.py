"""A watched set never fails silently: a waiter is told when its objects can no longer be read."""

from __future__ import annotations

from typing import Any

import pytest

from bosun.errors import TransientError
from bosun.kube import Watched


class Answers:
    """A list method: the first list answers, the watch is refused, and the next list is garbage."""

    def __init__(self) -> None:
        self.lists = 0
        self.watches = 0

    async def __call__(self, namespace: str, **options: Any) -> dict[str, Any]:
        if options.get("watch"):
            self.watches += 1
            raise ValueError("refused")
        self.lists += 1
        if self.lists == 1:
            return {"metadata": {"resourceVersion": "7"}, "items": [{"metadata": {"name": "web-1"}}]}
        raise ValueError("not the API server's JSON")


class PassThrough:
    async def _raw(self, response: Any) -> dict[str, Any]:
        return dict(await response)


async def test_a_watch_whose_list_breaks_tells_the_waiter() -> None:
    answers = Answers()
    async with Watched(PassThrough(), "Pod in shop", answers, "shop", {}) as pods:  # type: ignore[arg-type]
        assert list(pods.objects) == ["web-1"]
        with pytest.raises(TransientError, match="list Pod in shop: ValueError"):
            for _ in range(5):
                await pods.changed(1.0)
    assert answers.lists == 2 and answers.watches >= 1
