"""The Invoke sender: backoff, retry decisions, and Lambda's error shapes over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from botocore.credentials import Credentials

from chalicelib.aws import LambdaEndpoint
from chalicelib.config import Settings
from chalicelib.fanout.invoking import (
    Backoff,
    Function,
    InvokeError,
    Invoker,
    LambdaInvoker,
    send,
)
from chalicelib.runs.handoff import API_MAX_ATTEMPTS
from scripts.invoke_standin import Call, StandIn

NAMES = {
    "worker": "arn:aws:lambda:us-east-1:123456789012:function:sweeps-dev-worker",
    "dispatcher": "sweeps-dev-dispatcher",
}


class Scripted(Invoker):
    """Fails with the scripted errors, then accepts."""

    def __init__(self, errors: list[InvokeError]) -> None:
        self.errors = errors
        self.calls = 0

    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    backoff = Backoff(max_attempts=8, base_ms=50, cap_ms=5000)
    assert [backoff.delay(k, lambda: 1.0) for k in range(0, 9, 2)] == [0.05, 0.2, 0.8, 3.2, 5.0]
    assert backoff.delay(3, lambda: 0.0) == 0.0


def test_send_retries_retryable_errors_then_succeeds() -> None:
    sleeps: list[float] = []
    invoker = Scripted([InvokeError("throttled", retryable=True)] * 3)
    assert send(invoker, "worker", {}, Backoff(max_attempts=5), sleeps.append) is None
    assert invoker.calls == 4 and len(sleeps) == 3


def test_send_gives_up_after_max_attempts_or_at_once_when_hopeless() -> None:
    always = Scripted([InvokeError("throttled", retryable=True)] * 10)
    error = send(always, "worker", {}, Backoff(max_attempts=3), lambda _: None)
    assert error == "throttled (after 3 attempts)" and always.calls == 3
    hopeless = Scripted([InvokeError("no such function", retryable=False)])
    assert send(hopeless, "worker", {}, Backoff(max_attempts=3), lambda _: None) == (
        "no such function (after 1 attempt)"
    )
    assert hopeless.calls == 1


@pytest.fixture
def recorder() -> Iterator[StandIn]:
    answers = {
        "throttle": (429, "TooManyRequestsException"),
        "gone": (404, "ResourceNotFoundException"),
        "ec2": (502, "EC2ThrottledException"),
        "big": (413, "RequestTooLargeException"),
        "inactive": (409, "CodeArtifactUserPendingException"),
        "pending": (409, "ResourceConflictException"),
        "snapstart": (409, "SnapStartNotReadyException"),
        "vpc": (502, "ResourceNotReadyException"),
    }

    def rule(call: Call, tries: int) -> tuple[int, str] | None:
        return answers.get(call.payload.get("case", ""))

    lam = StandIn(rule=rule).start()
    yield lam
    lam.stop()


@pytest.mark.parametrize(
    ("case", "retryable", "code"),
    [
        ("throttle", True, "TooManyRequestsException"),
        ("ec2", True, "EC2ThrottledException"),
        ("gone", False, "ResourceNotFoundException"),
        ("big", False, "RequestTooLargeException"),
        ("inactive", True, "CodeArtifactUserPendingException"),
        ("pending", True, "ResourceConflictException"),
        ("snapstart", True, "SnapStartNotReadyException"),
        ("vpc", True, "ResourceNotReadyException"),
    ],
)
def test_lambda_errors_are_classified(
    recorder: StandIn, case: str, retryable: bool, code: str
) -> None:
    """Lambda's "not ready yet" answers (an inactive function being restored, one pending
    after an update) were final: a dispatcher then failed every shard it met."""
    invoker = LambdaInvoker(NAMES, recorder.endpoint)
    with pytest.raises(InvokeError) as caught:
        invoker.invoke("worker", {"case": case})
    assert caught.value.retryable is retryable and code in str(caught.value)
    assert caught.value.not_ready is (case in {"inactive", "pending", "snapstart", "vpc"})


def test_a_function_not_ready_is_waited_out_without_spending_attempts() -> None:
    pending = InvokeError("CodeArtifactUserPendingException (409)", False, not_ready=True)
    sleeps: list[float] = []
    waking = Scripted([pending] * 12)  # ~36 s of "initializing", then ready
    backoff = Backoff(max_attempts=2, not_ready_s=300)
    assert send(waking, "worker", {}, backoff, sleeps.append) is None
    assert waking.calls == 13 and all(1 <= s <= 5 for s in sleeps)
    # Without a budget (the API handler): an ordinary retryable failure, attempts counted.
    never = Scripted([pending] * 12)
    error = send(never, "worker", {}, Backoff(max_attempts=2), lambda _: None)
    assert error == "CodeArtifactUserPendingException (409) (after 2 attempts)"
    # A budget spent: the wait is bounded, then the attempts.
    sleeps.clear()
    stuck = Scripted([pending] * 1000)
    error = send(stuck, "worker", {}, Backoff(max_attempts=2, not_ready_s=20), sleeps.append)
    assert error is not None and error.endswith("s waiting for the function to be ready)")
    assert sum(sleeps[:-1]) == pytest.approx(20)  # the last sleep is an attempt's backoff


def test_a_batch_shares_one_not_ready_wait() -> None:
    """A leaf's shards wait for one deadline, not each for the whole budget: a function a
    deploy left Failed answers "not ready" for good, and 1,000 shards each waiting 300 s on
    32 threads would outlast the dispatcher's 900 s by hours."""
    pending = InvokeError("ResourceConflictException (409)", False, not_ready=True)
    now = [1000.0]

    def sleep(s: float) -> None:
        now[0] += s

    batch = Backoff(max_attempts=1, not_ready_s=300).shared(now[0])
    first = send(Scripted([pending] * 1000), "worker", {}, batch, sleep, lambda: now[0])
    assert first is not None and now[0] == pytest.approx(1300)  # the first waited it out
    second = send(Scripted([pending] * 1000), "worker", {}, batch, sleep, lambda: now[0])
    assert second == "ResourceConflictException (409) (after 1 attempt)"
    assert now[0] == pytest.approx(1300)  # the next shard did not wait again


