"""One-row files (outcomes, usage records) are written without compression, dictionaries,
statistics or the stored Arrow schema: every reader still gets the table's schema and the row."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.storage import layout
from chalicelib.storage.tables import OUTCOMES, USAGE, outcome_parquet, rows_table, usage_parquet


def test_outcome_and_usage_rows_read_back_with_their_schemas(tmp_path: Path) -> None:
    started = datetime(2026, 12, 6, 3, 4, 5, 678_901, tzinfo=UTC)
    row = {
        "shard_id": 7,
        "attempt": 2,
        "start_index": 10,
        "end_index": 20,
        "point_count": 10,
        "simulation": "option_pricing",
        "started_at": started,
        "error_code": "INJECTED_FAILURE",
        "retryable": False,
        "s3_requests": 9,
    }
    outcome = pq.read_table(io.BytesIO(outcome_parquet(row)))
    assert outcome.schema.equals(OUTCOMES)  # names, types, nullability, timestamp(ms, UTC)
    (got,) = outcome.to_pylist()
    assert got["started_at"] == started.replace(microsecond=678_000)  # truncated to the ms
    assert {k: got[k] for k in row if k != "started_at"} == {
        k: v for k, v in row.items() if k != "started_at"
    }
    assert got["finished_at"] is None and got["results_key"] is None
    usage = pq.read_table(
        io.BytesIO(usage_parquet(layout.Usage("worker", "shard-7-failed", 1024, 12, 3, 4)))
    )
    assert usage.schema.equals(USAGE)
    assert usage.to_pylist() == [
        {
            "function_name": "worker",
            "what": "shard-7-failed",
            "shard_id": 7,
            "ended": "failed",
            "memory_mb": 1024,
            "duration_ms": 12,
            "s3_reads": 3,
            "s3_writes": 4,
            "bound": False,
        }
    ]
    path = tmp_path / "o.parquet"
    path.write_bytes(outcome_parquet(row))
    assert duckdb.connect().execute(
        "SELECT shard_id, error_code, epoch_ms(started_at) FROM read_parquet(?)", [str(path)]
    ).fetchall() == [(7, "INJECTED_FAILURE", int(started.timestamp() * 1000))]


_OUTCOME_VALUES = {
    "shard_id": st.integers(0, 2**31 - 1),
    "attempt": st.integers(1, 10),
    "start_index": st.integers(0, 2**62),
    "end_index": st.integers(0, 2**62),
    "point_count": st.integers(0, 2**62),
    "simulation": st.text(max_size=20),
    "started_at": st.datetimes(timezones=st.just(UTC)),
    "finished_at": st.datetimes(timezones=st.just(UTC)),
    "duration_ms": st.integers(0, 2**40),
    "results_key": st.text(max_size=40),
    "error_code": st.sampled_from(["LOST", "INJECTED_FAILURE"]),
    "error_message": st.text(max_size=40),
    "retryable": st.booleans(),
    "request_id": st.text(max_size=10),
    "points_reused": st.integers(0, 2**40),
    "s3_requests": st.integers(0, 1000),
}


@settings(deadline=None)  # a loaded CI machine may stall one example past 200 ms
@given(st.fixed_dictionaries({}, optional=_OUTCOME_VALUES), st.integers(1, 3))
def test_rows_convert_as_pyarrow_converts_them_row_by_row(row: dict[str, object], n: int) -> None:
    """``rows_table`` (one struct array) gives what ``pa.Table.from_pylist`` gives, missing keys
    as nulls and unknown keys left out."""
    rows = [row | {"not_a_column": 1}] * n
    assert rows_table(rows, OUTCOMES).equals(pa.Table.from_pylist(rows, schema=OUTCOMES))
