"""Cancel and the failure threshold, end to end through ``chalice.test.Client``: moto S3, the
Lambda Invoke API on loopback, and the dispatcher and worker functions fed by hand.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq
import pytest

from chalicelib.execution import worker
from chalicelib.execution.failure_recorder import record_destination
from chalicelib.execution.worker import CancelPoll, run_task
from chalicelib.storage import layout
from chalicelib.storage.stores import S3Store
from tests.support import destination_record, failed_codes
from tests.support.harness import FIFTY, JSON, Harness, body_of

TEN = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"range": {"start": 100, "stop": 120, "step": 1}}},
    "shards": {"count": 10},
    "seed": 1,
}


def test_cancel_before_dispatch_hands_out_nothing(harness: Harness) -> None:
    run_id = body_of(harness.post(FIFTY))["run_id"]
    answer = harness.post({}, f"/sweeps/{run_id}/cancel")
    assert answer.status_code == 202
    assert body_of(answer) == {
        "run_id": run_id,
        "cancelled": True,
        "cancel_reason": "USER",
        "status_url": f"/sweeps/{run_id}",
    }
    harness.run_dispatchers()
    assert harness.lambda_.take("worker") == []
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    assert status["complete"] is True and status["cancelled"] is True
    assert status["cancel_reason"] == "USER"
    assert status["shards"] == {"succeeded": 0, "failed": 50, "pending": 0}
    codes = failed_codes(harness.store, run_id)
    assert sorted(codes) == list(range(50))
    assert all(c == ["CANCELLED"] for c in codes.values())
    # Rows of attempts that never ran: no S3 requests of their own (the leaf's are its own
    # invocation's, in its usage record), and no duration (not the leaf's time so far).
    rows = [
        pq.read_table(io.BytesIO(harness.store.get(o.key))).to_pylist()[0]
        for o in harness.store.list(layout.outcomes_prefix(run_id))
    ]
    assert len(rows) == 50
    assert {(r["s3_requests"], r["duration_ms"]) for r in rows} == {(None, 0)}


@pytest.mark.parametrize(
    ("raw", "headers", "status", "path"),
    [
        ('{"reason": ', JSON, 400, None),  # not JSON
        ("[]", JSON, 400, "/"),
        ('{"reason": "late"}', JSON, 400, "/reason"),  # cancel takes no field
        ("stop", {"Content-Type": "text/plain"}, 415, None),
        ("{}" + " " * 300_000, JSON, 413, None),
    ],
    ids=["invalid JSON", "not an object", "unknown field", "wrong content type", "oversize"],
)
def test_a_cancel_with_a_bad_body_is_a_4xx_and_cancels_nothing(
    harness: Harness, raw: str, headers: dict[str, str], status: int, path: str | None
) -> None:
    """The contract's errors hold for every body: cancel takes none (or ``{}``), and a body
    it cannot take is refused like any other, before anything is written."""
    run_id = body_of(harness.post(FIFTY))["run_id"]
    answer = harness.post(raw, f"/sweeps/{run_id}/cancel", headers=headers)
    assert answer.status_code == status
    if path is not None:
        assert [p["path"] for p in body_of(answer)["problems"]] == [path]
    assert not harness.store.exists(layout.cancel_marker(run_id))
    assert body_of(harness.get(f"/sweeps/{run_id}"))["cancelled"] is False
    for empty in ("", "{}"):  # no body at all, or an empty object: both cancel
        assert harness.post(empty, f"/sweeps/{run_id}/cancel").status_code == 202


def test_cancel_racing_running_workers(harness: Harness) -> None:
    """Workers that ran before the cancel keep their outcome; those that start after record
    CANCELLED; the run completes with every shard represented once."""
    run_id = body_of(harness.post(FIFTY))["run_id"]
    harness.run_dispatchers()
    workers = sorted(harness.lambda_.take("worker"), key=lambda c: c.payload["shard_id"])
    harness.run_workers(workers[:20])
    before = body_of(harness.get(f"/sweeps/{run_id}"))
    assert before["shards"] == {"succeeded": 19, "failed": 1, "pending": 30}
    assert harness.post({}, f"/sweeps/{run_id}/cancel").status_code == 202
    harness.run_workers(workers[20:] + workers[:3])  # with a few duplicate deliveries
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    assert status["complete"] and status["cancelled"]
    assert status["shards"] == {"succeeded": 19, "failed": 31, "pending": 0}
    codes = failed_codes(harness.store, run_id)
    assert codes[7] == ["INJECTED_FAILURE"]
    assert all(codes[k] == ["CANCELLED"] for k in range(20, 50))
    assert len([k for k in harness.all_keys() if "status=succeeded" in k]) == 19


def test_cancel_twice_is_harmless_and_a_complete_run_is_a_conflict(harness: Harness) -> None:
    run_id = body_of(harness.post(TEN))["run_id"]
    first = harness.post({}, f"/sweeps/{run_id}/cancel")
    second = harness.client.http.post(f"/sweeps/{run_id}/cancel")  # no body at all
    assert first.status_code == second.status_code == 202
    assert body_of(first) == body_of(second)
    harness.run_dispatchers()  # nothing handed out: every shard closes CANCELLED
    closed = body_of(harness.get(f"/sweeps/{run_id}"))
    assert closed["complete"] and closed["cancelled"]
    third = harness.post({}, f"/sweeps/{run_id}/cancel")  # once complete too: same state
    assert third.status_code == 202 and body_of(third) == body_of(first)
    assert body_of(harness.get(f"/sweeps/{run_id}")) == closed

    done = body_of(harness.post(TEN))["run_id"]
    harness.run_dispatchers()
    harness.run_workers()
    assert body_of(harness.get(f"/sweeps/{done}"))["complete"] is True
    conflict = harness.post({}, f"/sweeps/{done}/cancel")
    assert conflict.status_code == 409
    assert body_of(conflict)["error"] == "conflict"
    assert body_of(harness.get(f"/sweeps/{done}"))["cancelled"] is False


def test_a_cancelled_run_is_not_redriven(harness: Harness) -> None:
    run_id = body_of(harness.post(TEN))["run_id"]
    harness.post({}, f"/sweeps/{run_id}/cancel")
    harness.run_dispatchers()
    answer = harness.post({"include_pending": True}, f"/sweeps/{run_id}/redrive")
    assert answer.status_code == 409
    assert harness.lambda_.take("dispatcher") == []


@pytest.mark.parametrize(
    "run_id",
    [
        "20260101T000000000Z-000000000000",
        "short",
        "a" * 65,
        "..%2F..%2Fetc",
        "bad_id_with_underscores",
    ],
)
def test_cancel_of_an_unknown_or_malformed_run(harness: Harness, run_id: str) -> None:
    answer = harness.post({}, f"/sweeps/{run_id}/cancel")
    assert answer.status_code == 404  # no run has that id, well-formed or not
    assert set(body_of(answer)) == {"error", "message", "problems"}
    assert harness.all_keys() == []


def test_a_worker_stops_between_points_once_cancelled(s3_store: S3Store) -> None:
    """The check before evaluating passes; the cancel lands while the shard runs."""
    harness = Harness(s3_store)
    try:
        run_id = body_of(harness.post(TEN))["run_id"]
        harness.run_dispatchers()
        # Dispatch threads race: any one shard's task will do, shard 0 first when recorded.
        payload = min(
            (c.payload for c in harness.lambda_.take("worker")), key=lambda p: p["shard_id"]
        )
    finally:
        harness.close()
    checks = iter([False, True])

    class CancelledMidway(S3Store):
        def exists(self, key: str) -> bool:
            if key == layout.cancel_marker(run_id):
                return next(checks)
            return super().exists(key)

    store = CancelledMidway(s3_store.bucket, s3_store.prefix, s3_store._client_factory)
    summary = run_task(payload, None, store, 0, cancel_poll_s=0)
    assert summary["status"] == "failed" and summary["error_code"] == "CANCELLED"
    assert failed_codes(s3_store, run_id) == {payload["shard_id"]: ["CANCELLED"]}


def test_cancel_poll_asks_the_store_at_most_once_per_interval() -> None:
    now = [0.0]
    asked: list[float] = []

    def check() -> bool:
        asked.append(now[0])
        return False

    poll = CancelPoll(check, every_s=5, clock=lambda: now[0])
    for _ in range(1100):
        now[0] += 0.01  # 11 s of points, 10 ms each
        poll()
    assert len(asked) == 2


def test_failure_threshold_cancels_the_run(harness: Harness) -> None:
    body: dict[str, Any] = TEN | {"fail_shards": [0, 1, 2], "tolerated_failure_percentage": 20}
    run_id = body_of(harness.post(body))["run_id"]
    harness.run_dispatchers()
    workers = sorted(harness.lambda_.take("worker"), key=lambda c: c.payload["shard_id"])
    harness.run_workers(workers[:2])  # 2 of 10 failed: 20 %, tolerated
    assert body_of(harness.get(f"/sweeps/{run_id}"))["cancelled"] is False
    harness.run_workers(workers[2:])  # the third failure exceeds it
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    assert status["cancelled"] is True and status["cancel_reason"] == "FAILURE_THRESHOLD"
    assert status["complete"] is True
    assert status["shards"] == {"succeeded": 0, "failed": 10, "pending": 0}
    codes = failed_codes(harness.store, run_id)
    assert [codes[k] for k in range(3)] == [["INJECTED_FAILURE"]] * 3
    assert all(codes[k] == ["CANCELLED"] for k in range(3, 10))


@pytest.mark.parametrize("last", ["worker", "failure recorder"])
def test_the_last_failure_crossing_the_threshold_cancels_before_status_fixes_the_run(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, last: str
) -> None:
    """The run's last shard fails for good and crosses the threshold, and a status read comes
    before that failure's writer checks the threshold (the worker checks right after its
    outcome; the failure recorder leaves the check to the reconciler, which takes a run with
    a summary as finished). The read that finds the run complete cancels it before it writes
    the summary: the first complete status already says cancelled, later ones say the same,
    and a redrive is refused as for any cancelled run."""
    body: dict[str, Any] = TEN | {"fail_shards": [9], "tolerated_failure_percentage": 5}
    run_id = body_of(harness.post(body))["run_id"]
    harness.run_dispatchers()
    workers = sorted(harness.lambda_.take("worker"), key=lambda c: c.payload["shard_id"])
    harness.run_workers(workers[:9])
    assert body_of(harness.get(f"/sweeps/{run_id}"))["complete"] is False
    if last == "worker":
        monkeypatch.setattr(worker, "_check_threshold", lambda store, run_id: None)
        harness.run_workers(workers[9:])
    else:
        payload = dict(workers[9].payload)
        record_destination(destination_record(payload), harness.store)
    first = body_of(harness.get(f"/sweeps/{run_id}"))
    assert first["complete"] is True and first["failed_shards"] == [9]
    assert first["cancelled"] is True and first["cancel_reason"] == "FAILURE_THRESHOLD"
    again = body_of(harness.get(f"/sweeps/{run_id}"))
    assert (again["cancelled"], again["cancel_reason"]) == (True, "FAILURE_THRESHOLD")
    assert harness.post({}, f"/sweeps/{run_id}/redrive").status_code == 409


def test_a_cancel_that_finds_the_run_complete_over_its_threshold_answers_its_cancel(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last shard's final failure crossed the threshold and nobody has read status yet: a
    user's cancel is the read that finds the run complete, and cancels it for its failures
    first. It answers as a second cancel does (202, the first reason), not 409."""
    body: dict[str, Any] = TEN | {"fail_shards": [9], "tolerated_failure_percentage": 5}
    run_id = body_of(harness.post(body))["run_id"]
    harness.run_dispatchers()
    monkeypatch.setattr(worker, "_check_threshold", lambda store, run_id: None)
    harness.run_workers()
    answer = harness.post({}, f"/sweeps/{run_id}/cancel")
    assert answer.status_code == 202
    assert body_of(answer)["cancel_reason"] == "FAILURE_THRESHOLD"
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    assert status["complete"] and status["cancel_reason"] == "FAILURE_THRESHOLD"


def test_default_tolerance_never_cancels(harness: Harness) -> None:
    body = TEN | {"fail_shards": list(range(10))}
    run_id = body_of(harness.post(body))["run_id"]
    harness.run_dispatchers()
    harness.run_workers()
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    assert status["shards"]["failed"] == 10 and status["cancelled"] is False


@pytest.mark.parametrize("value", [-1, 100.5, "50", True, None, [], 1e400])
def test_tolerated_failure_percentage_is_validated(harness: Harness, value: Any) -> None:
    raw = '{"simulation":"monte_carlo_pi","parameters":{"samples":{"values":[1]}},'
    raw += '"shards":{"count":1},"tolerated_failure_percentage":%s}'
    encoded = "1e400" if value == 1e400 else __import__("json").dumps(value)
    answer = harness.post(raw % encoded)
    assert answer.status_code == 400
    assert body_of(answer)["problems"][0]["path"] == "/tolerated_failure_percentage"
    assert harness.all_keys() == []
