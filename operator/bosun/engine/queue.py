"""At most one running operation per target: the others wait in creation order.

Two rules, both derived from the cluster alone so a restarted operator sees the same queue:

- An operation that is Running or RollingBack blocks every other operation on its target,
  whatever the names and timestamps say.
- Otherwise an operation may start when no unfinished operation on its target is ahead of it.
  "Ahead" is the creation timestamp, then the operation's sequence: creation timestamps have a
  one-second resolution, so within one second the order is the one the operator first saw
  (the resourceVersion at first sight, recorded in `status.sequence` before any queue decision; a
  same-second rival that has not recorded its place yet is waited for). Operations one spec edit
  creates are created one after the other, so they run in the order they were planned.

Finished operations (failed ones included) and dry runs never block, and every operation has a
deadline counted from its creation, so the queue cannot wedge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bosun.models.operation import Operation, Phase

ACTIVE = frozenset({Phase.RUNNING, Phase.ROLLING_BACK})


def same_target(a: Operation, b: Operation) -> bool:
    return (a.spec.target.kind, a.spec.target.name) == (b.spec.target.kind, b.spec.target.name)


def blocker(me: Operation, others: Iterable[Operation]) -> str | None:
    """The operation `me` waits for, if any: the one just ahead of it, else one running anyway."""
    rivals = [o for o in others if o.uid != me.uid and o.name != me.name and same_target(o, me) and not o.spec.dry_run]
    unfinished = [o for o in rivals if not o.status.phase.finished]
    # A rival from the same second that has not recorded its place yet may be ahead: its daemon
    # records it first thing, so wait for that rather than guess from a resourceVersion that moved.
    unplaced = sorted(o.name for o in unfinished if o.created == me.created and o.status.sequence is None)
    if unplaced:
        return unplaced[0]
    ahead = [o for o in unfinished if o.queue_key < me.queue_key]
    if ahead:
        return max(ahead, key=lambda o: o.queue_key).name
    running = sorted((o for o in unfinished if o.status.phase in ACTIVE), key=lambda o: o.queue_key)
    return running[0].name if running else None


def newest(operations: Iterable[Operation], like: Operation) -> Operation | None:
    """The newest operation on `like`'s target, by queue order."""
    mine = [o for o in operations if same_target(o, like)]
    return max(mine, key=lambda o: o.queue_key) if mine else None


class Unfinished:
    """The unfinished Operations the watch has shown, per namespace: a first look for the queue.

    A waiting operation looks here every poll, and asks the API server (a list of its namespace)
    only when nothing here is ahead of it: the decision to start is always made on a fresh list,
    so a late or missing event can delay an operation by a poll, never start one out of turn.
    Finished operations are dropped, so the index stays as small as the work in flight.
    """

    def __init__(self) -> None:
        self._by_namespace: dict[str, dict[str, Operation]] = {}

    def saw(self, body: Mapping[str, Any], *, gone: bool = False) -> None:
        operation = Operation.of(body)
        namespace = self._by_namespace.setdefault(operation.namespace, {})
        if gone or operation.status.phase.finished or operation.spec.dry_run:
            namespace.pop(operation.uid, None)
            if not namespace:
                del self._by_namespace[operation.namespace]
        else:
            namespace[operation.uid] = operation

    def blocker(self, me: Operation) -> str | None:
        return blocker(me, self._by_namespace.get(me.namespace, {}).values())

    def in_namespace(self, namespace: str) -> list[Operation]:
        return list(self._by_namespace.get(namespace, {}).values())

    def on(self, like: Operation) -> list[Operation]:
        """The unfinished operations seen on `like`'s target."""
        return [o for o in self._by_namespace.get(like.namespace, {}).values() if same_target(o, like)]

    def on_target(self, namespace: str, kind: str, name: str) -> bool:
        return any(
            (o.spec.target.kind.value, o.spec.target.name) == (kind, name)
            for o in self._by_namespace.get(namespace, {}).values()
        )
