"""The reconciler: lost events are re-dispatched, then closed as LOST; cancelled runs close as
CANCELLED; concurrent passes write one outcome per shard; succeeded shards are never touched.

Through ``chalice.test.Client`` on moto S3 with the Lambda Invoke API on loopback; the clock is
passed in, so no test waits for a stall timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.fanout.reconcile import reconcile
from chalicelib.storage.stores import S3Store
from tests.support import failed_codes
from tests.support.harness import Harness, body_of

TEN = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"range": {"start": 100, "stop": 120, "step": 1}}},
    "shards": {"count": 10},
    "seed": 1,
}
STALL = 600


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 26, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def harness(s3_store: S3Store) -> Iterator[Harness]:
    h = Harness(s3_store, stall_timeout_s=STALL, max_auto_redrives=2)
    yield h
    h.close()


def rpass(h: Harness, clock: Clock) -> dict[str, int]:
    rt = wiring.current()
    return reconcile(rt.store, rt.invoker, rt.settings, clock)


def status(h: Harness, run_id: str) -> dict[str, Any]:
    result: dict[str, Any] = body_of(h.get(f"/sweeps/{run_id}"))
    return result


def drop(h: Harness, shard_id: int) -> None:
    """Run every pending worker event except the given shard's, which Lambda 'dropped'."""
    h.run_dispatchers()
    h.run_workers([c for c in h.lambda_.take("worker") if c.payload["shard_id"] != shard_id])


def test_a_dropped_event_is_redriven_then_closed_as_lost(harness: Harness) -> None:
    clock = Clock()
    run_id = body_of(harness.post(TEN))["run_id"]
    drop(harness, 3)
    succeeded_before = {
        o.key: harness.store.get(o.key) for o in harness.store.list("outcomes/") if "succ" in o.key
    }
    assert status(harness, run_id)["shards"] == {"succeeded": 9, "failed": 0, "pending": 1}

    assert rpass(harness, clock) == {"progressing": 1}
    clock.advance(STALL - 1)
    assert rpass(harness, clock) == {"waiting": 1}
    for number in (1, 2):
        clock.advance(1)
        assert rpass(harness, clock) == {"redriven": 1}
        assert status(harness, run_id)["auto_redrives"] == number
        assert status(harness, run_id)["shards"]["pending"] == 1
        drop(harness, 3)  # lost again
        assert rpass(harness, clock) == {"progressing": 1}  # the redrive itself is progress
        clock.advance(STALL)
    assert rpass(harness, clock) == {"closed-lost": 1}

    final = status(harness, run_id)
    assert final["complete"] is True and final["failed_shards"] == [3]
    assert final["auto_redrives"] == 2 and final["cancelled"] is False
    assert failed_codes(harness.store, run_id) == {3: ["LOST"]}
    assert {
        o.key: harness.store.get(o.key) for o in harness.store.list("outcomes/") if "succ" in o.key
    } == succeeded_before  # never touched
    assert rpass(harness, clock) == {"complete": 1}
    assert rpass(harness, clock) == {}  # no open runs left to look at
    assert body_of(harness.get("/sweeps"))["runs"][0]["complete"] is True


def test_a_redriven_event_that_arrives_completes_the_run(harness: Harness) -> None:
    clock = Clock()
    run_id = body_of(harness.post(TEN))["run_id"]
    drop(harness, 3)
    rpass(harness, clock)
    clock.advance(STALL)
    assert rpass(harness, clock) == {"redriven": 1}
    harness.run_dispatchers()
    harness.run_workers()
    final = status(harness, run_id)
    assert final["complete"] and final["shards"]["succeeded"] == 10
    assert failed_codes(harness.store, run_id) == {}


def test_concurrent_passes_close_each_shard_once(s3_store: S3Store) -> None:
    h = Harness(s3_store, stall_timeout_s=STALL, max_auto_redrives=0)
    try:
        clock = Clock()
        run_id = body_of(h.post(TEN))["run_id"]
        h.run_dispatchers()
        h.lambda_.take("worker")  # every event lost
        rpass(h, clock)
        clock.advance(STALL)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: rpass(h, clock), range(4)))
        assert any("closed-lost" in r for r in results)
        assert failed_codes(h.store, run_id) == {k: ["LOST"] for k in range(10)}  # once per shard
        assert status(h, run_id)["complete"] is True
    finally:
        h.close()


def test_concurrent_passes_redrive_once(harness: Harness) -> None:
    clock = Clock()
    run_id = body_of(harness.post(TEN))["run_id"]
    drop(harness, 5)
    rpass(harness, clock)
    clock.advance(STALL)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: rpass(harness, clock), range(4)))
    assert sum(r.get("redriven", 0) for r in results) == 1
    assert status(harness, run_id)["auto_redrives"] == 1
    assert len(harness.lambda_.take("dispatcher")) == 1


