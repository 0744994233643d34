"""The worker end to end against both stores: what it writes, where, in which types, and what
repeats, races, storage failures, deadlines and bad tasks leave behind."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.execution.failure_codes import MAX_MESSAGE, FailureCode
from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing
from chalicelib.execution.worker import run_task
from chalicelib.model import events
from chalicelib.model.sharding import shard_bounds
from chalicelib.model.validation import validate_request
from chalicelib.simulations.declarations import Parameter, simulation
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout, redrive_lists, tables
from chalicelib.storage.stores import (
    CountingStore,
    LocalStore,
    ObjectStore,
    S3Store,
    StorageError,
)

RUN_ID = "20261126T100000000Z-0123456789ab"
DT = "2026-11-26"
OTHER_RUN_ID = "20261126T100000000Z-fedcba987654"
PLENTY_MS = 900_000
MARGIN_MS = 10_000

# ---------------------------------------------------------------- test simulations
# The registry is global and refuses a name twice: register them for the tests that use them
# only, and take them out again, so that no other test (GET /simulations, "unknown simulation"
# messages) ever sees them.

RAISES_VALUE_ERROR = "test_worker_raises_value_error"
RAISES_RUNTIME_ERROR = "test_worker_raises_runtime_error"
MISSING_METRIC = "test_worker_missing_metric"
TEST_SIMULATIONS = (RAISES_VALUE_ERROR, RAISES_RUNTIME_ERROR, MISSING_METRIC)
LONG_REASON = "the value is wrong\n" + "because " * 600 + "\nsecond line"


def _deep_failure(x: int) -> float:
    raise ValueError(f"x={x}: {LONG_REASON}")


def _value_error(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
    x = int(p["x"])
    return {"y": _deep_failure(x) if x >= 2 else float(x)}


def _runtime_error(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
    raise RuntimeError("simulation crashed\n  deep inside")


def _missing_metric(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
    return {"y": 1.0}


@pytest.fixture
def failing_simulations() -> Iterator[None]:
    params = [Parameter("x", "int", minimum=0)]
    for name, fn, metrics in (
        (RAISES_VALUE_ERROR, _value_error, ["y"]),
        (RAISES_RUNTIME_ERROR, _runtime_error, ["y"]),
        (MISSING_METRIC, _missing_metric, ["y", "z"]),
    ):
        if name not in REGISTRY:
            simulation(name, parameters=params, metrics=metrics)(fn)
    yield
    for name in TEST_SIMULATIONS:
        REGISTRY.pop(name, None)


# ---------------------------------------------------------------- helpers


@dataclass
class FakeContext:
    """A Lambda context whose remaining time is ``remaining_ms`` for the first ``calls`` reads,
    then ``then_ms``."""

    aws_request_id: str = "req-0001"
    remaining_ms: int = PLENTY_MS
    calls: int | None = None
    then_ms: int = 0
    reads: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.reads += 1
        if self.calls is not None and self.reads > self.calls:
            return self.then_ms
        return self.remaining_ms


def make_payload(
    body: dict[str, Any], shard_id: int, run_id: str = RUN_ID, dt: str = DT
) -> dict[str, Any]:
    """The wire form of a shard task, as the dispatcher sends it."""
    request = validate_request(body, limits=None)
    start, end = shard_bounds(request.total_points, request.shards, shard_id)
    return {
        "version": events.VERSION,
        "run_id": run_id,
        "shard_id": shard_id,
        "start": start,
        "end": end,
        "dt": dt,
        "request": request.to_dict(),
    }


def pi_body(points: int = 6, shards: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 100, "stop": 100 + points, "step": 1}}},
        "shards": {"count": shards},
        "seed": 3,
        **extra,
    }


def snapshot(store: ObjectStore) -> dict[str, bytes]:
    return {obj.key: store.get(obj.key) for obj in store.list("")}


def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [obj.key for obj in store.list(prefix)]


def read(store: ObjectStore, key: str) -> Any:
    return pq.read_table(pa.BufferReader(store.get(key)))


def outcome_key(status: str, shard_id: int, attempt: int, run_id: str = RUN_ID) -> str:
    """Spelled out from the contract, independently of chalicelib.storage.layout."""
    return (
        f"outcomes/run_id={run_id}/status={status}/dt={DT}/"
        f"shard-{shard_id:06d}-attempt-{attempt}.parquet"
    )


def results_key(shard_id: int, run_id: str = RUN_ID) -> str:
    return f"results/run_id={run_id}/shard-{shard_id:06d}.parquet"


def one_row(store: ObjectStore, key: str) -> dict[str, Any]:
    table = read(store, key)
    assert table.num_rows == 1
    row: dict[str, Any] = table.to_pylist()[0]
    return row


def failed_outcomes(store: ObjectStore, shard_id: int) -> dict[int, dict[str, Any]]:
    """attempt -> row of each failed outcome of a shard, checking the key agrees with the row."""
    found = {}
    for key in keys(store, f"outcomes/run_id={RUN_ID}/status=failed/"):
        parsed = layout.parse_outcome(key)
        assert parsed is not None and parsed.dt == DT
        if parsed.shard_id != shard_id:
            continue
        row = one_row(store, key)
        assert (row["shard_id"], row["attempt"]) == (shard_id, parsed.attempt)
        found[parsed.attempt] = row
    return found


def assert_no_success(store: ObjectStore, shard_id: int) -> None:
    assert keys(store, f"outcomes/run_id={RUN_ID}/status=succeeded/") == []
    assert not store.exists(results_key(shard_id))


def assert_final_failure(row: dict[str, Any], code: str) -> None:
    assert row["error_code"] == code
    assert row["retryable"] is False
    assert row["results_key"] is None and row["results_rows"] is None
    assert row["results_bytes"] is None


def run(payload: Any, store: ObjectStore, context: FakeContext | None = None) -> dict[str, Any]:
    """``look_s=0``: the deadline is read before every point, so a FakeContext's countdown
    picks the point the shard stops at."""
    return run_task(payload, context or FakeContext(), store, MARGIN_MS, look_s=0)


def expected_contract_point(index: int) -> dict[str, Any]:
    """Point ``index`` of the contract example, decoded by hand (last axis fastest)."""
    vols = np.linspace(0.1, 0.5, 9)
    strikes = list(range(80, 121, 5))
    options = ["call", "put"]
    v, rest = divmod(index, len(strikes) * len(options))
    s, o = divmod(rest, len(options))
    return {"volatility": float(vols[v]), "strike": strikes[s], "option": options[o], "paths": 2000}


# ---------------------------------------------------------------- success


def test_success_writes_one_outcome_and_one_results_file_at_the_contract_keys(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    payload = make_payload(contract_example, 4)
    assert (payload["start"], payload["end"]) == (56, 70)  # 162 points in 12: six of 14 first

    summary = run(payload, store, FakeContext(aws_request_id="req-success"))

    assert summary["status"] == "succeeded"
    assert summary["attempt"] == 1 and summary["points"] == 14
    assert keys(store, "outcomes/") == [outcome_key("succeeded", 4, 1)]
    assert keys(store, "results/") == [results_key(4)]
    if isinstance(store, S3Store):  # the store's prefix is really in the bucket's keys
        listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix="sweeps/test/outcomes/")
        assert [o["Key"] for o in listed["Contents"]] == [
            "sweeps/test/" + outcome_key("succeeded", 4, 1)
        ]
    if isinstance(store, LocalStore):
        assert (store.root / results_key(4)).is_file()

    row = one_row(store, outcome_key("succeeded", 4, 1))
    results_size = len(store.get(results_key(4)))
    assert row["shard_id"] == 4 and row["attempt"] == 1
    assert (row["start_index"], row["end_index"], row["point_count"]) == (56, 70, 14)
    assert row["simulation"] == "option_pricing"
    assert row["results_key"] == results_key(4)
    assert row["results_rows"] == 14 and row["results_bytes"] == results_size
    assert row["error_code"] is None and row["error_message"] is None
    assert row["retryable"] is None
    assert row["request_id"] == "req-success"
    assert str(row["started_at"].tzinfo) == "UTC"
    assert row["started_at"] <= row["finished_at"]
    assert row["duration_ms"] >= 0

    results = read(store, results_key(4)).to_pylist()
    sim = REGISTRY["option_pricing"]
    assert [r["point_index"] for r in results] == list(range(56, 70))
    for r in results:
        point = expected_contract_point(r["point_index"])
        assert r["shard_id"] == 4
        params = dict(r["params"])
        assert params.keys() == point.keys()
        assert math.isclose(float(params["volatility"]), point["volatility"], rel_tol=1e-12)
        assert params["strike"] == str(point["strike"])
        assert params["option"] == point["option"] and params["paths"] == "2000"
        metrics = dict(r["metrics"])
        assert list(metrics) == ["price", "stderr", "analytic", "abs_error"]
        point["volatility"] = float(params["volatility"])
        assert metrics == sim.evaluate(point, 7)
        assert metrics["abs_error"] == abs(metrics["price"] - metrics["analytic"])
        assert metrics["stderr"] > 0


def test_a_sampled_shard_draws_what_point_rng_gives_each_point(store: ObjectStore) -> None:
    """Stream keys made a row group at a time (``PointBatches``) on a sampled, replicated
    design whose values span every float layout: each row's metrics are ``evaluate``'s, which
    builds a fresh generator by ``point_rng``, bit for bit."""
    body = {
        "simulation": "option_pricing",
        "parameters": {"option": {"values": ["call", "put"]}, "paths": {"values": [20]}},
        "sample": {
            "design": "random",
            "points": 30,
            "axes": {
                "spot": {"loguniform": {"low": 1e-3, "high": 1e18}},
                "volatility": {"loguniform": {"low": 1e-8, "high": 1.0}},
                "rate": {"normal": {"mean": 0.0, "sd": 0.001}},
            },
        },
        "replicates": 2,
        "shards": {"count": 1},
        "seed": 11,
    }
    assert run(make_payload(body, 0), store)["status"] == "succeeded"
    request = validate_request(body, limits=None)
    sim = REGISTRY["option_pricing"]
    rows = read(store, results_key(0)).to_pylist()
    assert [r["point_index"] for r in rows] == list(range(120))
    for r in rows:
        i = r["point_index"]
        want = sim.evaluate(request.space.point(i), 11, replicate=i % 2)
        assert dict(r["metrics"]) == want or all(
            math.isnan(v) and math.isnan(want[k])
            for k, v in dict(r["metrics"]).items()
            if v != want[k]
        )


def _physical_timestamp_columns(data: bytes) -> dict[str, tuple[str, str]]:
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    schema = meta.schema
    return {
        schema.column(i).name: (schema.column(i).physical_type, str(schema.column(i).logical_type))
        for i in range(meta.num_columns)
        if schema.column(i).name in ("started_at", "finished_at")
    }


def test_files_carry_the_declared_schemas_without_partition_columns(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    run(make_payload(contract_example, 4), store)
    run(make_payload(contract_example, 3), store)  # in fail_shards: a failure row
    for key in (outcome_key("succeeded", 4, 1), outcome_key("failed", 3, 1)):
        schema = read(store, key).schema
        assert schema.equals(tables.OUTCOMES, check_metadata=False), schema
        assert schema.field("started_at").type == pa.timestamp("ms", tz="UTC")
        assert not {"run_id", "status", "dt"} & set(schema.names)
        # INT64 milliseconds adjusted to UTC, never INT96 nor nanoseconds
        for physical, logical in _physical_timestamp_columns(store.get(key)).values():
            assert physical == "INT64"
            assert "milliseconds" in logical and "isAdjustedToUTC=true" in logical
    schema = read(store, results_key(4)).schema
    assert schema.equals(tables.RESULTS, check_metadata=False), schema
    assert "run_id" not in schema.names
    assert all(name == name.lower() for name in tables.OUTCOMES.names + tables.RESULTS.names)


OUTCOME_TYPES = {
    "shard_id": "INTEGER",
    "attempt": "INTEGER",
    "start_index": "BIGINT",
    "end_index": "BIGINT",
    "point_count": "BIGINT",
    "simulation": "VARCHAR",
    "started_at": "TIMESTAMP WITH TIME ZONE",
    "finished_at": "TIMESTAMP WITH TIME ZONE",
    "duration_ms": "BIGINT",
    "results_key": "VARCHAR",
    "results_rows": "BIGINT",
    "results_bytes": "BIGINT",
    "error_code": "VARCHAR",
    "error_message": "VARCHAR",
    "retryable": "BOOLEAN",
    "request_id": "VARCHAR",
    "points_reused": "BIGINT",
    "s3_requests": "BIGINT",
}
RESULT_TYPES = {
    "shard_id": "INTEGER",
    "point_index": "BIGINT",
    "params": "MAP(VARCHAR, VARCHAR)",
    "metrics": "MAP(VARCHAR, DOUBLE)",
    "source_run_id": "VARCHAR",
    "replicate": "INTEGER",
}


def _types(con: Any, sql: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {sql}").fetchall()}


def test_duckdb_reads_the_contract_types(
    store: ObjectStore, contract_example: dict[str, Any], tmp_path: Path
) -> None:
    run(make_payload(contract_example, 4), store)
    run(make_payload(contract_example, 5), store)  # a failure
    con = duckdb.connect()

    # bytes from the store -> Arrow -> DuckDB (how S3 objects are read without httpfs)
    outcome = read(store, outcome_key("succeeded", 4, 1))
    results = read(store, results_key(4))
    con.register("outcome_arrow", outcome)
    con.register("results_arrow", results)
    assert _types(con, "SELECT * FROM outcome_arrow") == OUTCOME_TYPES
    assert _types(con, "SELECT * FROM results_arrow") == RESULT_TYPES

    # the stored paths as a hive-partitioned folder (the local stage reads its root directly)
    root = tmp_path / "mirror"
    for obj in store.list(""):
        if obj.key.startswith(("outcomes/", "results/")):
            target = root / obj.key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(store.get(obj.key))
    if isinstance(store, LocalStore):
        root = store.root
    hive = "hive_partitioning=true, hive_types_autocast=false"
    outcomes_sql = f"SELECT * FROM read_parquet('{root}/outcomes/**/*.parquet', {hive})"
    results_sql = f"SELECT * FROM read_parquet('{root}/results/**/*.parquet', {hive})"
    partitions = {"run_id": "VARCHAR", "status": "VARCHAR", "dt": "VARCHAR"}
    assert _types(con, outcomes_sql) == OUTCOME_TYPES | partitions
    assert _types(con, results_sql) == RESULT_TYPES | {"run_id": "VARCHAR"}
    rows = con.execute(
        f"SELECT run_id, status, dt, shard_id, attempt, error_code, retryable, "
        f"epoch_ms(started_at) FROM ({outcomes_sql}) ORDER BY shard_id"
    ).fetchall()
    started_ms = int(outcome.column("started_at")[0].value)
    assert rows == [
        (RUN_ID, "succeeded", DT, 4, 1, None, None, started_ms),
        (RUN_ID, "failed", DT, 5, 1, "INJECTED_FAILURE", False, rows[1][7]),
    ]
    got = con.execute(
        f"SELECT count(*), min(point_index), max(point_index), "
        f"sum(metrics['price']), any_value(params['option']) FROM ({results_sql})"
    ).fetchone()
    prices = [dict(m)["price"] for m in results.column("metrics").to_pylist()]
    assert got is not None
    assert got[:3] == (14, 56, 69)
    assert math.isclose(got[3], sum(prices), rel_tol=1e-12)
    assert got[4] in ("call", "put")


def _all_results(store: ObjectStore, body: dict[str, Any], run_id: str) -> dict[int, Any]:
    request = validate_request(body, limits=None)
    by_index: dict[int, Any] = {}
    for shard_id in range(request.shard_count):
        payload = make_payload(body, shard_id, run_id=run_id)
        assert run(payload, store)["status"] == "succeeded"
        rows = read(store, results_key(shard_id, run_id)).to_pylist()
        assert [r["point_index"] for r in rows] == list(range(payload["start"], payload["end"]))
        for r in rows:
            assert r["shard_id"] == shard_id
            assert r["point_index"] not in by_index
            by_index[r["point_index"]] = (r["params"], r["metrics"])
    return by_index


def test_results_do_not_depend_on_the_sharding(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    del contract_example["fail_shards"]
    by_count = _all_results(store, contract_example, "run-by-count-12")
    contract_example["shards"] = {"size": 7}
    by_size = _all_results(store, contract_example, "run-by-size-7")
    assert sorted(by_count) == list(range(162))
    assert by_count == by_size
    assert len(keys(store, "results/run_id=run-by-size-7/")) == 24


# ---------------------------------------------------------------- deterministic failures


def test_injected_failure_is_final_and_writes_no_results(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    summary = run(make_payload(contract_example, 3), store)
    assert summary["status"] == "failed" and summary["error_code"] == "INJECTED_FAILURE"
    assert keys(store, "outcomes/") == [outcome_key("failed", 3, 1)]
    row = one_row(store, outcome_key("failed", 3, 1))
    assert_final_failure(row, "INJECTED_FAILURE")
    assert (row["start_index"], row["end_index"], row["point_count"]) == (42, 56, 14)
    assert row["simulation"] == "option_pricing"
    assert "3" in row["error_message"]
    assert keys(store, "results/") == []
    assert keys(store, f"runs/{RUN_ID}/retrying/") == []


def test_duplicate_delivery_of_a_succeeded_task_writes_nothing(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    payload = make_payload(contract_example, 4)
    assert run(payload, store)["status"] == "succeeded"
    before = snapshot(store)
    again = run(payload, store, FakeContext(aws_request_id="req-again"))
    assert again["status"] == "duplicate"
    # Nothing but the usage record of the duplicate invocation (it is billed too).
    added = {k: v for k, v in snapshot(store).items() if k not in before}
    assert [k.split("~")[:2] for k in added] == [
        [f"usage/run_id={payload['run_id']}/worker", "shard-4-duplicate"]
    ]
    assert {k: v for k, v in snapshot(store).items() if k in before} == before


def test_a_final_failure_stands_until_a_redrive_reopens_the_shard(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    """A second delivery of a shard whose failure is final writes nothing but its usage
    record (the run is not complete); once a redrive lists the shard after attempt 1, the next
    delivery runs again, as attempt 2."""
    payload = make_payload(contract_example, 5)
    first = run(payload, store, FakeContext(aws_request_id="req-a"))
    assert first["status"] == "failed" and first["attempt"] == 1
    before = snapshot(store)
    assert run(payload, store, FakeContext(aws_request_id="req-late"))["status"] == "closed"
    added = {k: v for k, v in snapshot(store).items() if k not in before}
    assert [k.split("~")[:2] for k in added] == [
        [f"usage/run_id={payload['run_id']}/worker", "shard-5-closed"]
    ]
    redrive_lists.create(store, RUN_ID, layout.manual_redrive_job(1), [5], {5: 1})
    second = run(payload, store, FakeContext(aws_request_id="req-b"))
    assert second["status"] == "failed" and second["attempt"] == 2
    failed = failed_outcomes(store, 5)
    assert sorted(failed) == [1, 2]
    assert [failed[1]["request_id"], failed[2]["request_id"]] == ["req-a", "req-b"]
    for row in failed.values():
        assert_final_failure(row, "INJECTED_FAILURE")
    assert_no_success(store, 5)
    assert run(payload, store)["status"] == "closed"  # attempt 2 is after the redrive


# ---------------------------------------------------------------- races


@pytest.fixture
def atomic_s3(store: ObjectStore) -> Iterator[None]:
    """Real S3 decides a conditional PutObject atomically. moto 5.2.5 handles it as a lookup
    followed by a write (atomic by luck of timing, not by construction: no race was seen in
    1,600 tries), so serialise moto's PutObject calls: the race test then checks our code under
    S3's semantics and cannot flake on moto's."""
    if not isinstance(store, S3Store):
        yield
        return
    lock = threading.Lock()

    def acquire(context: dict[str, Any], **_: Any) -> None:
        lock.acquire()
        context["test-atomic-lock"] = True

    def release(context: dict[str, Any], **_: Any) -> None:
        if context.pop("test-atomic-lock", False):
            lock.release()

    events = store.client.meta.events
    events.register("before-call.s3.PutObject", acquire)
    events.register("after-call.s3.PutObject", release)
    events.register("after-call-error.s3.PutObject", release)
    yield
    events.unregister("before-call.s3.PutObject", acquire)
    events.unregister("after-call.s3.PutObject", release)
    events.unregister("after-call-error.s3.PutObject", release)


CLOSED_MIDWAY = "test_worker_closed_midway"


@pytest.fixture
def closed_midway(store: ObjectStore) -> Iterator[list[dict[str, Any]]]:
    """A simulation whose first point, of a payload put in the list, records that shard's final
    DISPATCH_FAILED: the dispatcher's Invoke failed (a timeout) although Lambda had the event,
    and its outcome lands while the worker evaluates."""
    pending: list[dict[str, Any]] = []

    def closes_its_shard(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
        if pending:
            ref = ShardRef.from_payload(pending.pop())
            assert ref is not None
            now = datetime.now(UTC)
            reason = "Invoke failed: Read timeout (after 4 attempts)"
            OutcomeWriter(store).record_failure(
                ref, FailureCode.DISPATCH_FAILED, reason, Timing(now, now), ""
            )
        return {"y": float(p["x"])}

    params = [Parameter("x", "int", minimum=0)]
    simulation(CLOSED_MIDWAY, parameters=params, metrics=["y"])(closes_its_shard)
    yield pending
    REGISTRY.pop(CLOSED_MIDWAY, None)


def test_a_shard_whose_failure_became_final_while_it_ran_writes_no_success(
    store: ObjectStore, closed_midway: list[dict[str, Any]]
) -> None:
    """Status may have shown the shard failed (and the run complete) since DISPATCH_FAILED
    landed: the worker's success, checked on the listing its attempt number needs, is not
    written, nor its results, nor a success lock; the failure stays the shard's outcome."""
    body = {"simulation": CLOSED_MIDWAY, "parameters": {"x": {"values": [1, 2, 3]}}}
    payload = make_payload(body | {"shards": {"count": 1}}, 0)
    closed_midway.append(payload)
    assert run(payload, store)["status"] == "closed"
    assert not closed_midway  # the simulation ran
    assert keys(store, "outcomes/") == [outcome_key("failed", 0, 1)]
    assert_final_failure(failed_outcomes(store, 0)[1], "DISPATCH_FAILED")
    assert_no_success(store, 0)
    assert not store.exists(layout.success_lock(RUN_ID, 0))
    # Without the failure, the same shard succeeds (the simulation itself is sound).
    other = make_payload(body | {"shards": {"count": 1}}, 0, run_id=OTHER_RUN_ID)
    assert run(other, store)["status"] == "succeeded"


