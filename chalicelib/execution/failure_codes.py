"""Failure codes an outcome can carry; docs/failure-codes.md explains each to operators.

``retryable`` says whether Lambda's async retry will run the shard again: deterministic
failures would fail the same way, so the worker records them as final and returns normally.
"""

from __future__ import annotations

from enum import Enum

MAX_MESSAGE = 1000


class FailureCode(Enum):
    """Why a shard's attempt failed: the outcome's ``error_code`` column (the contract's name)
    holds the value."""

    INJECTED_FAILURE = "INJECTED_FAILURE"
    SIMULATION_ERROR = "SIMULATION_ERROR"
    INVALID_TASK = "INVALID_TASK"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    STORAGE_ERROR = "STORAGE_ERROR"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
    EVENT_AGE_EXCEEDED = "EVENT_AGE_EXCEEDED"
    DISPATCH_FAILED = "DISPATCH_FAILED"
    CANCELLED = "CANCELLED"
    LOST = "LOST"
    SIMULATION_VERSION_CHANGED = "SIMULATION_VERSION_CHANGED"

    @property
    def code(self) -> str:
        return self.value

    @property
    def retryable(self) -> bool:
        """Whether Lambda's retry may help: only storage errors are not deterministic."""
        return self is FailureCode.STORAGE_ERROR


def bounded(message: str) -> str:
    """One line, at most MAX_MESSAGE characters: outcomes carry a reason, never a traceback."""
    line = " ".join(message.split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"
