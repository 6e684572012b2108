"""At most one running operation per target: the others wait in creation order.

The order is derived from the cluster alone (creation timestamp, then name), never from memory,
so a restarted operator sees the same queue. An operation may start when no unfinished operation
on the same target was created before it. Finished operations (failed ones included) never block,
and a stuck one is ended by its deadline, so the queue cannot wedge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bosun.models.operation import Phase

FINISHED = {p.value for p in Phase if p.finished}


@dataclass(frozen=True)
class QueueEntry:
    name: str
    created: str
    target_kind: str
    target_name: str
    phase: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> QueueEntry:
        spec = body.get("spec") or {}
        target = spec.get("target") or {}
        return cls(
            name=body["metadata"]["name"],
            created=body["metadata"].get("creationTimestamp") or "",
            target_kind=target.get("kind", ""),
            target_name=target.get("name", ""),
            phase=(body.get("status") or {}).get("phase") or Phase.PENDING.value,
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.created, self.name)


def blocker(me: QueueEntry, others: Iterable[QueueEntry]) -> str | None:
    """The operation immediately ahead of `me` in its target's queue, if any."""
    ahead = [
        o
        for o in others
        if o.name != me.name
        and (o.target_kind, o.target_name) == (me.target_kind, me.target_name)
        and o.phase not in FINISHED
        and o.key < me.key
    ]
    return max(ahead, key=lambda o: o.key).name if ahead else None