def _deliver_concurrently(payload: dict[str, Any], store: ObjectStore, n: int) -> list[Any]:
    barrier = threading.Barrier(n)

    def deliver(k: int) -> dict[str, Any]:
        barrier.wait()
        return run(payload, store, FakeContext(aws_request_id=f"req-{k}"))

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(deliver, range(n)))


@pytest.mark.usefixtures("atomic_s3")
def test_concurrent_deliveries_of_a_succeeding_task_give_one_success(store: ObjectStore) -> None:
    payload = make_payload(pi_body(points=8, shards=2), 1)
    summaries = _deliver_concurrently(payload, store, 8)

    assert {s["status"] for s in summaries} <= {"succeeded", "duplicate"}
    assert {s["attempt"] for s in summaries if s["status"] == "succeeded"} == {1}
    assert keys(store, "outcomes/") == [outcome_key("succeeded", 1, 1)]
    assert keys(store, "results/") == [results_key(1)]
    row = one_row(store, outcome_key("succeeded", 1, 1))
    assert row["results_rows"] == 4
    assert row["results_bytes"] == len(store.get(results_key(1)))
    assert row["request_id"] in {f"req-{k}" for k in range(8)}
    assert [r["point_index"] for r in read(store, results_key(1)).to_pylist()] == [4, 5, 6, 7]


