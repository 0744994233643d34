"""Failure codes an outcome can carry; docs/error-codes.md explains each to operators.

``retryable`` says whether Lambda's async retry will run the shard again: deterministic
failures would fail the same way, so the worker records them as final and returns normally.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_MESSAGE = 1000


@dataclass(frozen=True)
class ErrorCode:
    code: str
    retryable: bool


INJECTED_FAILURE = ErrorCode("INJECTED_FAILURE", retryable=False)
SIMULATION_ERROR = ErrorCode("SIMULATION_ERROR", retryable=False)
INVALID_TASK = ErrorCode("INVALID_TASK", retryable=False)
DEADLINE_EXCEEDED = ErrorCode("DEADLINE_EXCEEDED", retryable=False)
STORAGE_ERROR = ErrorCode("STORAGE_ERROR", retryable=True)
RETRIES_EXHAUSTED = ErrorCode("RETRIES_EXHAUSTED", retryable=False)
EVENT_AGE_EXCEEDED = ErrorCode("EVENT_AGE_EXCEEDED", retryable=False)
DISPATCH_FAILED = ErrorCode("DISPATCH_FAILED", retryable=False)
CANCELLED = ErrorCode("CANCELLED", retryable=False)
LOST = ErrorCode("LOST", retryable=False)

ALL = (
    INJECTED_FAILURE,
    SIMULATION_ERROR,
    INVALID_TASK,
    DEADLINE_EXCEEDED,
    STORAGE_ERROR,
    RETRIES_EXHAUSTED,
    EVENT_AGE_EXCEEDED,
    DISPATCH_FAILED,
    CANCELLED,
    LOST,
)


def bounded(message: str) -> str:
    """One line, at most MAX_MESSAGE characters: outcomes carry a reason, never a traceback."""
    line = " ".join(message.split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"
