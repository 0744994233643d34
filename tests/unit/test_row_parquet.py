"""One-row Parquet files written directly are the files pyarrow writes, byte for byte (but the
writer's name), and every engine reads them back as the row."""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.storage import row_parquet
from chalicelib.storage.tables import OUTCOMES, USAGE, outcome_parquet

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def value_of(field: pa.Field) -> st.SearchStrategy[Any]:
    t = field.type
    if t == pa.int32():
        values: st.SearchStrategy[Any] = st.integers(-(2**31), 2**31 - 1)
    elif t == pa.int64():
        values = st.integers(-(2**63), 2**63 - 1)
    elif t == pa.bool_():
        values = st.booleans()
    elif t == pa.string():
        values = st.text(max_size=300)  # any code point: 1-4 UTF-8 bytes each
    else:  # timestamp(ms, UTC), sub-millisecond parts included: they are truncated
        values = st.integers(0, 2**42).map(lambda us: EPOCH + timedelta(microseconds=us))
    return st.one_of(st.none(), values) if field.nullable else values


def rows_of(schema: pa.Schema) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f.name: value_of(f) for f in schema})


def pyarrow_bytes(schema: pa.Schema, row: dict[str, Any]) -> bytes:
    """What pyarrow writes for the row with the writer's options, ``created_by`` replaced by
    the writer's own name (its length prefix and the footer length follow)."""
    sink = io.BytesIO()
    pq.write_table(
        pa.Table.from_pylist([row], schema=schema),
        sink,
        compression="none",
        use_dictionary=False,
        write_statistics=False,
        store_schema=False,
        coerce_timestamps="ms",
        allow_truncated_timestamps=True,
    )
    data = sink.getvalue()
    theirs = f"parquet-cpp-arrow version {pa.__version__}".encode()
    ours = row_parquet.CREATED_BY
    size = int.from_bytes(data[-8:-4], "little")
    footer = data[-8 - size : -8]
    assert footer.count(theirs) == 1
    footer = footer.replace(bytes([len(theirs)]) + theirs, row_parquet._varint(len(ours)) + ours)
    return data[: -8 - size] + footer + len(footer).to_bytes(4, "little") + b"PAR1"


@pytest.mark.parametrize("schema", [OUTCOMES, USAGE], ids=["outcomes", "usage"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_bytes_are_pyarrows(schema: pa.Schema, data: st.DataObject) -> None:
    row = data.draw(rows_of(schema))
    assert row_parquet.RowWriter(schema).write(row) == pyarrow_bytes(schema, row)


@settings(max_examples=50, deadline=None)
@given(row=rows_of(OUTCOMES))
def test_read_back_by_pyarrow_and_duckdb(row: dict[str, Any]) -> None:
    data = outcome_parquet(row)
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.equals(OUTCOMES)  # names, types, nullability, timestamp(ms, UTC)
    expected = pa.Table.from_pylist([row], schema=OUTCOMES).to_pylist()
    got = table.to_pylist()
    for r in (*expected, *got):  # both truncated to the millisecond as written
        for k in ("started_at", "finished_at"):
            if r[k] is not None:
                r[k] = r[k].replace(microsecond=r[k].microsecond // 1000 * 1000)
    assert got == expected
    with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
        f.write(data)
        f.flush()
        fetched = (
            duckdb.connect()
            .execute(
                "SELECT shard_id, simulation, error_message, retryable, s3_requests, "
                "epoch_ms(started_at) FROM read_parquet(?)",
                [f.name],
            )
            .fetchall()
        )
    started = row["started_at"]
    assert fetched == [
        (
            row["shard_id"],
            row["simulation"],
            row["error_message"],
            row["retryable"],
            row["s3_requests"],
            None if started is None else (started - EPOCH) // timedelta(milliseconds=1),
        )
    ]


def test_a_required_column_refuses_null() -> None:
    with pytest.raises(ValueError, match="shard_id is required"):
        outcome_parquet({"attempt": 1, "start_index": 0, "end_index": 1, "point_count": 1})


def test_unsupported_types_are_refused_when_the_writer_is_built() -> None:
    with pytest.raises(TypeError, match="metrics"):
        row_parquet.RowWriter(pa.schema([pa.field("metrics", pa.map_(pa.string(), pa.float64()))]))
    with pytest.raises(TypeError, match="at"):
        row_parquet.RowWriter(pa.schema([pa.field("at", pa.timestamp("us", tz="UTC"))]))
