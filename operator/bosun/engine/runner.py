"""Runs one operation's step table to the end: forward, or back when it fails or is cancelled.

Persist before acting: a step is recorded `Running` (and its attempt counted) before its `run`
starts, and `Succeeded`/`Failed` after it ends (a success in the same write as whatever comes
next); likewise `Undoing`/`Undone` around each undo. An operator killed at any instant therefore
finds, on restart, either a step it must re-run (its run is idempotent) or a rollback it must
continue. The phase `RollingBack` plus `status.reason`
remember why a rollback started, so a restart finishes it the same way.

Cancellation and the operation deadline interrupt a running step (its task is cancelled; the
step's undo copes with a half-done run) at once: waits are where operations spend their time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol

from bosun import metrics
from bosun.engine import record
from bosun.engine.steps import Ctx, PermanentError, Reversibility, Skipped, Step, StepTable, TransientError
from bosun.models.base import stamp
from bosun.models.operation import OperationStatus, Phase, StepState

logger = logging.getLogger(__name__)
STOP_GRACE_SECONDS = 10.0


class OperationHandle(Protocol):
    """What the runner needs of the Operation object: its live cancel flag, and a status writer."""

    def cancel_requested(self) -> bool: ...

    async def save(self, status: OperationStatus) -> None: ...


class Journal(Protocol):
    """The operation's log."""

    def info(self, message: str) -> None: ...

    def milestone(self, message: str) -> None: ...  # an info line marking the operation's start or end

    def warning(self, message: str) -> None: ...