INTERLEAVED = "test_interleaved"


@pytest.fixture
def interleaved() -> Iterator[threading.Event]:
    """A simulation that draws, waits (while the yielded event is set) for a second thread's
    point to have drawn too, then draws again: two points on two threads each re-key their
    generator before either's second draw."""
    waiting = threading.Event()
    barrier = threading.Barrier(2, timeout=10)

    def draws_around_a_wait(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
        first = float(rng.random())
        if waiting.is_set():
            barrier.wait()
        return {"first": first, "second": float(rng.random())}

    params = [Parameter("x", "int", minimum=0)]
    simulation(INTERLEAVED, parameters=params, metrics=["first", "second"])(draws_around_a_wait)
    yield waiting
    REGISTRY.pop(INTERLEAVED, None)


def test_points_evaluated_on_two_threads_at_once_each_draw_from_their_own_stream(
    store: ObjectStore, interleaved: threading.Event
) -> None:
    """A point's numbers are the same whether another thread evaluates at the same time or
    not: each thread has its own generator (a shared one, re-keyed by the other thread between
    a point's two draws, gave one of the points the other's stream)."""
    body = {"simulation": INTERLEAVED, "parameters": {"x": {"values": [0, 1]}}}

    def payload(shard: int, run_id: str) -> dict[str, Any]:
        return make_payload(body | {"shards": {"count": 2}}, shard, run_id=run_id)

    def metrics(shard: int, run_id: str) -> dict[str, float]:
        rows = read(store, results_key(shard, run_id)).to_pylist()
        assert len(rows) == 1
        return dict(rows[0]["metrics"])

    interleaved.set()
    with ThreadPoolExecutor(max_workers=2) as pool:
        together_ = list(pool.map(lambda k: run(payload(k, RUN_ID), store), (0, 1)))
    assert [s["status"] for s in together_] == ["succeeded", "succeeded"]
    # The same points (a run id is not part of a stream) one after the other, without waits.
    interleaved.clear()
    for k in (0, 1):
        assert run(payload(k, OTHER_RUN_ID), store)["status"] == "succeeded"
    for k in (0, 1):
        assert metrics(k, RUN_ID) == metrics(k, OTHER_RUN_ID)
    assert metrics(0, RUN_ID) != metrics(1, RUN_ID)


@pytest.mark.usefixtures("atomic_s3")
def test_concurrent_failing_deliveries_keep_every_attempt(store: ObjectStore) -> None:
    payload = make_payload(pi_body(points=8, shards=2, fail_shards=[0]), 0)
    summaries = _deliver_concurrently(payload, store, 8)

    # A delivery that starts once a failure has landed finds it final and writes nothing; those
    # that started before each keep their own attempt, numbered without a gap.
    ran = [s for s in summaries if s["status"] == "failed"]
    assert ran and all(s["status"] == "closed" for s in summaries if s not in ran)
    assert sorted(s["attempt"] for s in ran) == list(range(1, len(ran) + 1))
    failed = failed_outcomes(store, 0)
    assert sorted(failed) == list(range(1, len(ran) + 1))
    assert {row["request_id"] for row in failed.values()} <= {f"req-{k}" for k in range(8)}
    for row in failed.values():
        assert_final_failure(row, "INJECTED_FAILURE")
    assert_no_success(store, 0)


# ---------------------------------------------------------------- storage failures


def inject_results_failure(store: ObjectStore) -> Callable[[], None]:
    """Make every write of a results file fail; returns the undo."""
    if isinstance(store, S3Store):

        def fail(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            if "/results/" not in params["url_path"]:
                return None
            error = {"Code": "InternalError", "Message": "We encountered an internal error."}
            parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 500}}
            return AWSResponse(params["url"], 500, {}, None), parsed

        store.client.meta.events.register("before-call.s3.PutObject", fail)
        return lambda: store.client.meta.events.unregister("before-call.s3.PutObject", fail)
    assert isinstance(store, LocalStore)
    # a file where the run's results folder must go: every write below it fails with an OSError
    blocker = store.root / f"results/run_id={RUN_ID}"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"")
    return blocker.unlink


