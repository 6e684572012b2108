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

from collections.abc import Callable, Iterable, Mapping
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
        # (namespace, target kind, target name) -> uids: drift repair asks for each App every round,
        # and a scan of the namespace per App made a round cost Apps x unfinished operations.
        self._by_target: dict[tuple[str, str, str], set[str]] = {}
        # Told (namespace, target kind, target name) when the last unfinished operation seen on a
        # target ends, if one of them ran: drift repair looks at the App again then. One that never
        # started (its target missing, cancelled while queued) changed nothing: no look, no request.
        self.on_idle: Callable[[str, str, str], None] | None = None
        self._ran: set[tuple[str, str, str]] = set()

    def saw(self, body: Mapping[str, Any], *, gone: bool = False) -> None:
        operation = Operation.of(body)
        namespace = self._by_namespace.setdefault(operation.namespace, {})
        target = (operation.namespace, operation.spec.target.kind.value, operation.spec.target.name)
        known = namespace.get(operation.uid)
        if known is not None:  # the target cannot change (spec.target is immutable), but be exact
            self._forget(known)
            if operation.status.started_at and not operation.spec.dry_run:
                self._ran.add(target)
        if gone or operation.status.phase.finished or operation.spec.dry_run:
            namespace.pop(operation.uid, None)
            if not namespace:
                del self._by_namespace[operation.namespace]
            if target not in self._by_target and target in self._ran:
                self._ran.discard(target)
                if self.on_idle is not None:
                    self.on_idle(*target)
        else:
            namespace[operation.uid] = operation
            self._by_target.setdefault(target, set()).add(operation.uid)

    def _forget(self, operation: Operation) -> None:
        target = (operation.namespace, operation.spec.target.kind.value, operation.spec.target.name)
        uids = self._by_target.get(target)
        if uids is not None:
            uids.discard(operation.uid)
            if not uids:
                del self._by_target[target]

    def blocker(self, me: Operation) -> str | None:
        return blocker(me, self.on(me))  # only its target's operations can be ahead of it

    def in_namespace(self, namespace: str) -> list[Operation]:
        return list(self._by_namespace.get(namespace, {}).values())

    def on(self, like: Operation) -> list[Operation]:
        """The unfinished operations seen on `like`'s target."""
        namespace = self._by_namespace.get(like.namespace, {})
        uids = self._by_target.get((like.namespace, like.spec.target.kind.value, like.spec.target.name), set())
        return [namespace[uid] for uid in uids if uid in namespace]

    def on_target(self, namespace: str, kind: str, name: str) -> bool:
        return bool(self._by_target.get((namespace, kind, name)))