def test_a_signed_event_invoke_reaches_the_named_function(recorder: StandIn) -> None:
    invoker = LambdaInvoker(NAMES, recorder.endpoint)
    invoker.invoke("worker", {"shard_id": 3})
    invoker.invoke("dispatcher", {"dispatch": {}})
    assert recorder.unsigned == 0
    assert [(c.function, c.payload) for c in recorder.accepted] == [
        (NAMES["worker"], {"shard_id": 3}),
        ("sweeps-dev-dispatcher", {"dispatch": {}}),
    ]


def test_connection_failures_are_retryable_and_missing_credentials_are_not() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=1))
    down = LambdaEndpoint(closed, "us-east-1", Credentials("testing", "testing"), http)
    with pytest.raises(InvokeError) as caught:
        LambdaInvoker(NAMES, lambda: down).invoke("worker", {})
    assert caught.value.retryable is True
    anonymous = LambdaEndpoint(closed, "us-east-1", None, http)
    with pytest.raises(InvokeError) as caught:
        LambdaInvoker(NAMES, lambda: anonymous).invoke("worker", {})
    assert caught.value.retryable is False


def test_payloads_over_the_async_limit_are_refused_before_sending(
    recorder: StandIn,
) -> None:
    with pytest.raises(InvokeError, match="async limit") as caught:
        LambdaInvoker(NAMES, recorder.endpoint).invoke("worker", {"x": "y" * 1_100_000})
    assert caught.value.retryable is False
    assert recorder.accepted == [] and recorder.refused == []


def test_the_backoff_is_the_stages_and_the_api_handler_makes_at_most_four_attempts() -> None:
    env = {"SWEEP_DISPATCH_MAX_ATTEMPTS": "6", "SWEEP_DISPATCH_BACKOFF_MS": "7"}
    settings = Settings.from_env(env)
    assert Backoff.from_settings(settings) == Backoff(6, 7)
    assert Backoff.from_settings(settings, wait_not_ready=True) == Backoff(6, 7, not_ready_s=300)
    assert Backoff.from_settings(settings, at_most=API_MAX_ATTEMPTS) == Backoff(4, 7)
    assert Backoff.from_settings(
        Settings.from_env(env | {"SWEEP_DISPATCH_MAX_ATTEMPTS": "2"}), 4
    ) == Backoff(2, 7)
