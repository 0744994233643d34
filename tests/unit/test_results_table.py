"""Result rows as they are written: map columns built from flat arrays, values as strings."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chalicelib.execution.columns import format_value, param_strings
from chalicelib.model.validation import validate_request
from chalicelib.storage.tables import (
    PLAIN_RESULTS,
    RESULTS,
    RESULTS_DICTIONARY,
    RESULTS_STATISTICS,
    ResultColumns,
    ResultsFile,
    results_parquet,
)


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


def test_the_replicate_column_is_the_index_modulo_the_replicates() -> None:
    plain = ResultColumns(("a",), ("m",), range(4, 9), ["x"] * 5, [0.0] * 5)
    replicated = ResultColumns(("a",), ("m",), range(4, 9), ["x"] * 5, [0.0] * 5, replicates=3)
    read = [pq.read_table(io.BytesIO(results_parquet(0, c))) for c in (plain, replicated)]
    assert read[0].column("replicate").to_pylist() == [0] * 5
    assert read[1].column("replicate").to_pylist() == [1, 2, 0, 1, 2]
    assert read[1].schema.field("replicate").type == pa.int32()


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


SPACE_BODY = {
    "simulation": "option_pricing",
    "parameters": {
        "spot": {"values": [100, 100.5]},
        "strike": {"range": {"start": 90, "stop": 111, "step": 7}},
        "rate": {"values": [-0.0, 0.01, 0.1]},
        "volatility": {"linspace": {"start": 0.1, "stop": 0.3, "num": 3}},
        "option": {"values": ["call", "put"]},
        "paths": {"values": [10]},
    },
    "shards": {"count": 7},
}


@pytest.mark.parametrize(("start", "end"), [(0, 108), (0, 1), (5, 77), (107, 108), (60, 60)])
def test_the_workers_whole_shard_params_equal_point_by_point_formatting(
    start: int, end: int
) -> None:
    """param_strings makes the strings for a whole shard at once; they must be exactly what
    formatting each point's values in turn gives, in the same order, and so the same file."""
    space = validate_request(SPACE_BODY, None).space
    assert space.size == 2 * 3 * 3 * 3 * 2 * 1
    by_point = ResultColumns(space.names, ("m",))
    for index, point, _ in space.iter_points(start, end):
        by_point.add(index, map(format_value, point.values()), [float(index)])
    whole = ResultColumns(
        space.names,
        ("m",),
        range(start, end),
        param_strings(space, start, end),
        [float(i) for i in range(start, end)],
    )
    assert isinstance(whole.params, pa.Array)
    assert whole.params.to_pylist() == by_point.params
    old = pq.read_table(io.BytesIO(results_parquet(2, by_point)))
    new = pq.read_table(io.BytesIO(results_parquet(2, whole)))
    assert new.equals(old) and new.schema.equals(RESULTS)


def first_row_groups(tmp_path: Path, columns: ResultColumns) -> list[Any]:
    """The first row group's metadata as each results writer writes ``columns``: the one-shot
    ``results_parquet`` and the streaming ``ResultsFile``."""
    streamed = tmp_path / "streamed.parquet"
    writer = ResultsFile(streamed, 3)
    writer.write(columns)
    writer.close()
    return [
        pq.ParquetFile(source).metadata.row_group(0)
        for source in (io.BytesIO(results_parquet(3, columns)), streamed)
    ]


def test_only_repeating_columns_are_dictionary_encoded_in_both_writers(tmp_path: Path) -> None:
    """Distinct values (point_index, the metric doubles) are written plain: a dictionary there
    is built, found too large and dropped, for nothing. Both writers encode alike, and every
    name in RESULTS_DICTIONARY is a real column (pyarrow ignores unknown ones)."""
    columns = ResultColumns(("a",), ("m", "n"))
    for k in range(500):
        columns.add(k, [str(k % 3)], [k / 7, k / 11])
    for group in first_row_groups(tmp_path, columns):
        encoded = {
            group.column(i).path_in_schema
            for i in range(group.num_columns)
            if "RLE_DICTIONARY" in group.column(i).encodings
        }
        assert encoded == set(RESULTS_DICTIONARY)


def test_only_plain_columns_carry_statistics_in_both_writers(tmp_path: Path) -> None:
    """Readers skip row groups by the plain columns; the map columns' keys and values are
    reached through a lookup after the read, so they are written without min/max. Every name
    in RESULTS_STATISTICS is a real leaf column (pyarrow ignores unknown ones)."""
    columns = ResultColumns(("a",), ("m",))
    for k in range(100):
        columns.add(k, [str(k)], [k / 7])
    for group in first_row_groups(tmp_path, columns):
        paths = [group.column(i).path_in_schema for i in range(group.num_columns)]
        with_stats = {
            group.column(i).path_in_schema
            for i in range(group.num_columns)
            if group.column(i).is_stats_set
        }
        assert set(RESULTS_STATISTICS) <= set(paths)
        assert with_stats == set(RESULTS_STATISTICS)


def test_a_small_shards_results_are_written_plain_and_read_back_the_same(tmp_path: Path) -> None:
    """Up to ``PLAIN_RESULTS`` points, no dictionary and no compression (what a few rows cost
    most to encode); the rows, the schema and the statistics readers skip groups by are those
    of the encoded file."""
    columns = ResultColumns(("a", "b"), ("m",))
    for k in range(PLAIN_RESULTS):
        columns.add(k + 40, [str(k % 3), "x"], [k / 7])
    files = {}
    for points in (PLAIN_RESULTS, PLAIN_RESULTS + 1):  # the shard's size decides
        path = tmp_path / f"{points}.parquet"
        writer = ResultsFile(path, 3, points)
        writer.write(columns)
        writer.close()
        files[points] = path
    plain, encoded = (pq.ParquetFile(files[p]) for p in (PLAIN_RESULTS, PLAIN_RESULTS + 1))
    group = plain.metadata.row_group(0)
    chunks = [group.column(i) for i in range(group.num_columns)]
    assert {c.compression for c in chunks} == {"UNCOMPRESSED"}
    assert not any("RLE_DICTIONARY" in c.encodings for c in chunks)
    assert {
        encoded.metadata.row_group(0).column(i).compression for i in range(group.num_columns)
    } == {"SNAPPY"}
    assert plain.read().equals(encoded.read()) and plain.schema_arrow.equals(RESULTS)
    stats = {
        c.path_in_schema for c in chunks if c.statistics is not None and c.statistics.has_min_max
    }
    assert stats == set(RESULTS_STATISTICS) - {"source_run_id"}  # all null here: no min/max
