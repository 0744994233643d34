"""Asynchronous invocation of the project's functions, with backoff on throttles.

The same dispatch logic drives two transports: Lambda's ``Invoke`` API (``InvocationType=
Event``) on AWS, and a process pool on the local stage (``local_lambda``). Both raise
``InvokeError``, which says whether trying again could help.
"""

from __future__ import annotations

import json
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from chalicelib.aws import LambdaEndpoint
from chalicelib.config import Settings
from chalicelib.logs import logger
from chalicelib.model import events

Function = Literal["worker", "dispatcher", "compactor"]

# Lambda's answers that mean "not now" rather than "never" (aws-facts: invoke errors).
RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "EC2ThrottledException",
        "ServiceException",
        "ThrottlingException",
    }
)


# Lambda's answers that mean "the function is not ready yet": an inactive function being
# restored (``CodeArtifactUserPendingException``: "Lambda is initializing your function. It will
# be ready to invoke shortly"), a function in the Pending state after a create or an update
# (``ResourceConflictException``, ``ResourceNotReadyException``), SnapStart's
# ``SnapStartNotReadyException`` ("invoke the function when the function state becomes
# Active"). All 409/502s that pass in tens of seconds, longer than a throttle's backoff: a
# dispatcher keeps trying for ``SWEEP_DISPATCH_NOT_READY_S`` before giving a shard up.
NOT_READY_CODES = frozenset(
    {
        "CodeArtifactUserPendingException",
        "ResourceConflictException",
        "ResourceNotReadyException",
        "SnapStartNotReadyException",
    }
)


# Less than this left of a not-ready wait is a float's rest, not a wait.
NOT_READY_LEAST_S = 0.001


