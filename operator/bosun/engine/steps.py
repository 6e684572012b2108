"""What a step is, and what can go wrong in one.

A step may also have a `check`: the read-only part of its `run` (a node's readiness, an image on a
node, a StorageClass that can expand), which a dry run calls to say what the real run would find,
with the same refusal messages. A table names the steps during which its target does not serve,
so a dry run can say how long the downtime was the last times.

A step table is the whole recipe of an operation type. Each step says how to do its change
(`run`), how to take it back (`undo`), or that it has nothing to take back (no side effect), or
that its change cannot be taken back and why. Steps must be idempotent: after a crash the engine
runs a step found `Running` again, and undoes steps whose run may have half-happened, so both
`run` and `undo` must work out from the cluster whether their work is already done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from bosun.errors import PermanentError, TransientError

__all__ = ["PermanentError", "TransientError"]

Ctx = TypeVar("Ctx")

StepFn = Callable[[Ctx], Awaitable[str | None]]


class Skipped(str):
    """Returned by a step's run when it found nothing to do: it is recorded Skipped, never undone."""


class Reversibility(Enum):
    UNDOABLE = "undoable"  # has an undo
    NO_SIDE_EFFECT = "no-side-effect"  # changes nothing: nothing to undo
    IRREVERSIBLE = "irreversible"  # changes something that cannot be taken back


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient errors, bounded by the step's timeout.

    `attempts` (None by default) bounds them by count as well. Not by default: a polling step makes
    many API calls per attempt, so a busy API server (one call in ten failing, say) would exhaust a
    small count in seconds and fail, or leave changed, what a minute of patience carries out.
    """

    attempts: int | None = None
    initial_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int) -> float:
        """Delay before attempt number `attempt + 1` (attempt counts from 1)."""
        return float(min(self.max_delay, self.initial_delay * (2 ** max(0, attempt - 1))))


@dataclass(frozen=True)
class Step(Generic[Ctx]):
    """One named step of an operation type."""

    name: str
    description: str
    run: StepFn[Ctx]
    undo: StepFn[Ctx] | None = None
    reversibility: Reversibility = Reversibility.UNDOABLE
    irreversible_reason: str = ""
    timeout: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    check: StepFn[Ctx] | None = None  # read-only: what `run` would find, or the refusal it would raise

    def __post_init__(self) -> None:
        if self.reversibility is Reversibility.UNDOABLE and self.undo is None:
            raise ValueError(f"step {self.name!r} changes something: give it an undo, or mark it")
        if self.reversibility is Reversibility.IRREVERSIBLE and not self.irreversible_reason:
            raise ValueError(f"step {self.name!r} cannot be undone: say why")


def no_side_effect(name: str, description: str, run: StepFn[Ctx], **kwargs: object) -> Step[Ctx]:
    return Step(name, description, run, None, Reversibility.NO_SIDE_EFFECT, **kwargs)  # type: ignore[arg-type]


def irreversible(name: str, description: str, run: StepFn[Ctx], reason: str, **kwargs: object) -> Step[Ctx]:
    return Step(name, description, run, None, Reversibility.IRREVERSIBLE, reason, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class StepTable(Generic[Ctx]):
    """The recipe of one operation type, and how to build the context its steps share."""

    name: str
    steps: Sequence[Step[Ctx]]
    downtime_steps: Sequence[str] = ()  # the steps during which the target does not serve
    ends_service: bool = False  # it stops what serves for good (deprovision): maintenance windows hold it
    # False for an operation that only reads its target (a backup): while it runs the target stays
    # as Ready as it was and not Reconciling, so Argo CD shows it Healthy, not Progressing.
    changes_target: bool = True

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name!r} has duplicate step names: {names}")
        if not names:
            raise ValueError(f"table {self.name!r} has no steps")
        if set(self.downtime_steps) - set(names):
            raise ValueError(f"table {self.name!r} names downtime steps it does not have: {self.downtime_steps}")
        if not self.changes_target and self.stops_service:
            raise ValueError(f"table {self.name!r} stops its target's service, so it changes its target")

    @property
    def stops_service(self) -> bool:
        """Whether the target stops serving, for a while or for good (what windows and approvals govern)."""
        return bool(self.downtime_steps) or self.ends_service

    @property
    def irreversible(self) -> tuple[str, ...]:
        return tuple(
            f"{s.name}: {s.irreversible_reason}" for s in self.steps if s.reversibility is Reversibility.IRREVERSIBLE
        )

    @property
    def needs_rollback(self) -> bool:
        """False for trivial operations whose steps all have no side effect."""
        return any(s.reversibility is not Reversibility.NO_SIDE_EFFECT for s in self.steps)