def test_storage_error_is_recorded_as_retryable_and_re_raised(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    payload = make_payload(contract_example, 4)
    undo = inject_results_failure(store)
    with pytest.raises(StorageError, match="results"):
        run(payload, store, FakeContext(aws_request_id="req-storage"))
    undo()

    # The delivery had claimed the success (attempt 1) when the results write failed, so its
    # failure takes the next number: a success and a failure never share one.
    failed = failed_outcomes(store, 4)
    assert sorted(failed) == [2]
    row = failed[2]
    assert row["error_code"] == "STORAGE_ERROR" and row["retryable"] is True
    assert row["request_id"] == "req-storage"
    assert row["results_key"] is None
    assert "Traceback" not in row["error_message"]
    if isinstance(store, S3Store):
        assert "InternalError" in row["error_message"]
    marker = f"runs/{RUN_ID}/retrying/shard-000004-attempt-2"
    assert layout.retry_marker(RUN_ID, 4, 2) == marker
    assert store.exists(marker)
    assert keys(store, "results/") == []
    assert keys(store, f"outcomes/run_id={RUN_ID}/status=succeeded/") == []

    # Lambda's retry: the next delivery completes the shard, exactly once
    retry = run(payload, store, FakeContext(aws_request_id="req-retry"))
    assert retry["status"] == "succeeded"
    successes = keys(store, f"outcomes/run_id={RUN_ID}/status=succeeded/")
    assert len(successes) == 1
    assert keys(store, "results/") == [results_key(4)]
    assert one_row(store, successes[0])["request_id"] == "req-retry"
    assert sorted(failed_outcomes(store, 4)) == [2]  # the failed attempt is kept
    assert successes[0].endswith("shard-000004-attempt-1.parquet")  # the claimed number
    assert run(payload, store)["status"] == "duplicate"


class MarkerOrder(CountingStore):
    """The store as status sees it while a failure is written: at each failed outcome's
    create, whether that attempt's retry marker is already there; ``refuse_markers``: every
    retry marker's PUT fails (S3 in the brownout that failed the shard)."""

    def __init__(self, inner: ObjectStore, refuse_markers: bool = False) -> None:
        super().__init__(inner)
        self.refuse_markers = refuse_markers
        self.marked_first: list[bool] = []

    def put(self, key: str, data: bytes) -> None:
        if self.refuse_markers and "/retrying/" in key:
            raise StorageError(f"SlowDown writing {key}")
        super().put(key, data)

    def create(self, key: str, data: bytes) -> bool:
        parsed = layout.parse_outcome(key)
        if parsed is not None and "/status=failed/" in key:
            marker = layout.retry_marker(RUN_ID, parsed.shard_id, parsed.attempt)
            self.marked_first.append(self.inner.exists(marker))
        return super().create(key, data)


def test_a_retryable_failure_is_never_seen_final(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    """Status reads a failed attempt with no retry marker as final. The marker was put after
    the outcome: a status read between the two (or after S3 refused the marker's PUT) called
    the shard failed, and a run it found complete kept that summary though Lambda's retry
    then succeeded. The marker now comes first, and a refused marker records nothing."""
    payload = make_payload(contract_example, 4)
    watched = MarkerOrder(store)
    undo = inject_results_failure(store)
    with pytest.raises(StorageError):
        run(payload, watched)
    assert watched.marked_first == [True]
    assert sorted(failed_outcomes(store, 4)) == [2]

    refusing = MarkerOrder(store, refuse_markers=True)
    with pytest.raises(StorageError):
        run(payload, refusing)
    undo()
    assert refusing.marked_first == []  # no outcome without its marker
    assert sorted(failed_outcomes(store, 4)) == [2]
    assert not OutcomeWriter(store).decided(ShardRef.from_payload(payload) or pytest.fail())
    assert run(payload, store)["status"] == "succeeded"  # Lambda's retry


def test_storage_error_before_evaluation_is_recorded_too(
    s3_store: S3Store, contract_example: dict[str, Any]
) -> None:
    """A read that fails (the success-lock check) is a storage failure like a write."""
    payload = make_payload(contract_example, 4)

    def fail(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if "/success/" not in params["url_path"]:
            return None
        parsed = {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}
        return AWSResponse(params["url"], 503, {}, None), parsed

    s3_store.client.meta.events.register("before-call.s3.GetObject", fail)
    with pytest.raises(StorageError, match="SlowDown"):
        run(payload, s3_store)
    row = failed_outcomes(s3_store, 4)[1]
    assert row["error_code"] == "STORAGE_ERROR" and row["retryable"] is True
    assert s3_store.exists(layout.retry_marker(RUN_ID, 4, 1))
    assert_no_success(s3_store, 4)


# ---------------------------------------------------------------- deadline


def test_the_deadline_is_read_at_the_looks_not_before_every_point(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    """Between looks the loop reads only the clock: a shard shorter than one look interval
    reads its deadline once, before its first point; with ``look_s=0``, before every point."""
    payload = make_payload(contract_example, 4)  # 14 points
    context = FakeContext()
    assert run_task(payload, context, store, MARGIN_MS, look_s=3600)["status"] == "succeeded"
    assert context.reads == 1
    context = FakeContext()
    again = make_payload(contract_example, 2)  # 14 points too
    assert run_task(again, context, store, MARGIN_MS, look_s=0)["status"] == "succeeded"
    assert context.reads == 14


def test_deadline_stops_the_shard_before_time_runs_out(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    payload = make_payload(contract_example, 4)
    context = FakeContext(remaining_ms=PLENTY_MS, calls=3, then_ms=MARGIN_MS - 1)
    summary = run(payload, store, context)
    assert summary["status"] == "failed" and summary["error_code"] == "DEADLINE_EXCEEDED"
    row = one_row(store, outcome_key("failed", 4, 1))
    assert_final_failure(row, "DEADLINE_EXCEEDED")
    assert "stopped at point 59 of [56, 70)" in row["error_message"]  # the fourth point
    assert (row["start_index"], row["end_index"]) == (56, 70)
    assert_no_success(store, 4)
    assert not store.exists(layout.success_lock(RUN_ID, 4))


def test_exactly_the_margin_left_is_still_enough(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    context = FakeContext(remaining_ms=MARGIN_MS)
    assert run(make_payload(contract_example, 4), store, context)["status"] == "succeeded"
    assert context.reads >= 14


# ---------------------------------------------------------------- malformed tasks


def _shift_bounds(p: dict[str, Any]) -> None:
    p["start"] += 1


def _bad_end(p: dict[str, Any]) -> None:
    p["end"] = p["end"] + 5


def _unknown_simulation(p: dict[str, Any]) -> None:
    p["request"]["simulation"] = "no_such_simulation"


def _out_of_domain(p: dict[str, Any]) -> None:
    p["request"]["parameters"]["volatility"] = {"values": [-0.2, 0.3]}


def _request_not_an_object(p: dict[str, Any]) -> None:
    p["request"] = "option_pricing please"


def _version_2(p: dict[str, Any]) -> None:
    p["version"] = 2


def _no_version(p: dict[str, Any]) -> None:
    del p["version"]


def _shard_outside_plan(p: dict[str, Any]) -> None:
    p["shard_id"] = 12


def _sharding_changed(p: dict[str, Any]) -> None:
    p["request"]["shards"] = {"size": 7}


@pytest.mark.parametrize(
    "mutate",
    [
        _shift_bounds,
        _bad_end,
        _unknown_simulation,
        _out_of_domain,
        _request_not_an_object,
        _version_2,
        _no_version,
        _shard_outside_plan,
        _sharding_changed,
    ],
)
def test_malformed_task_is_recorded_as_invalid(
    store: ObjectStore, contract_example: dict[str, Any], mutate: Callable[[dict[str, Any]], None]
) -> None:
    payload = make_payload(contract_example, 4)
    mutate(payload)
    shard_id = payload["shard_id"]
    summary = run(payload, store)
    assert summary["status"] == "failed" and summary["error_code"] == "INVALID_TASK"
    assert keys(store, "outcomes/") == [outcome_key("failed", shard_id, 1)]
    row = one_row(store, outcome_key("failed", shard_id, 1))
    assert_final_failure(row, "INVALID_TASK")
    assert row["error_message"]
    assert keys(store, "results/") == []


def test_a_task_whose_dt_is_not_its_runs_date_is_invalid(
    store: ObjectStore, contract_example: dict[str, Any]
) -> None:
    """A server-made run id starts with its creation date, its files' dt: a task naming
    another dt (no dispatcher sends one) would write the shard's files into another
    partition than its run's."""
    payload = make_payload(contract_example, 4) | {"dt": "2026-11-27"}
    summary = run(payload, store)
    assert summary["status"] == "failed" and summary["error_code"] == "INVALID_TASK"
    assert keys(store, "results/") == []


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "shard 4",
        {},
        {"run_id": RUN_ID, "shard_id": 4},
        {"run_id": RUN_ID, "dt": DT},
        {"shard_id": 4, "dt": DT},
        {"run_id": "../../etc", "shard_id": 4, "dt": DT},
        {"run_id": RUN_ID, "shard_id": -1, "dt": DT},
        {"run_id": RUN_ID, "shard_id": True, "dt": DT},
        {"run_id": RUN_ID, "shard_id": "4", "dt": DT},
        {"run_id": RUN_ID, "shard_id": 4, "dt": "2026/11/26"},
    ],
)
def test_payload_naming_no_shard_is_rejected_without_writes(
    store: ObjectStore, payload: Any
) -> None:
    assert run(payload, store) == {"status": "rejected"}
    assert keys(store) == []


# ---------------------------------------------------------------- simulation errors


def _sim_body(name: str) -> dict[str, Any]:
    return {
        "simulation": name,
        "parameters": {"x": {"range": {"start": 0, "stop": 4, "step": 1}}},
        "shards": {"count": 1},
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (RAISES_VALUE_ERROR, "point 2: ValueError: x=2: the value is wrong because"),
        (RAISES_RUNTIME_ERROR, "point 0: RuntimeError: simulation crashed deep inside"),
        (MISSING_METRIC, "point 0: KeyError: "),
    ],
)
@pytest.mark.usefixtures("failing_simulations")
def test_simulation_error_is_final_with_a_bounded_one_line_message(
    store: ObjectStore, name: str, expected: str
) -> None:
    summary = run(make_payload(_sim_body(name), 0), store)
    assert summary["status"] == "failed" and summary["error_code"] == "SIMULATION_ERROR"
    row = one_row(store, outcome_key("failed", 0, 1))
    assert_final_failure(row, "SIMULATION_ERROR")
    message = row["error_message"]
    # the documented shape, point <i>: <ExceptionType>: <message>, with the simulation's own
    # exception type (not a wrapper's)
    assert message.startswith(expected)
    assert len(message) <= MAX_MESSAGE
    assert "\n" not in message and "Traceback" not in message and 'File "' not in message
    assert keys(store, "results/") == []


@pytest.mark.usefixtures("failing_simulations")
def test_long_simulation_error_is_truncated(store: ObjectStore) -> None:
    run(make_payload(_sim_body(RAISES_VALUE_ERROR), 0), store)
    message = one_row(store, outcome_key("failed", 0, 1))["error_message"]
    assert len(message) == MAX_MESSAGE and message.endswith("…")
    assert message.startswith("point 2: ValueError: x=2: the value is wrong because because")
