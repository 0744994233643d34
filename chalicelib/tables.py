"""The two tables' pyarrow schemas, declared once: the writer, the DDL and the tests use them.

Partition columns (run_id, status, dt) live in the storage path only, never in the files.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TIMESTAMP = pa.timestamp("ms", tz="UTC")

OUTCOMES = pa.schema(
    [
        pa.field("shard_id", pa.int32(), nullable=False),
        pa.field("attempt", pa.int32(), nullable=False),
        pa.field("start_index", pa.int64(), nullable=False),
        pa.field("end_index", pa.int64(), nullable=False),
        pa.field("point_count", pa.int64(), nullable=False),
        pa.field("simulation", pa.string()),
        pa.field("started_at", TIMESTAMP),
        pa.field("finished_at", TIMESTAMP),
        pa.field("duration_ms", pa.int64()),
        pa.field("results_key", pa.string()),
        pa.field("results_rows", pa.int64()),
        pa.field("results_bytes", pa.int64()),
        pa.field("error_code", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("retryable", pa.bool_()),
        pa.field("request_id", pa.string()),
    ]
)

RESULTS = pa.schema(
    [
        pa.field("shard_id", pa.int32(), nullable=False),
        pa.field("point_index", pa.int64(), nullable=False),
        pa.field("params", pa.map_(pa.string(), pa.string())),
        pa.field("metrics", pa.map_(pa.string(), pa.float64())),
    ]
)

# Partition columns per table, in path order; typed as strings in the catalog.
PARTITIONS = {"outcomes": ("run_id", "status", "dt"), "results": ("run_id",)}
SCHEMAS = {"outcomes": OUTCOMES, "results": RESULTS}


def to_parquet(table: pa.Table) -> bytes:
    """Parquet bytes Athena reads as-is: millisecond timestamps (never INT96), snappy pages."""
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="snappy",
        coerce_timestamps="ms",
        allow_truncated_timestamps=True,
    )
    return sink.getvalue()


def outcome_parquet(row: dict[str, Any]) -> bytes:
    return to_parquet(pa.Table.from_pylist([row], schema=OUTCOMES))


def results_parquet(
    shard_id: int, rows: list[tuple[int, list[tuple[str, str]], list[tuple[str, float]]]]
) -> bytes:
    """``rows`` are (point_index, params, metrics) in point order."""
    table = pa.table(
        {
            "shard_id": pa.array([shard_id] * len(rows), pa.int32()),
            "point_index": pa.array([r[0] for r in rows], pa.int64()),
            "params": pa.array([r[1] for r in rows], RESULTS.field("params").type),
            "metrics": pa.array([r[2] for r in rows], RESULTS.field("metrics").type),
        },
        schema=RESULTS,
    )
    return to_parquet(table)