def test_a_cancelled_run_with_lost_events_closes_as_cancelled(harness: Harness) -> None:
    clock = Clock()
    run_id = body_of(harness.post(TEN))["run_id"]
    harness.run_dispatchers()
    workers = harness.lambda_.take("worker")
    harness.run_workers(workers[:4])
    harness.post({}, f"/sweeps/{run_id}/cancel")  # the other six events are lost
    rpass(harness, clock)
    clock.advance(STALL)
    assert rpass(harness, clock) == {"closed-cancelled": 1}
    assert harness.lambda_.take("dispatcher") == []  # never re-dispatched
    final = status(harness, run_id)
    assert final["complete"] and final["cancelled"] and final["auto_redrives"] == 0
    assert final["shards"] == {"succeeded": 4, "failed": 6, "pending": 0}
    closed = failed_codes(harness.store, run_id)
    assert len(closed) == 6 and all(c == ["CANCELLED"] for c in closed.values())


def test_lost_shards_count_towards_the_failure_threshold(s3_store: S3Store) -> None:
    h = Harness(s3_store, stall_timeout_s=STALL, max_auto_redrives=0)
    try:
        clock = Clock()
        run_id = body_of(h.post(TEN | {"tolerated_failure_percentage": 10}))["run_id"]
        h.run_dispatchers()
        h.run_workers(h.lambda_.take("worker")[:8])
        rpass(h, clock)
        clock.advance(STALL)
        rpass(h, clock)
        final = status(h, run_id)
        assert final["complete"] and final["cancel_reason"] == "FAILURE_THRESHOLD"
    finally:
        h.close()


def test_a_manual_redrive_reopens_a_closed_run(harness: Harness) -> None:
    clock = Clock()
    run_id = body_of(harness.post(TEN | {"fail_shards": [2]}))["run_id"]
    harness.run_dispatchers()
    harness.run_workers()
    assert rpass(harness, clock) == {"complete": 1}
    assert harness.post({}, f"/sweeps/{run_id}/redrive").status_code == 202
    assert rpass(harness, clock) == {"progressing": 1}


def test_the_scheduled_function_runs_a_pass(harness: Harness) -> None:
    body_of(harness.post(TEN))
    event = harness.client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    result = harness.client.lambda_.invoke("reconciler", event)
    assert result.payload == {"progressing": 1}


def test_a_run_with_events_queued_locally_is_not_stalled(harness: Harness) -> None:
    """The local stage's invoker knows what waits in its pool; such a run is never redriven."""
    clock = Clock()
    body_of(harness.post(TEN))
    rt = wiring.current()

    class Busy(type(rt.invoker)):  # type: ignore[misc]
        def in_flight(self, run_id: str) -> bool:
            return True

    busy = Busy.__new__(Busy)
    busy.__dict__.update(rt.invoker.__dict__)
    reconcile(rt.store, busy, rt.settings, clock)
    clock.advance(STALL * 10)
    assert reconcile(rt.store, busy, rt.settings, clock) == {"progressing": 1}


def test_a_closed_shard_is_final_until_an_explicit_redrive(harness: Harness) -> None:
    """A delivery (or an OnFailure record) arriving after the reconciler closed its shard writes
    nothing: the complete run's states and outcome files stay exactly as they were. Only an
    explicit redrive reopens the shard, and then its new event runs."""
    from tests.support import destination_record

    clock = Clock()
    run_id = body_of(harness.post(TEN))["run_id"]
    harness.run_dispatchers()
    events = harness.lambda_.take("worker")
    late = [c for c in events if c.payload["shard_id"] == 3]
    harness.run_workers([c for c in events if c.payload["shard_id"] != 3])
    rpass(harness, clock)
    for _ in range(3):  # two auto redrives, both dropped, then the close
        clock.advance(STALL)
        rpass(harness, clock)
        harness.run_dispatchers()
        harness.lambda_.take("worker")
        rpass(harness, clock)
    closed = status(harness, run_id)
    assert closed["complete"] and failed_codes(harness.store, run_id) == {3: ["LOST"]}
    keys = harness.all_keys()

    harness.run_workers(late)  # Lambda delivers the original event after all
    answer = harness.client.lambda_.invoke("failure_recorder", destination_record(late[0].payload))
    assert answer.payload["status"] == "already_closed"

    # Nothing of the shard or the run is written: each late invocation leaves only its usage
    # record (it is billed, so the run's cost counts it) and the run's index entry may be
    # rewritten by the listing that status does.
    def state(all_keys: list[str]) -> list[str]:
        return [k for k in all_keys if not k.startswith(("usage/", "runs/_index/"))]

    assert state(harness.all_keys()) == state(keys)
    assert status(harness, run_id) == closed

    assert harness.post({}, f"/sweeps/{run_id}/redrive").status_code == 202
    harness.run_dispatchers()
    harness.run_workers()
    final = status(harness, run_id)
    assert final["complete"] and final["shards"]["succeeded"] == 10
