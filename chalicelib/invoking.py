"""Asynchronous invocation of the project's functions, with backoff on throttles.

The same dispatch logic drives two transports: Lambda's ``Invoke`` API (``InvocationType=
Event``) on AWS, and a process pool on the local stage (``local_backend``). Both raise
``InvokeError``, which says whether trying again could help.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from chalicelib import task

Function = Literal["worker", "dispatcher"]

# Lambda's answers that mean "not now" rather than "never" (aws-facts: invoke errors).
RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "EC2ThrottledException",
        "ServiceException",
        "ResourceNotReadyException",
        "ThrottlingException",
    }
)


class InvokeError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Invoker(ABC):
    @abstractmethod
    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        """Hand ``payload`` to ``function`` without waiting for it to run."""


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter (a random wait in [0, cap])."""

    max_attempts: int = 8
    base_ms: int = 50
    cap_ms: int = 5_000

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        return rand() * min(self.cap_ms, self.base_ms * (1 << attempt)) / 1000


def send(
    invoker: Invoker,
    function: Function,
    payload: dict[str, Any],
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Invoke with retries; None once handed over, else why it finally could not be."""
    for attempt in range(backoff.max_attempts):
        try:
            invoker.invoke(function, payload)
            return None
        except InvokeError as exc:
            if not exc.retryable or attempt == backoff.max_attempts - 1:
                return f"{exc} (after {attempt + 1} attempt{'s' if attempt else ''})"
            sleep(backoff.delay(attempt))
    return "no attempt was made"


class LambdaInvoker(Invoker):
    """Lambda ``Invoke`` with ``InvocationType=Event``; one shared client for all threads."""

    def __init__(self, function_names: dict[str, str], client_factory: Callable[[], Any]) -> None:
        self.function_names = function_names
        self._client_factory = client_factory
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        try:
            response = self.client.invoke(
                FunctionName=self.function_names[function],
                InvocationType="Event",
                Payload=task.encode(payload),
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            raise InvokeError(
                f"{code}: {error.get('Message', '')}".strip(),
                retryable=code in RETRYABLE_CODES or status >= 500,
            ) from None
        except (
            EndpointConnectionError,
            ConnectionClosedError,
            ReadTimeoutError,
            ConnectTimeoutError,
        ) as exc:
            raise InvokeError(type(exc).__name__, retryable=True) from None
        # Drain the (empty) streaming body: urllib3 keeps the connection checked out until it
        # is read, so an unread Payload costs every Invoke a new connection (and TLS handshake).
        response["Payload"].read()
        if response.get("StatusCode") != 202:
            raise InvokeError(f"Invoke answered {response.get('StatusCode')}", retryable=True)
