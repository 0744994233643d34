"""The worker streams a shard's results to Parquet one row group at a time: the file holds the
same rows as one written whole, in point_index order, group by group, on both stores; and no
scratch file is left behind, whatever the outcome."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from chalicelib.execution import worker
from chalicelib.model import events
from chalicelib.model.events import task_payload
from chalicelib.model.validation import validate_request
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore, ObjectStore
from chalicelib.storage.tables import ResultColumns, results_parquet

RUN_ID = "20261201T100000000Z-0123456789ab"
SWEEP = {
    "simulation": "option_pricing",
    "parameters": {
        "strike": {"range": {"start": 80, "stop": 120, "step": 4}},
        "option": {"values": ["call", "put"]},
        "paths": {"values": [10]},
    },
    "shards": {"count": 1},
    "seed": 3,
}


def payload(body: dict[str, object] = SWEEP) -> dict[str, object]:
    request = validate_request(body, limits=None)
    return task_payload(RUN_ID, 0, (0, request.total_points), "2026-12-01", request.to_dict())


def test_a_shard_is_written_in_row_groups_in_point_order(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "ROW_GROUP_POINTS", 7)
    summary = worker.run_task(payload(), None, store, 0)
    assert summary["status"] == "succeeded" and summary["points"] == 20
    data = store.get(layout.results(RUN_ID, 0))
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [7, 7, 6]
    streamed = pq.read_table(io.BytesIO(data))
    assert streamed.column("point_index").to_pylist() == list(range(20))

    # The same rows as the whole shard gathered point by point and written at once.
    monkeypatch.setattr(worker, "ROW_GROUP_POINTS", 1000)
    whole: list[ResultColumns] = []
    shard = events.parse_task(payload())
    worker._evaluate(shard, lambda: False, lambda: False, whole.append)
    assert len(whole) == 1
    assert streamed.equals(pq.read_table(io.BytesIO(results_parquet(0, whole[0]))))


def test_no_scratch_file_is_left_behind(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "ROW_GROUP_POINTS", 7)  # a shard of 3 groups: streamed to a file
    assert worker.run_task(payload(), None, local_store, 0)["status"] == "succeeded"
    failing = dict(SWEEP, fail_shards=[0])
    again = payload(failing) | {"run_id": RUN_ID.replace("0123", "4567")}
    assert worker.run_task(again, None, local_store, 0)["status"] == "failed"
    assert not [p for p in local_store.root.rglob(".tmp-*")]
