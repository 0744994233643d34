"""Pacing on the deployed code paths (``tests.support.inline``: the API, dispatchers, workers
and reconciler in one thread, events queued as Lambda would deliver them): a job larger than its
window is handed out in slices that never put more than the window's worth of shards in
flight, through continuation events; a duplicate step stops at once; a lost continuation is
resumed by the reconciler. And where the window's concurrency comes from on a deployed stage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.analytics.catalog import NoCatalog
from chalicelib.config import Settings
from chalicelib.fanout.dispatcher import run_event
from chalicelib.fanout.invoking import LambdaInvoker, shared_share
from chalicelib.fanout.reconcile import reconcile
from chalicelib.runs.cancel import cancel
from chalicelib.runs.status import status
from chalicelib.storage import layout
from chalicelib.storage.stores import ObjectStore, S3Store
from scripts.invoke_standin import StandIn
from tests.support import failed_codes
from tests.support.harness import FIFTY, Harness, body_of
from tests.support.inline import Inline, QueueInvoker
from tests.support.store_models import S3LatencyStore

CONCURRENCY = 3
SHARDS = 20 * CONCURRENCY
SWEEP = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"range": {"start": 10, "stop": 10 + SHARDS, "step": 1}}},
    "shards": {"count": SHARDS},
}
NAMES = {"worker": "sweeps-dev-worker", "dispatcher": "sweeps-dev-dispatcher"}


class LimitedQueue(QueueInvoker):
    """Lambda's queue as a test sees it: a worker that runs ``CONCURRENCY`` events at once."""

    def worker_concurrency(self) -> int:
        return CONCURRENCY


def paced_inline(**overrides: Any) -> Inline:
    # No polling: each pacer hands out what its window allows, then continues at once, so the
    # queue drains in order with no wait.
    settings = Settings(stage="dev", dispatch_backoff_ms=1, pacing_max_wait_s=0, **overrides)
    inline = Inline(S3LatencyStore(latency_s=0), settings)
    inline.invoker = LimitedQueue()
    return inline


def watch_in_flight(inline: Inline) -> list[int]:
    """Before each worker runs: how many of the run's shards are handed out and not final
    (queued worker events, this one included)."""
    seen: list[int] = []

    def worker(payload: dict[str, Any]) -> Any:
        seen.append(1 + sum(1 for fn, _ in inline.invoker.queue if fn == "worker"))
        return inline.run_worker(payload)

    inline.worker = worker
    return seen


def continuations(inline: Inline) -> list[dict[str, Any]]:
    return [p for fn, p in inline.invoker.queue if fn == "dispatcher" and "step" in p["dispatch"]]


def test_a_job_of_twenty_windows_never_has_more_than_one_window_in_flight() -> None:
    inline = paced_inline()
    in_flight = watch_in_flight(inline)
    run_id = inline.submit(SWEEP)
    assert inline.drain() == SHARDS  # each shard handed out once
    assert max(in_flight) <= CONCURRENCY  # the window, k = 1
    assert inline.invoker.sent["worker"] == SHARDS
    assert inline.invoker.sent["dispatcher"] > SHARDS // CONCURRENCY  # slices + continuations
    done = status(inline.store, run_id)
    assert done["complete"] and done["shards"] == {"succeeded": SHARDS, "failed": 0, "pending": 0}


def test_without_a_queue_model_nothing_is_paced() -> None:
    """A transport that reports no concurrency (a test's queue) gets the plain tree."""
    inline = Inline(S3LatencyStore(latency_s=0))
    in_flight = watch_in_flight(inline)
    inline.submit(SWEEP)
    inline.drain()
    assert max(in_flight) == SHARDS  # all handed out before the first ran


def run_until_continued(inline: Inline) -> dict[str, Any]:
    """Deliver queued events until the first continuation is queued; that continuation."""
    while not continuations(inline):
        fn, payload = inline.invoker.queue.popleft()
        if fn == "dispatcher":
            run_event(payload, inline.store, inline.invoker, inline.settings, NoCatalog())
        else:
            inline.worker(payload)
    (following,) = continuations(inline)
    return following


