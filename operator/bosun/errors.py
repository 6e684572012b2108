"""The two kinds of failure every layer speaks: worth retrying, or not."""

from __future__ import annotations


class TransientError(Exception):
    """Worth retrying: API 5xx, 429, conflicts, timeouts, a dependency not there yet."""


class PermanentError(Exception):
    """Retrying will not help: bad input, a refused precondition, a workload that failed."""

    def __init__(self, message: str, reason: str = "StepFailed") -> None:
        super().__init__(message)
        self.reason = reason
