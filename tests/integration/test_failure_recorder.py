"""The worker's OnFailure destination: Lambda's records become final failure outcomes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chalicelib.analytics.catalog import NoCatalog
from chalicelib.execution.failure_codes import MAX_MESSAGE
from chalicelib.execution.failure_recorder import record_destination
from chalicelib.execution.worker import run_task
from chalicelib.fanout.dispatcher import run_event
from chalicelib.fanout.reconcile import reconcile
from chalicelib.model.validation import validate_request
from chalicelib.runs.status import status
from chalicelib.storage import layout, manifests
from chalicelib.storage.stores import ObjectStore, StorageError, StoredObject
from scripts.local_runs import manifest_of, shard_payload
from tests import support
from tests.support import REQUEST_ID
from tests.support.inline import Inline
from tests.support.store_models import S3LatencyStore

RUN_ID = "20261126T100000000Z-fedcba987654"
DT = "2026-11-26"
# Lambda stamps the record when it gives up, a little before the recorder runs
FAILED_AT = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=123000)
destination_record = partial(support.destination_record, failed_at=FAILED_AT)


class Context:
    aws_request_id = "req-worker"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class FailingResults(ObjectStore):
    """The same store, except that writing a results file fails (as after S3's own retries)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def _check(self, key: str) -> None:
        if key.startswith("results/"):
            raise StorageError(f"create {key}: InternalError")

    def put(self, key: str, data: bytes) -> None:
        self._check(key)
        self.inner.put(key, data)

    def create(self, key: str, data: bytes) -> bool:
        self._check(key)
        return self.inner.create(key, data)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def list(self, prefix: str) -> Iterator[StoredObject]:
        return self.inner.list(prefix)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def describe(self) -> str:
        return self.inner.describe()


def task_payload(store: ObjectStore, body: dict[str, Any], shard_id: int) -> dict[str, Any]:
    """Shard ``shard_id``'s event of run RUN_ID of ``body``, its manifest stored."""
    request = validate_request(body, limits=None)
    if not store.exists(layout.manifest(RUN_ID)):
        manifests.save(store, manifest_of(request, RUN_ID, DT))
    return shard_payload(request, RUN_ID, DT, shard_id)


CRASH = {
    "errorType": "Runtime.ExitError",
    "errorMessage": "RequestId: abc Error: Runtime exited with error: signal: killed",
}
STORAGE = {
    "errorType": "StorageError",
    "errorMessage": "create results/run_id=x/shard-000004.parquet: InternalError",
    "stackTrace": ['  File "/var/task/app.py", line 40, in worker\n', "SECRET-FRAME-TEXT"],
    "trace": ["Traceback (most recent call last):", "SECRET-FRAME-TEXT"],
}


def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [obj.key for obj in store.list(prefix)]


def snapshot(store: ObjectStore, but_usage: bool = False) -> dict[str, bytes]:
    """Every object, or (``but_usage``) every object but the usage records."""
    return {
        obj.key: store.get(obj.key)
        for obj in store.list("")
        if not (but_usage and obj.key.startswith("usage/"))
    }


def failed_rows(store: ObjectStore, shard_id: int) -> dict[int, dict[str, Any]]:
    rows = {}
    for key in keys(store, f"outcomes/run_id={RUN_ID}/status=failed/dt={DT}/"):
        parsed = layout.parse_outcome(key)
        assert parsed is not None
        if parsed.shard_id == shard_id:
            table = pq.read_table(pa.BufferReader(store.get(key)))
            assert table.num_rows == 1
            rows[parsed.attempt] = table.to_pylist()[0]
    return rows


def test_retries_exhausted_after_storage_failures_is_the_next_final_attempt(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    payload = task_payload(store, contract_example, 4)
    flaky = FailingResults(store)
    for _ in range(2):  # the first delivery and Lambda's retries all fail to store results
        with pytest.raises(StorageError):
            run_task(copy.deepcopy(payload), Context(), flaky, 1000)
    # The first delivery claimed the success (attempt 1) before its results write failed, so
    # the failures take the numbers after it: a success never shares an attempt number.
    assert sorted(failed_rows(store, 4)) == [2, 3]

    summary = record_destination(destination_record(payload, response=STORAGE), store)

    assert summary["status"] == "failed"
    assert summary["attempt"] == 4 and summary["error_code"] == "RETRIES_EXHAUSTED"
    rows = failed_rows(store, 4)
    assert sorted(rows) == [2, 3, 4]
    assert [rows[a]["error_code"] for a in (2, 3)] == ["STORAGE_ERROR"] * 2
    assert all(rows[a]["retryable"] is True for a in (2, 3))
    final = rows[4]
    assert final["error_code"] == "RETRIES_EXHAUSTED" and final["retryable"] is False
    assert (final["start_index"], final["end_index"], final["point_count"]) == (56, 70, 14)
    assert final["simulation"] == "option_pricing"
    assert final["request_id"] == REQUEST_ID
    assert final["started_at"] == FAILED_AT
    assert final["started_at"] <= final["finished_at"]
    assert final["results_key"] is None and final["results_rows"] is None
    message = final["error_message"]
    assert "RetriesExhausted" in message and "3 invocation" in message
    assert "StorageError" in message and "InternalError" in message
    assert "SECRET-FRAME-TEXT" not in message and "Traceback" not in message
    # retry markers for the retryable attempts only: the final one has none
    for attempt, present in ((1, False), (2, True), (3, True), (4, False)):
        assert store.exists(layout.retry_marker(RUN_ID, 4, attempt)) is present
    assert keys(store, "results/") == []
    assert keys(store, f"outcomes/run_id={RUN_ID}/status=succeeded/") == []


@pytest.mark.parametrize(
    "case",
    [
        ("RetriesExhausted", CRASH, "RETRIES_EXHAUSTED", "Runtime.ExitError: RequestId: abc"),
        ("RetriesExhausted", None, "RETRIES_EXHAUSTED", "no error payload"),
        ("EventAgeExceeded", None, "EVENT_AGE_EXCEEDED", "expired before any attempt"),
        ("EventAgeExceeded", CRASH, "EVENT_AGE_EXCEEDED", "Runtime.ExitError"),
        ("SomethingNew", None, "RETRIES_EXHAUSTED", "no error payload"),
    ],
)
def test_record_shapes_give_a_final_failure(
    store: ObjectStore,
    contract_example: dict[str, Any],
    case: tuple[str, dict[str, Any] | None, str, str],
) -> None:
    """(condition, responsePayload, expected code, expected cause in the message)"""
    condition, response, code, cause = case
    payload = task_payload(store, contract_example, 7)
    invokes = 0 if condition == "EventAgeExceeded" and response is None else 3
    summary = record_destination(destination_record(payload, condition, invokes, response), store)
    assert summary == {
        "status": "failed",
        "attempt": 1,
        "error_code": code,
        "run_id": RUN_ID,
        "shard_id": 7,
    }
    assert keys(store, "outcomes/") == [
        f"outcomes/run_id={RUN_ID}/status=failed/dt={DT}/shard-000007-attempt-1.parquet"
    ]
    # Each try Lambda made is charged the worker's timeout, flagged as an upper bound.
    charged = [k.rsplit("~", 1)[0] for k in keys(store, f"usage/run_id={RUN_ID}/")]
    assert charged == [f"usage/run_id={RUN_ID}/worker~shard-7-crashed~1769~900000~0~0~bound"] * (
        invokes
    )
    run = keys(store, "runs/")  # its manifest and index entries, stored with the payload
    assert keys(store) == sorted(keys(store, "outcomes/") + run + keys(store, "usage/"))
    row = failed_rows(store, 7)[1]
    assert row["error_code"] == code and row["retryable"] is False
    assert condition in row["error_message"] and cause in row["error_message"]
    assert (row["start_index"], row["end_index"]) == (97, 110)


def test_long_error_payload_is_bounded(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    response = {"errorType": "MemoryError", "errorMessage": "line\n" * 2000}
    record_destination(
        destination_record(task_payload(store, contract_example, 0), response=response), store
    )
    message = failed_rows(store, 0)[1]["error_message"]
    assert len(message) <= MAX_MESSAGE and "\n" not in message


def test_record_for_a_succeeded_shard_records_no_outcome_and_charges_its_tries(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    """Another delivery of the event succeeded (Lambda delivers at least once): the record
    changes no outcome, and the tries it reports, which ran, are charged as bounds."""
    payload = task_payload(store, contract_example, 4)
    assert run_task(copy.deepcopy(payload), Context(), store, 1000)["status"] == "succeeded"
    before = snapshot(store, but_usage=True)
    for condition, invokes in (("RetriesExhausted", 3), ("EventAgeExceeded", 0)):
        record = destination_record(payload, condition, invokes, response=CRASH)
        assert record_destination(record, store)["status"] == "already_succeeded"
    assert snapshot(store, but_usage=True) == before
    assert len(crashed_tries(store, RUN_ID)) == 3


def test_a_record_after_a_final_worker_failure_writes_nothing(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    """The worker's INJECTED_FAILURE is final; an OnFailure record of the same shard after it
    (a duplicate event that expired) changes nothing: status has shown the shard failed."""
    payload = task_payload(store, contract_example, 3)  # in fail_shards
    run_task(copy.deepcopy(payload), Context(), store, 1000)
    before = snapshot(store)
    summary = record_destination(destination_record(payload, "EventAgeExceeded", 0), store)
    assert summary["status"] == "already_closed"
    assert snapshot(store) == before
    assert [r["error_code"] for r in failed_rows(store, 3).values()] == ["INJECTED_FAILURE"]
    assert crashed_tries(store, RUN_ID) == []  # the event expired unrun: nothing to charge


def test_a_record_arriving_after_a_redrive_settled_the_shard_still_charges_its_tries() -> None:
    """The shard's tries died (a timeout, out of memory: no record of their own), a redrive
    sent it again and it succeeded, and only then did Lambda's OnFailure record arrive (it can
    be hours late). The record changes no outcome; its three tries ran and are charged,
    flagged, as a superseded record's are."""
    inline, run_id, original, redriven = crashed_then_redriven()
    assert inline.worker(redriven)["status"] == "succeeded"
    late = record_destination(support.destination_record(original, invokes=3), inline.store)
    assert late["status"] == "already_succeeded"
    assert len(crashed_tries(inline.store, run_id)) == 3
    done = status(inline.store, run_id)
    assert done["shards"] == {"succeeded": 2, "failed": 0, "pending": 0}
    assert done["cost"]["upper_bound"] is True


def test_a_task_that_names_its_shard_is_recorded_even_if_malformed(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    task_payload(store, contract_example, 0)  # the run: its manifest
    payload = {"run_id": RUN_ID, "shard_id": 9, "dt": DT, "start": "x", "request": "garbage"}
    summary = record_destination(destination_record(payload, "EventAgeExceeded"), store)
    assert summary["status"] == "failed" and summary["attempt"] == 1
    row = failed_rows(store, 9)[1]
    assert row["error_code"] == "EVENT_AGE_EXCEEDED" and row["simulation"] is None
    assert (row["start_index"], row["end_index"], row["point_count"]) == (0, 0, 0)


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"requestContext": {"condition": "RetriesExhausted"}},
        destination_record(None),
        destination_record("not a task"),
        destination_record([RUN_ID, 4, DT]),
        destination_record({}),
        destination_record({"run_id": RUN_ID, "shard_id": 4}),
        destination_record({"run_id": "no", "shard_id": 4, "dt": DT}),
        destination_record({"run_id": RUN_ID, "shard_id": -2, "dt": DT}),
        destination_record({"run_id": RUN_ID, "shard_id": 4, "dt": "yesterday"}),
    ],
)
def test_record_without_a_usable_payload_is_rejected(
    store: ObjectStore, record: dict[str, Any]
) -> None:
    assert record_destination(record, store) == {"status": "rejected"}
    assert keys(store) == []


@pytest.mark.parametrize(
    ("run_id", "shard_id", "dt"),
    [
        ("20261126T100000000Z-0123456789ab", 0, DT),  # no such run
        (RUN_ID, 12, DT),  # the run has 12 shards
        (RUN_ID, 0, "1999-01-01"),  # not the run's dt
    ],
    ids=["no run", "no such shard", "another dt"],
)
def test_a_record_naming_no_shard_of_a_stored_run_is_rejected(
    store: ObjectStore, contract_example: dict[str, Any], run_id: str, shard_id: int, dt: str
) -> None:
    """Such a record (a forged one: only Lambda sends them, under the worker's role) wrote a
    failure no status counts, or failed a real run's shard 0 under another dt, and charged
    its tries to a run."""
    payload = task_payload(store, contract_example, 0) | {
        "run_id": run_id,
        "shard_id": shard_id,
        "dt": dt,
    }
    before = keys(store)
    answer = record_destination(destination_record(payload, response=CRASH), store)
    assert answer == {"status": "rejected"}
    assert keys(store) == before


def crashed_then_redriven() -> tuple[Inline, str, dict[str, Any], dict[str, Any]]:
    """A 2-shard run whose shard 1's worker event crashed on every try (its OnFailure record
    not delivered yet), stalled and redriven by the reconciler: (inline, run id, the original
    event, the redriven event, queued and not run)."""
    inline = Inline(S3LatencyStore(latency_s=0))
    run_id = inline.submit(
        {
            "simulation": "monte_carlo_pi",
            "parameters": {"samples": {"range": {"start": 10, "stop": 12, "step": 1}}},
            "shards": {"count": 2},
        }
    )
    original: dict[str, Any] = {}
    while inline.invoker.queue:
        fn, payload = inline.invoker.queue.popleft()
        if fn == "dispatcher":
            run_event(payload, inline.store, inline.invoker, inline.settings, NoCatalog())
        elif payload["shard_id"] == 1:
            original = payload  # crashes, is retried, gives up: its record is queued
        else:
            inline.worker(payload)
    t0 = datetime.now(UTC)
    first = reconcile(inline.store, inline.invoker, inline.settings, lambda: t0)
    assert first == {"progressing": 1}  # the pass that notes the run's progress
    stalled = t0 + timedelta(seconds=inline.settings.stall_timeout_s + 60)
    assert reconcile(inline.store, inline.invoker, inline.settings, lambda: stalled) == {
        "redriven": 1
    }
    _, dispatch = inline.invoker.queue.popleft()
    run_event(dispatch, inline.store, inline.invoker, inline.settings, NoCatalog())
    ((_, redriven),) = list(inline.invoker.queue)
    assert (original["job"], redriven["job"]) == ("initial", "auto-1")
    return inline, run_id, original, redriven


def test_a_record_of_an_event_a_redrive_replaced_closes_nothing() -> None:
    """The original event's record arrives after the redrive (a throttled recorder: Lambda
    keeps it up to six hours), before the redriven event runs. It closed the shard, and the
    redriven worker found it decided and threw its success away."""
    inline, run_id, original, redriven = crashed_then_redriven()
    late = record_destination(support.destination_record(original), inline.store)
    assert late["status"] == "superseded"
    assert inline.worker(redriven)["status"] == "succeeded"
    done = status(inline.store, run_id)
    assert done["complete"] and done["shards"] == {"succeeded": 2, "failed": 0, "pending": 0}
    assert done["cost"]["upper_bound"] is True  # the crashed tries still ran: charged, flagged


def crashed_tries(store: ObjectStore, run_id: str) -> list[str]:
    return [o.key for o in store.list(f"usage/run_id={run_id}/") if "crashed" in o.key]


def test_a_record_delivered_twice_charges_its_tries_once() -> None:
    """Lambda delivers a destination record at least once. A superseded event's record passes
    no "already decided" check, so each delivery charged its three tries again (and two
    deliveries at once of any record both got past those checks)."""
    inline, run_id, original, _ = crashed_then_redriven()
    record = support.destination_record(original, invokes=3)
    for _ in range(2):
        assert record_destination(record, inline.store)["status"] == "superseded"
    assert len(crashed_tries(inline.store, run_id)) == 3
    # Another event's record (a later try of the shard, redriven) is charged on its own.
    other = record | {"requestContext": record["requestContext"] | {"requestId": "other"}}
    record_destination(other, inline.store)
    assert len(crashed_tries(inline.store, run_id)) == 6


def test_a_record_of_the_redriven_event_itself_is_recorded() -> None:
    inline, run_id, original, redriven = crashed_then_redriven()
    assert record_destination(support.destination_record(original), inline.store)["status"] == (
        "superseded"
    )
    given_up = record_destination(support.destination_record(redriven), inline.store)
    assert given_up["status"] == "failed" and given_up["error_code"] == "RETRIES_EXHAUSTED"
    assert inline.worker(redriven)["status"] == "closed"  # a late delivery of it: decided
    done = status(inline.store, run_id)
    assert done["complete"] and done["failed_shards"] == [1]