def on_store(store: ObjectStore) -> Inline:
    inline = Inline(store, Settings(stage="dev", dispatch_backoff_ms=1, pacing_max_wait_s=0))
    inline.invoker = LimitedQueue()
    return inline


@pytest.mark.parametrize("kind", ["local_store", "s3_store"])
def test_a_duplicate_step_stops_at_once_on_both_real_stores(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Both stores count a create that finds its own bytes as made (a retried PUT), so the
    claim must carry unique bytes: with an empty claim the duplicate continued too."""
    inline = on_store(request.getfixturevalue(kind))
    inline.submit(SWEEP)
    following = run_until_continued(inline)
    first = run_event(following, inline.store, inline.invoker, inline.settings, NoCatalog())
    sent = inline.invoker.sent["worker"]
    again = run_event(following, inline.store, inline.invoker, inline.settings, NoCatalog())
    assert first["paced"] == "continued" and again["paced"] == "duplicate"
    assert inline.invoker.sent["worker"] == sent  # the duplicate handed nothing out


@pytest.mark.parametrize("kind", ["local_store", "s3_store"])
def test_a_root_delivered_twice_hands_its_first_window_out_once(
    kind: str, request: pytest.FixtureRequest
) -> None:
    inline = on_store(request.getfixturevalue(kind))
    run_id = inline.submit(SWEEP)
    ((_, root),) = list(inline.invoker.queue)
    inline.invoker.queue.clear()
    first = run_event(root, inline.store, inline.invoker, inline.settings, NoCatalog())
    queued = list(inline.invoker.queue)
    again = run_event(root, inline.store, inline.invoker, inline.settings, NoCatalog())
    assert first["paced"] == "continued" and again["paced"] == "duplicate"
    assert list(inline.invoker.queue) == queued  # nothing more queued
    inline.drain()
    done = status(inline.store, run_id)
    assert done["complete"] and done["dispatch"]["dispatched"] == SHARDS


def test_a_run_cancelled_before_its_first_hand_out_completes_at_once() -> None:
    """The pacer hands a cancelled job out whole, to leaves that record CANCELLED: that slice
    spans the whole job, and was taken for the job's root (paced again, a duplicate step),
    so the run stayed pending until the reconciler closed it hours later."""
    inline = paced_inline()
    run_id = inline.submit(SWEEP)
    assert cancel(inline.store, run_id)["cancelled"]
    inline.drain()
    done = status(inline.store, run_id)
    assert done["complete"] and done["cancelled"]
    assert done["shards"] == {"succeeded": 0, "failed": SHARDS, "pending": 0}
    codes = failed_codes(inline.store, run_id)
    assert sorted(codes) == list(range(SHARDS))
    assert all(c == ["CANCELLED"] for c in codes.values())


def test_a_duplicate_step_stops_at_once() -> None:
    inline = paced_inline()
    inline.submit(SWEEP)
    following = run_until_continued(inline)
    first = run_event(following, inline.store, inline.invoker, inline.settings, NoCatalog())
    again = run_event(following, inline.store, inline.invoker, inline.settings, NoCatalog())
    assert first["paced"] == "continued" and again["paced"] == "duplicate"


def test_a_lost_continuation_is_resumed_by_the_reconciler() -> None:
    inline = paced_inline()
    run_id = inline.submit(SWEEP)
    lost = 0
    while inline.invoker.queue:
        fn, payload = inline.invoker.queue.popleft()
        if fn == "dispatcher" and payload["dispatch"].get("step") == 3:
            lost += 1  # Lambda dropped the third continuation
            continue
        if fn == "dispatcher":
            run_event(payload, inline.store, inline.invoker, inline.settings, NoCatalog())
        else:
            inline.worker(payload)
    assert lost == 1
    stranded = status(inline.store, run_id)
    assert not stranded["complete"] and stranded["shards"]["pending"] > 0

    t = datetime.now(UTC)
    assert reconcile(inline.store, inline.invoker, inline.settings, lambda: t) == {
        "progressing": 1
    }  # the pacer's state is fresh: not yet
    later = t + timedelta(seconds=inline.settings.pacing_resume_s + 1)
    assert reconcile(inline.store, inline.invoker, inline.settings, lambda: later) == {
        "resumed-pacing": 1
    }
    inline.drain()
    done = status(inline.store, run_id)
    assert done["complete"] and done["shards"]["succeeded"] == SHARDS
    assert done["auto_redrives"] == 0  # resumed, not redriven after a stall
    # Complete: its compaction is asked for, and the run stays watched until that is done.
    assert reconcile(inline.store, inline.invoker, inline.settings, lambda: later) == {
        "compacting": 1
    }
    assert inline.store.exists(layout.open_run(run_id))


def test_the_deployed_concurrency_is_the_reservation_else_the_account_else_the_fallback() -> None:
    """A run's workers take the worker's reservation, else the account's shared unreserved
    pool less the headroom the stage's other functions keep (the API handler among them),
    else the fallback less that headroom."""
    with StandIn(unreserved=7) as lambda_:
        endpoint = lambda_.endpoint()
        account = LambdaInvoker(NAMES, lambda: endpoint)
        assert account.worker_concurrency() == 4  # GetAccountSettings, signed: 3 left free
        assert account.worker_concurrency() == 4 and lambda_.account_reads == 1  # cached
        reserved = LambdaInvoker(NAMES, lambda: endpoint, reserved_concurrency=50)
        assert reserved.worker_concurrency() == 50 and lambda_.account_reads == 1
    with StandIn(unreserved=1000) as lambda_:
        endpoint = lambda_.endpoint()
        assert LambdaInvoker(NAMES, lambda: endpoint).worker_concurrency() == 900
    # Lambda cannot be reached (nothing listens there any more): the stage's fallback.
    with StandIn() as closed:
        nowhere = closed.endpoint()
    gone = LambdaInvoker(NAMES, lambda: nowhere, fallback_concurrency=100)
    assert gone.worker_concurrency() == 90


@pytest.mark.parametrize(
    ("unreserved", "taken"),
    [(1, 1), (2, 1), (3, 2), (7, 4), (10, 5), (20, 10), (100, 90), (1000, 900), (10_000, 9000)],
)
def test_a_run_never_takes_the_whole_shared_pool(unreserved: int, taken: int) -> None:
    """At least one worker; a tenth of the pool left free, and at least ten (or half of a
    small pool)."""
    assert shared_share(unreserved) == taken


def test_the_deployed_dispatcher_paces_within_its_invocation(s3_store: S3Store) -> None:
    """The dispatcher function (app.py) through chalice.test, whose context has 3 s to live:
    with a reservation of 5 the 50-shard run is paced, each invocation stops within its time
    (the budget is what is left less the margin) and continues; workers run between rounds of
    dispatcher events, as Lambda would run them meanwhile. Never more than 5 in flight."""
    harness = Harness(s3_store, worker_reserved_concurrency=5, pacing_poll_ms=100)
    try:
        run_id = body_of(harness.post(FIFTY))["run_id"]
        most = 0
        for _ in range(200):  # bounded: each round hands out at least one slice or ends
            for call in harness.lambda_.take("dispatcher"):
                answer = harness.client.lambda_.invoke("dispatcher", call.payload)
                assert answer.payload.get("paced") != "duplicate"
            workers = harness.lambda_.take("worker")
            most = max(most, len(workers))
            if not workers and not harness.lambda_.accepted:
                break
            harness.run_workers(workers)
        done = body_of(harness.get(f"/sweeps/{run_id}"))
    finally:
        harness.close()
    assert done["complete"] and done["shards"] == {"succeeded": 48, "failed": 2, "pending": 0}
    assert 0 < most <= 5
    assert harness.lambda_.account_reads == 0  # the reservation: no GetAccountSettings