class InvokeError(Exception):
    def __init__(self, message: str, retryable: bool, not_ready: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable or not_ready
        self.not_ready = not_ready


class Invoker(ABC):
    @abstractmethod
    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        """Hand ``payload`` to ``function`` without waiting for it to run."""

    def can_invoke(self, function: Function) -> bool:
        """Whether the stage has this function (a deployed stage may name no compactor)."""
        return True

    def in_flight(self, run_id: str) -> bool:
        """Whether this invoker knows an event of the run to be queued or running. Lambda does
        not tell, so only the local stage's invoker answers True."""
        return False

    def orphaned(self, run_id: str, created_at: datetime) -> bool:
        """Whether every event the run ever had is known to be gone, so its pending shards can
        be re-dispatched without waiting out a stall. Lambda does not tell: False."""
        return False

    def waits_on_network(self) -> bool:
        """Whether a hand-over waits for a round trip (Lambda's Invoke): then a leaf dispatcher
        hands over on ``SWEEP_DISPATCH_THREADS`` threads at once."""
        return True

    def worker_concurrency(self) -> int | None:
        """How many worker events can run at once, where events beyond that wait in a queue
        that drops them once too old (Lambda's async queue); dispatch is paced against it
        (``fanout.pacing``). None: no such queue (a test's queue of events), no pacing."""
        return None


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter (a random wait in [0, cap])."""

    max_attempts: int = 8
    base_ms: int = 50
    cap_ms: int = 5_000
    # How long a "not ready" answer (NOT_READY_CODES) is waited out before it counts as an
    # ordinary retryable failure: only a caller with minutes to live (a dispatcher) waits.
    not_ready_s: float = 0.0
    # Set by ``shared``: the ``time.monotonic()`` by which every send using this backoff stops
    # waiting, so a leaf's shards share one wait instead of each taking ``not_ready_s``.
    not_ready_by: float | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, at_most: int | None = None, wait_not_ready: bool = False
    ) -> Backoff:
        """The stage's (``SWEEP_DISPATCH_MAX_ATTEMPTS``, ``SWEEP_DISPATCH_BACKOFF_MS``), with
        at most ``at_most`` attempts for a caller that cannot wait that long;
        ``wait_not_ready``: also wait out a function that is not ready
        (``SWEEP_DISPATCH_NOT_READY_S``)."""
        attempts = settings.dispatch_max_attempts
        if at_most is not None:
            attempts = min(at_most, attempts)
        waits = float(settings.dispatch_not_ready_s) if wait_not_ready else 0.0
        return cls(attempts, settings.dispatch_backoff_ms, not_ready_s=waits)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        return rand() * min(self.cap_ms, self.base_ms * (1 << attempt)) / 1000

    def shared(self, now: float) -> Backoff:
        """This backoff for the sends of one batch (a leaf's shards), from ``now``: a function
        that stays not ready (a deploy left it Failed) then costs the batch ``not_ready_s``,
        not ``not_ready_s`` a shard (1,000 shards on 32 threads: hours past the timeout)."""
        return replace(self, not_ready_by=now + self.not_ready_s)

    def not_ready_pause(self, left_s: float, rand: Callable[[], float] = random.random) -> float:
        """One wait for a function that is not ready: 1-5 s (jittered, so a leaf's threads
        do not ask together), never past what is left of ``not_ready_s``."""
        return min(left_s, 1.0 + 4.0 * rand())


def send(
    invoker: Invoker,
    function: Function,
    payload: dict[str, Any],
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str | None:
    """Invoke with retries; None once handed over, else why it finally could not be. A "not
    ready" answer is waited out for ``backoff.not_ready_s`` (or until ``not_ready_by``, a
    batch's shared deadline) before it counts as an attempt."""
    attempt, waited = 0, 0.0
    while attempt < backoff.max_attempts:
        try:
            invoker.invoke(function, payload)
            return None
        except InvokeError as exc:
            left = backoff.not_ready_s - waited
            if backoff.not_ready_by is not None:
                left = min(left, backoff.not_ready_by - clock())
            if exc.not_ready and left >= NOT_READY_LEAST_S:
                pause = backoff.not_ready_pause(left)
                sleep(pause)
                waited += pause
                continue
            if not exc.retryable or attempt == backoff.max_attempts - 1:
                tried = f"{attempt + 1} attempt{'s' if attempt else ''}"
                late = f", {waited:.0f} s waiting for the function to be ready" if waited else ""
                return f"{exc} (after {tried}{late})"
            sleep(backoff.delay(attempt))
            attempt += 1
    return "no attempt was made"


def request_compaction(invoker: Invoker, run_id: str) -> bool:
    """Hand a complete run to the compactor, once and best effort: whoever wrote the run's
    summary calls this, and the reconciler retries a run not compacted yet, so a lost event
    only delays compaction. True if handed over."""
    try:
        invoker.invoke("compactor", {"run_id": run_id})
        return True
    except InvokeError as exc:
        logger.warning(
            "compaction not requested; the reconciler retries",
            extra={"run_id": run_id, "error": str(exc)},
        )
        return False


def compactor_trigger(invoker: Invoker | None) -> Callable[[str], object]:
    """What a run's summary writer calls (``storage.summary.listed``, the one place a summary
    of a newly complete run is written): the run handed to the compactor. Without an invoker
    (a benchmark or test reading a store directly), or on a stage with no compactor, nothing is
    asked."""
    if invoker is None or not invoker.can_invoke("compactor"):
        return lambda _run_id: False
    return lambda run_id: request_compaction(invoker, run_id)


def encode(payload: dict[str, Any]) -> bytes:
    """The event as Lambda receives it; one over the async size limit can never be sent."""
    try:
        return events.encode(payload)
    except ValueError as exc:
        raise InvokeError(str(exc), retryable=False) from None


class LambdaInvoker(Invoker):
    """``Invoke`` with ``InvocationType=Event``, sent as one SigV4-signed request.

    Dispatch is CPU-bound, and botocore's ``client.invoke`` spends much more CPU per call than
    the signed request alone (docs/benchmarks.md has both). So botocore resolves the
    endpoint and credentials once and signs each request (``SigV4Auth``), and urllib3 sends it
    on a pool shared by every thread; the REST call itself is Lambda's documented
    ``POST /2015-03-31/functions/{name}/invocations``.
    """

    def __init__(
        self,
        function_names: dict[str, str],
        endpoint_factory: Callable[[], LambdaEndpoint],
        reserved_concurrency: int = 0,
        fallback_concurrency: int = 100,
    ) -> None:
        self.paths = {
            fn: f"/2015-03-31/functions/{quote(name, safe='')}/invocations"
            for fn, name in function_names.items()
        }
        self._endpoint_factory = endpoint_factory
        self._reserved = reserved_concurrency
        self._fallback = fallback_concurrency
        self._account: tuple[float, int] | None = None  # (when read, unreserved concurrency)

    def worker_concurrency(self) -> int:
        """The concurrency a run's workers may take: the worker's reservation when the stage
        sets one; else the account's unreserved concurrency (``GetAccountSettings``, re-read
        every ``ACCOUNT_TTL_S``), else the stage's fallback (logged), each less the headroom
        the functions sharing that pool keep (``shared_share``)."""
        if self._reserved:
            return self._reserved
        now = time.monotonic()
        if self._account is None or now - self._account[0] > ACCOUNT_TTL_S:
            try:
                self._account = (now, self._unreserved())
            except InvokeError as exc:
                logger.warning(
                    "GetAccountSettings failed; pacing assumes the fallback concurrency",
                    extra={"error": str(exc), "fallback": self._fallback},
                )
                return shared_share(self._fallback)
        return shared_share(self._account[1])

    def _unreserved(self) -> int:
        endpoint = self._endpoint_factory()
        if endpoint.credentials is None:
            raise InvokeError("no AWS credentials to sign with", retryable=False)
        url = endpoint.url + ACCOUNT_SETTINGS_PATH
        request = AWSRequest("GET", url)
        credentials = endpoint.credentials.get_frozen_credentials()
        SigV4Auth(credentials, "lambda", endpoint.region).add_auth(request)
        try:
            response = endpoint.http.request(
                "GET", url, headers=dict(request.headers.items()), retries=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise InvokeError(f"{type(exc).__name__}: {exc}", retryable=True) from None
        if response.status != 200:
            raise _invoke_error(response.status, response.headers, response.data)
        try:
            value = json.loads(response.data)["AccountLimit"]["UnreservedConcurrentExecutions"]
        except (ValueError, KeyError, TypeError):
            raise InvokeError("GetAccountSettings: no unreserved concurrency", False) from None
        if not isinstance(value, int) or value < 1:
            raise InvokeError(f"GetAccountSettings: unreserved concurrency {value!r}", False)
        return value

    def can_invoke(self, function: Function) -> bool:
        return function in self.paths

    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        if function not in self.paths:
            raise InvokeError(f"the stage names no {function} function", retryable=False)
        endpoint = self._endpoint_factory()
        if endpoint.credentials is None:
            raise InvokeError("no AWS credentials to sign with", retryable=False)
        body = encode(payload)
        url = endpoint.url + self.paths[function]
        request = AWSRequest("POST", url, data=body, headers=INVOKE_HEADERS)
        credentials = endpoint.credentials.get_frozen_credentials()
        SigV4Auth(credentials, "lambda", endpoint.region).add_auth(request)
        try:
            response = endpoint.http.request(
                "POST", url, body=body, headers=dict(request.headers.items()), retries=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise InvokeError(f"{type(exc).__name__}: {exc}", retryable=True) from None
        if response.status != 202:
            raise _invoke_error(response.status, response.headers, response.data)


ACCOUNT_SETTINGS_PATH = "/2016-08-19/account-settings/"  # Lambda's GetAccountSettings
ACCOUNT_TTL_S = 300.0


def shared_share(unreserved: int) -> int:
    """What a run's workers may take of the account's unreserved concurrency, a pool every
    function without a reservation shares: the rest is left to the others. Workers that took
    all of it would have Lambda throttle the API handler, whose synchronous calls API Gateway
    then answers 500 (``GET /sweeps/{id}`` included, for the whole run), and the dispatchers,
    the reconciler, the failure recorder and the compactor (retried later, being async).
    Left free: a tenth, and at least ten or half of a small pool (4 of 7, 900 of 1,000)."""
    headroom = max(math.ceil(unreserved / 10), min(10, unreserved // 2))
    return max(1, unreserved - headroom)


INVOKE_HEADERS = {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}


def _invoke_error(status: int, headers: Any, data: bytes) -> InvokeError:
    """Lambda's REST error: the code in ``X-Amzn-ErrorType`` (``Code:uri``) or the body."""
    try:
        body = json.loads(data or b"{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = str(headers.get("x-amzn-errortype", "")).split(":")[0] or str(
        body.get("__type") or body.get("Type") or f"HTTP{status}"
    )
    message = str(body.get("message") or body.get("Message") or "")
    retryable = code in RETRYABLE_CODES or status == 429 or status >= 500
    text = f"{code} ({status}): {message}".rstrip(": ")
    return InvokeError(text, retryable, not_ready=code in NOT_READY_CODES)