class _Interrupted(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Runner(Generic[Ctx]):
    def __init__(
        self,
        table: StepTable[Ctx],
        ctx: Ctx,
        handle: OperationHandle,
        journal: Journal,
        *,
        deadline: float | None = None,
        clock: Callable[[], str] = stamp,
        poll_interval: float = 0.25,
        before_downtime: Callable[[OperationStatus], Awaitable[str]] | None = None,
    ) -> None:
        self.table = table
        self.ctx = ctx
        self.handle = handle
        self.journal = journal
        self.deadline = deadline  # wall-clock epoch seconds; survives restarts via status.startedAt
        self.clock = clock
        self.poll_interval = poll_interval
        # The last look before the target stops serving (a downtime budget's second check): a
        # non-empty answer says why not, and the steps before are rolled back.
        self.before_downtime = before_downtime
        # The last safe moment: before the first downtime step, or before an irreversible step that
        # comes ahead of it (a resize's expand cannot be rolled back once the budget refuses).
        names = [s.name for s in table.steps]
        downtime = [i for i, n in enumerate(names) if n in table.downtime_steps]
        final = [
            i
            for i, s in enumerate(table.steps)
            if downtime and i <= downtime[0] and (i == downtime[0] or s.reversibility is Reversibility.IRREVERSIBLE)
        ]
        self.first_downtime_step = names[final[0]] if final else None

    async def drive(self, status: OperationStatus) -> OperationStatus:
        """Take the operation from wherever its status says it is to a finished phase."""
        if status.phase.finished:
            return status
        record.init_steps(status, self.table.steps)  # type: ignore[arg-type]
        if status.phase in (Phase.PENDING, Phase.QUEUED):
            # Not saved here: nothing acts before the first step's start (or the end), which
            # carries it. One write fewer per operation, and the first step starts a write sooner.
            record.start(status, self.clock())
            self.journal.milestone(f"operation started: {len(self.table.steps)} steps")
        if status.phase is Phase.RUNNING:
            await self._forward(status)
        if status.phase is Phase.ROLLING_BACK:
            await self._back(status)
        return status

    # forward -------------------------------------------------------------------------------

    async def _forward(self, status: OperationStatus) -> None:
        previous_ended: float | None = None  # when the step before this one ended, in this process
        for index, step in enumerate(self.table.steps):
            state = status.steps[index].state
            if state in record.DONE_STATES:
                continue
            if state is not StepState.PENDING and state is not StepState.RUNNING:
                # Died after recording a failure but before recording the rollback.
                record.begin_rollback(status, "StepFailed", status.steps[index].message or "a step failed")
                await self.handle.save(status)
                return
            if self.handle.cancel_requested():
                await self._start_rollback(status, record.CANCELLED_REASON, "cancelled by request")
                return
            if self._deadline_passed():
                await self._start_rollback(status, "DeadlineExceeded", "the operation's deadline passed")
                return
            resumed = state is StepState.RUNNING
            if not resumed and step.name == self.first_downtime_step and self.before_downtime is not None:
                refusal = await self.before_downtime(status)
                if refusal:
                    await self._start_rollback(status, "DowntimeBudget", refusal)
                    return
            record.step_started(status, index, self.clock())
            self.journal.info(
                f"step {index + 1}/{len(status.steps)} {step.name}: {'resumed' if resumed else 'started'}"
            )
            await self.handle.save(status)
            began = time.monotonic()
            if previous_ended is not None:
                metrics.STEP_TRANSITION.observe(began - previous_ended)
            try:
                message = await self._attempts(status, index, step)
            except _Interrupted as stop:
                status.steps[index].message = f"interrupted: {stop}"
                await self._start_rollback(status, stop.reason, str(stop))
                return
            except PermanentError as error:
                record.step_failed(status, index, self.clock(), str(error))
                self.journal.warning(f"step {step.name} failed: {error}")
                await self._start_rollback(status, error.reason, f"step {step.name} failed: {error}")
                return
            previous_ended = time.monotonic()
            if isinstance(message, Skipped):
                record.step_skipped(status, index, self.clock(), message)
            else:
                record.step_succeeded(status, index, self.clock(), message)
                if step.reversibility is Reversibility.IRREVERSIBLE:
                    self.journal.warning(f"step {step.name} ran and cannot be undone: {step.irreversible_reason}")
            self.journal.info(
                f"step {index + 1}/{len(status.steps)} {step.name}: succeeded in "
                f"{time.monotonic() - began:.1f}s{': ' + message if message else ''}"
            )
            # Not saved here: the next write (the next step's start, a rollback, the end) carries it,
            # before anything else acts. One write per step, and no gap between two steps; killed in
            # between, the step is re-run on restart, as any step killed while it ran (runs are idempotent).
        record.succeed(status, self.clock())
        self.journal.milestone("operation succeeded")
        await self.handle.save(status)

    async def _attempts(self, status: OperationStatus, index: int, step: Step[Ctx]) -> str | None:
        """Run a step, retrying transient errors within its timeout and the operation's deadline."""
        timeout = self._bounded(step.timeout)
        give_up_at = time.monotonic() + timeout
        attempt = 1
        while True:
            try:
                return await self._guarded(step.run(self.ctx), give_up_at - time.monotonic(), interruptible=True)
            except TransientError as error:
                if step.retry.attempts is not None and attempt >= step.retry.attempts:
                    raise PermanentError(f"gave up after {attempt} attempts: {error}", "RetriesExhausted") from error
                delay = step.retry.delay(attempt)
                if time.monotonic() + delay >= give_up_at:
                    raise PermanentError(f"timed out after {timeout:.0f}s: {error}", "StepTimeout") from error
                metrics.RETRIES.labels("step").inc()
                record.step_retrying(status, index, str(error))
                self.journal.warning(f"step {step.name}: transient error, retry in {delay:.1f}s: {error}")
                await self.handle.save(status)
                await asyncio.sleep(delay)
                attempt += 1
            except TimeoutError as error:
                if self._deadline_passed():
                    raise _Interrupted("DeadlineExceeded", "the operation's deadline passed") from error
                raise PermanentError(f"timed out after {timeout:.0f}s", "StepTimeout") from error

    async def _guarded(self, work: Awaitable[str | None], timeout: float, *, interruptible: bool) -> str | None:
        """Await work, but give up at the timeout or, if interruptible, as soon as cancel is asked."""
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(self._cancel_asked()) if interruptible else None
        waiting = {task} if watcher is None else {task, watcher}
        try:
            done, _ = await asyncio.wait(waiting, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the operator is stopping: stop the step too (it is re-run later)
            task.cancel()
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        if task in done:
            try:
                return task.result()
            except (TransientError, PermanentError, TimeoutError):
                raise
            except Exception as error:  # a bug in a step must end the operation, not the operator
                logger.exception("step raised an unexpected error")
                raise PermanentError(f"unexpected {type(error).__name__}: {error}", "InternalError") from error
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)  # a step that ignores cancel cannot hold us
        if watcher is not None and watcher in done:
            raise _Interrupted(record.CANCELLED_REASON, "cancelled by request")
        raise TimeoutError

    async def _cancel_asked(self) -> None:
        while not self.handle.cancel_requested():
            await asyncio.sleep(self.poll_interval)

    def _deadline_passed(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def _bounded(self, timeout: float) -> float:
        if self.deadline is None:
            return timeout
        return max(0.0, min(timeout, self.deadline - time.time()))

    # back ----------------------------------------------------------------------------------

    async def _start_rollback(self, status: OperationStatus, reason: str, message: str) -> None:
        record.begin_rollback(status, reason, message)
        self.journal.warning(f"rolling back: {message}")
        await self.handle.save(status)

    async def _back(self, status: OperationStatus) -> None:
        for index in record.steps_to_undo(status):
            step = self.table.steps[index]
            if step.reversibility is Reversibility.NO_SIDE_EFFECT:
                record.nothing_to_undo(status, index)
                continue
            if step.reversibility is Reversibility.IRREVERSIBLE:
                record.not_undone(status, index, self.clock(), step.irreversible_reason, failed=False)
                self.journal.warning(f"step {step.name} cannot be undone: {step.irreversible_reason}")
                await self.handle.save(status)
                continue
            assert step.undo is not None
            record.undo_started(status, index, self.clock())
            self.journal.info(f"undoing step {step.name}")
            await self.handle.save(status)
            try:
                await self._undo(step)
            except (PermanentError, TimeoutError) as error:
                reason = str(error) or f"undo timed out after {step.timeout:.0f}s"
                record.not_undone(status, index, self.clock(), reason, failed=True)
                self.journal.warning(f"undo of step {step.name} failed: {reason}")
                await self.handle.save(status)
                continue
            record.undone(status, index, self.clock())
            self.journal.info(f"step {step.name} undone")
            await self.handle.save(status)
        record.finish_rollback(status, self.clock(), applicable=self.table.needs_rollback)
        assert status.rollback is not None
        (self.journal.milestone if status.rollback.state.value != "Failed" else self.journal.warning)(
            status.rollback.message
        )
        await self.handle.save(status)

    async def _undo(self, step: Step[Ctx]) -> None:
        assert step.undo is not None
        give_up_at = time.monotonic() + step.timeout
        attempt = 1
        while True:
            try:
                await self._guarded(step.undo(self.ctx), give_up_at - time.monotonic(), interruptible=False)
                return
            except TransientError as error:
                exhausted = step.retry.attempts is not None and attempt >= step.retry.attempts
                if exhausted or time.monotonic() + step.retry.delay(attempt) >= give_up_at:
                    raise PermanentError(f"gave up after {attempt} attempts: {error}") from error
                metrics.RETRIES.labels("undo").inc()
                await asyncio.sleep(step.retry.delay(attempt))
                attempt += 1
