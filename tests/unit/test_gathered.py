"""``tables.gathered``: many small tables as one, the same rows in the same order as one
concatenation, whatever their number against the batch it merges at a time."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import pyarrow as pa
import pytest

from chalicelib.storage import tables
from chalicelib.storage.tables import GATHER, OUTCOMES, gathered

SCHEMA = pa.schema([("shard_id", pa.int32()), ("name", pa.string())])


def small(i: int) -> pa.Table:
    return pa.table({"shard_id": pa.array([i], pa.int32()), "name": [f"s{i}"]}, schema=SCHEMA)


@pytest.mark.parametrize("count", [1, 7, GATHER, GATHER + 1, 2 * GATHER + 5])
def test_the_rows_of_every_table_in_order(count: int) -> None:
    parts = [small(i) for i in range(count)]
    got = gathered(iter(parts), SCHEMA)
    assert got.equals(pa.concat_tables(parts))
    assert got.column("shard_id").num_chunks <= -(-count // GATHER)  # merged, not one per table


def test_nothing_gathered_is_an_empty_table_of_the_schema() -> None:
    assert gathered(iter([]), OUTCOMES).equals(OUTCOMES.empty_table())


def test_small_tables_are_dropped_as_it_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most a batch of the small tables is alive at once (each is freed once merged), not
    all of them: with a batch of 4, 20 tables made one by one."""
    monkeypatch.setattr(tables, "GATHER", 4)
    alive: set[int] = set()
    most = 0

    def made() -> Iterator[pa.Table]:
        nonlocal most
        for i in range(20):
            table = small(i)
            alive.add(i)
            weakref.finalize(table, alive.discard, i)
            most = max(most, len(alive))
            yield table

    assert tables.gathered(made(), SCHEMA).num_rows == 20
    assert most <= 4 + 1
