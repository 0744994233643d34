"""The tables' pyarrow schemas, declared once: the writers, the DDL and the tests use them.

Partition columns (run_id, status, dt) live in the storage path only, never in the files.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chalicelib.storage import layout

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
        pa.field("points_reused", pa.int64()),
        pa.field("s3_requests", pa.int64()),
    ]
)

RESULTS = pa.schema(
    [
        pa.field("shard_id", pa.int32(), nullable=False),
        pa.field("point_index", pa.int64(), nullable=False),
        pa.field("params", pa.map_(pa.string(), pa.string())),
        pa.field("metrics", pa.map_(pa.string(), pa.float64())),
        pa.field("source_run_id", pa.string()),
        # The point's replicate number r = point_index mod replicates (0 without replicates).
        pa.field("replicate", pa.int32(), nullable=False),
    ]
)

# The table ``reuse``: a family's merged reuse index (chalicelib/execution/reuse.py), each
# distinct point of its merged runs once, with the run and shard that evaluated it (the oldest
# such run), its effective parameters in their stream-key text (``streams.canonical``) and its
# replicate, so a query can count a request's points in it by their values.
REUSE_MERGED = pa.schema(
    [
        pa.field("key", pa.binary(16), nullable=False),
        pa.field("source_run_id", pa.string(), nullable=False),
        pa.field("shard_id", pa.int32(), nullable=False),
        pa.field("metrics", pa.list_(pa.float64()), nullable=False),
        pa.field("params", pa.map_(pa.string(), pa.string()), nullable=False),
        pa.field("replicate", pa.int32(), nullable=False),
    ]
)

# A reusing run's plan for one shard: the points it copies instead of evaluating.
REUSE_PLAN = pa.schema(
    [
        pa.field("point_index", pa.int64(), nullable=False),
        pa.field("source_run_id", pa.string(), nullable=False),
        pa.field("metrics", pa.list_(pa.float64()), nullable=False),
    ]
)

# One row per invocation a run caused (chalicelib/execution/usage.py), what ``run_cost`` prices:
# the fields of the record's key (layout.Usage), with the shard and how its invocation ended
# split out of ``what`` for a worker's record (null for the other functions').
USAGE = pa.schema(
    [
        pa.field("function_name", pa.string(), nullable=False),
        pa.field("what", pa.string(), nullable=False),
        pa.field("shard_id", pa.int32()),
        pa.field("ended", pa.string()),
        pa.field("memory_mb", pa.int32(), nullable=False),
        pa.field("duration_ms", pa.int64(), nullable=False),
        pa.field("s3_reads", pa.int64(), nullable=False),
        pa.field("s3_writes", pa.int64(), nullable=False),
        pa.field("bound", pa.bool_(), nullable=False),
    ]
)

# Partition columns per table, in path order; typed as strings in the catalog.
PARTITIONS = {
    "outcomes": ("run_id", "status", "dt"),
    "results": ("run_id",),
    "usage": ("run_id",),
    "reuse": ("family",),
}
SCHEMAS = {"outcomes": OUTCOMES, "results": RESULTS, "usage": USAGE, "reuse": REUSE_MERGED}
# Each table's file format (one per table: Athena reads a table's partitions in one format).
# ``usage`` is JSON Lines (``usage_lines``): a record per invocation, written by every shard.
FORMATS: dict[str, Literal["parquet", "json"]] = {
    "outcomes": "parquet",
    "results": "parquet",
    "usage": "json",
    "reuse": "parquet",
}


def to_parquet(
    table: pa.Table, dictionary: bool | list[str] = True, statistics: bool | list[str] = True
) -> bytes:
    """Parquet bytes Athena reads as-is: millisecond timestamps (never INT96), snappy pages.

    ``dictionary``: the columns dictionary-encoded (Parquet's ``use_dictionary``). False for
    tables whose values do not repeat (the reuse index's distinct keys): a dictionary there
    only costs its setup. ``statistics``: the columns given min/max statistics
    (``write_statistics``). Readers see the same values either way (one-row files:
    ``one_row_parquet``)."""
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="snappy",
        coerce_timestamps="ms",
        allow_truncated_timestamps=True,
        use_dictionary=dictionary,
        write_statistics=statistics,
    )
    return sink.getvalue()


# Tables ``gathered`` merges at a time.
GATHER = 1024


def gathered(tables: Iterable[pa.Table], schema: pa.Schema) -> pa.Table:
    """Many small tables (one per file read) as one, merged ``GATHER`` at a time, so the small
    ones are dropped as it goes: a one-row outcome read back from its file held 18.6 KB of
    Arrow objects, and the 100,000 of a 100,000-shard run near 2 GB held together."""
    merged: list[pa.Table] = []
    batch: list[pa.Table] = []
    for table in tables:
        batch.append(table)
        if len(batch) >= GATHER:
            merged.append(pa.concat_tables(batch).combine_chunks())
            batch.clear()
    if batch:
        merged.append(pa.concat_tables(batch).combine_chunks())
    return pa.concat_tables(merged) if merged else schema.empty_table()


def one_row_parquet(table: pa.Table) -> bytes:
    """A one-row file (an outcome, a usage record: written once or twice per shard), with
    only the work a single row needs: uncompressed pages (snappy saves nothing on a value a
    column), no dictionary, no column statistics (a reader learns nothing from min = max of
    one row; compacted parts carry them), no stored Arrow schema (the Parquet types give back
    the table's schema), into an Arrow buffer. About half the CPU of ``to_parquet`` here."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="none",
        use_dictionary=False,
        write_statistics=False,
        store_schema=False,
        coerce_timestamps="ms",
        allow_truncated_timestamps=True,
    )
    return bytes(sink.getvalue().to_pybytes())


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Python rows (a missing key is a null) as a table of ``schema``, converted as one struct
    array: half the CPU of ``pa.Table.from_pylist``, which converts column by column (about
    90 us saved on an 18-column outcome, issue 16: a shard writes two such rows)."""
    rows_array = pa.array(rows, pa.struct(list(schema)))
    return pa.Table.from_arrays(rows_array.flatten(), schema=schema)


def outcome_parquet(row: dict[str, Any]) -> bytes:
    return one_row_parquet(rows_table([row], OUTCOMES))


def usage_lines(entries: Iterable[layout.Usage]) -> bytes:
    """Usage records as JSON Lines, one row of the table ``usage`` each: one invocation's
    record, or the many a compaction part holds (``execution.compaction``). The table is JSON,
    not Parquet (``FORMATS``): every invocation writes a record, and on the local stage's
    one-point shards a one-row Parquet file cost ~0.2-0.3 ms of the shard's ~1.8 ms of CPU
    (issue 16), a JSON line a few microseconds; its readers are the cost query alone."""
    return "".join(
        json.dumps(row, separators=(",", ":")) + "\n" for row in _usage_rows(entries)
    ).encode()


def _usage_rows(entries: Iterable[layout.Usage]) -> Iterator[dict[str, Any]]:
    """Each record's row in ``USAGE``'s column order (a column it cannot fill: KeyError)."""
    for usage in entries:
        shard = layout.what_shard(usage.what)
        fields = asdict(usage) | {
            "function_name": usage.function,  # ``function`` is left out
            "shard_id": shard[0] if shard else None,
            "ended": shard[1] if shard else None,
        }
        yield {name: fields[name] for name in USAGE.names}


@dataclass
class ResultColumns:
    """A shard's results gathered column by column. Every row has the same parameter and
    metric names, so the map columns are built from flat arrays and offsets: several times
    faster than converting a list of (key, value) pairs per row.

    ``add`` gathers one point at a time. The worker instead hands over whole columns
    (``indices`` a range, ``params`` an Arrow string array already in row-major order,
    ``metrics`` an Arrow double array), so no per-point Python object is made for what the
    shard's index range already determines."""

    param_names: tuple[str, ...]
    metric_names: tuple[str, ...]
    indices: Sequence[int] = field(default_factory=list)
    params: list[str] | pa.Array = field(default_factory=list)
    metrics: list[float] | pa.Array = field(default_factory=list)
    # The space's replicates: the last factor of its order, so point i is replicate i mod this.
    replicates: int = 1
    # Where each row came from: a run id for a point copied from an earlier run (reuse), null
    # for a point evaluated here; None when every row was evaluated here.
    source_run_ids: pa.Array | None = None

    def add(self, index: int, params: Iterable[str], metrics: Iterable[float]) -> None:
        """One point: its parameter strings and metric values, in the names' order."""
        assert isinstance(self.indices, list) and isinstance(self.params, list)
        assert isinstance(self.metrics, list)
        self.indices.append(index)
        self.params.extend(params)
        self.metrics.extend(metrics)

    def __len__(self) -> int:
        return len(self.indices)


def _map(names: tuple[str, ...], values: Any, rows: int, value_type: pa.DataType) -> Any:
    width = len(names)
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    keys = pa.array(names, pa.string()).take(pa.array(np.tile(np.arange(width), rows)))
    items = values if isinstance(values, pa.Array) else pa.array(values, value_type)
    return pa.MapArray.from_arrays(offsets, keys, items)


def _int64(indices: Sequence[int]) -> Any:
    if isinstance(indices, range):
        return np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
    return np.asarray(indices, dtype=np.int64)


def results_parquet(shard_id: int, columns: ResultColumns) -> bytes:
    return to_parquet(_results_table(shard_id, columns), RESULTS_DICTIONARY, RESULTS_STATISTICS)


# The results columns whose values repeat, dictionary-encoded; not point_index (distinct) nor
# the metric values (distinct doubles: Parquet builds a dictionary, finds it too large and
# falls back to plain, which cost a third of writing a row group and made it 20 % larger).
RESULTS_DICTIONARY = [
    "shard_id",
    "params.key_value.key",
    "params.key_value.value",
    "metrics.key_value.key",
    "source_run_id",
    "replicate",
]

# The results columns given min/max statistics in a worker's file: the plain columns readers
# skip row groups by. Not the map columns' keys and values, which a query reaches through a
# lookup (``element_at``, the typed views) evaluated after the read: their statistics were a
# fifth of encoding a row group (issue 16). Compacted parts keep every statistic.
RESULTS_STATISTICS = ["shard_id", "point_index", "source_run_id", "replicate"]


# Points per row group of a shard's results file: the worker holds one group's results at a
# time (~1.2 KB a point of Python and Arrow objects for option pricing: ~20 MB), so its memory
# is flat in the shard's size. Compaction rewrites the small groups into large ones.
ROW_GROUP_POINTS = 16_384


# A shard of up to this many points writes its results plain: a dictionary and snappy cost
# about 40 us of a one- to ten-point file's ~250 (the local stage's one-point shards, issue 16)
# and leave it no smaller (2.1 against 2.5 KB at one point, 3.5 against 2.8 at ten); at 100
# points they make it a third of the size. Compaction rewrites them with both.
PLAIN_RESULTS = 16


class ResultsFile:
    """A shard's results written to a Parquet file one row group at a time, as they are
    computed; the same schema and encoding as ``results_parquet``."""

    def __init__(
        self, sink: Path | pa.NativeFile, shard_id: int, points: int | None = None
    ) -> None:
        """``points``: the shard's, when known; a shard of up to ``PLAIN_RESULTS`` points is
        written plain (no dictionary, no compression)."""
        self.shard_id = shard_id
        self.rows = 0
        plain = points is not None and points <= PLAIN_RESULTS
        self._writer = pq.ParquetWriter(
            sink,
            RESULTS,
            compression="none" if plain else "snappy",
            coerce_timestamps="ms",
            allow_truncated_timestamps=True,
            use_dictionary=False if plain else RESULTS_DICTIONARY,
            write_statistics=RESULTS_STATISTICS,
        )

    def write(self, columns: ResultColumns) -> None:
        """One row group: the next points of the shard, in point_index order."""
        self._writer.write_table(_results_table(self.shard_id, columns), len(columns) or None)
        self.rows += len(columns)

    def close(self) -> None:
        self._writer.close()


def _results_table(shard_id: int, columns: ResultColumns) -> pa.Table:
    rows = len(columns)
    indices = _int64(columns.indices)
    return pa.table(
        {
            "shard_id": pa.array(np.full(rows, shard_id, dtype=np.int32)),
            "point_index": pa.array(indices),
            "params": _map(columns.param_names, columns.params, rows, pa.string()),
            "metrics": _map(columns.metric_names, columns.metrics, rows, pa.float64()),
            "replicate": pa.array((indices % columns.replicates).astype(np.int32)),
            "source_run_id": (
                columns.source_run_ids
                if columns.source_run_ids is not None
                else pa.nulls(rows, pa.string())
            ),
        },
        schema=RESULTS,
    )
