"""One-row outcome files are written without compression, dictionaries, statistics or the
stored Arrow schema, and usage records are JSON lines: every reader still gets the table's
schema and the row."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.storage import layout
from chalicelib.storage.tables import (
    OUTCOMES,
    USAGE,
    outcome_parquet,
    rows_table,
    usage_lines,
)
from tests.support.usage_files import read_usage


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
    path = tmp_path / "o.parquet"
    path.write_bytes(outcome_parquet(row))
    assert duckdb.connect().execute(
        "SELECT shard_id, error_code, epoch_ms(started_at) FROM read_parquet(?)", [str(path)]
    ).fetchall() == [(7, "INJECTED_FAILURE", int(started.timestamp() * 1000))]


def test_usage_records_are_json_lines_of_the_usage_schema(tmp_path: Path) -> None:
    """A worker's record (shard and end split out of ``what``) and a dispatcher's (no shard: nulls),
    read back by pyarrow typed by ``USAGE``, gzipped as a compaction part is, and by the local
    engine's reader (DuckDB's read_json, columns typed from the schema)."""
    from sweeps.engines.local import _read_options

    entries = [
        layout.Usage("worker", "shard-7-failed", 1024, 12, 3, 4),
        layout.Usage("dispatcher", "root", 256, 1, 0, 2**40, bound=True),
    ]
    expected: list[dict[str, object]] = [
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
        },
        {
            "function_name": "dispatcher",
            "what": "root",
            "shard_id": None,
            "ended": None,
            "memory_mb": 256,
            "duration_ms": 1,
            "s3_reads": 0,
            "s3_writes": 2**40,
            "bound": True,
        },
    ]
    text = usage_lines(entries)
    assert text.count(b"\n") == 2 and text.endswith(b"\n")  # one line a record
    for data in (text, gzip.compress(text)):
        usage = read_usage(data)
        assert usage.schema.equals(USAGE)
        assert usage.to_pylist() == expected
    (tmp_path / "run_id=r").mkdir()
    (tmp_path / "run_id=r" / "a.json").write_bytes(usage_lines(entries[:1]))
    (tmp_path / "run_id=r" / "b.json.gz").write_bytes(gzip.compress(usage_lines(entries[1:])))
    files = [str(tmp_path / "run_id=r" / n) for n in ("a.json", "b.json.gz")]
    got = duckdb.connect().execute(
        f"SELECT * EXCLUDE (run_id), run_id FROM read_json(?, {_read_options('usage')}) "
        "ORDER BY memory_mb DESC",
        [files],
    )
    assert [d[0] for d in got.description] == [*USAGE.names, "run_id"]
    assert got.fetchall() == [(*row.values(), "r") for row in expected]


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
