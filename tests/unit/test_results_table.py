"""Result rows as they are written: map columns built from flat arrays, values as strings."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from chalicelib.execution.worker import format_value
from chalicelib.storage.tables import RESULTS, ResultColumns, results_parquet


def test_columns_round_trip_as_one_map_per_row() -> None:
    columns = ResultColumns(("a", "b"), ("m",))
    columns.add(7, ["1", "x"], [0.5])
    columns.add(8, ["2", "y"], [float("nan")])
    table = pq.read_table(io.BytesIO(results_parquet(3, columns)))
    assert table.schema.equals(RESULTS)
    rows = table.to_pylist()
    assert [(r["shard_id"], r["point_index"]) for r in rows] == [(3, 7), (3, 8)]
    assert [r["params"] for r in rows] == [[("a", "1"), ("b", "x")], [("a", "2"), ("b", "y")]]
    assert rows[0]["metrics"] == [("m", 0.5)]


def test_an_empty_shard_writes_an_empty_table() -> None:
    table = pq.read_table(io.BytesIO(results_parquet(0, ResultColumns(("a",), ("m",)))))
    assert table.num_rows == 0 and table.schema.equals(RESULTS)


def test_values_format_unambiguously_whatever_was_formatted_before() -> None:
    assert [format_value(v) for v in (1, True, 1.0, "1", False, 0)] == [
        "1",
        "true",
        "1.0",
        "1",
        "false",
        "0",
    ]
    assert format_value(0.0) == "0.0" and format_value(-0.0) == "-0.0"
    assert format_value(0.1 + 0.2) == "0.30000000000000004"
