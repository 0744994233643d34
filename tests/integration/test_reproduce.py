"""Reproducing a stored point outside the service, as docs/simulations.md shows it: a results
row's ``params`` typed back by the declarations (``Simulation.point_from_results``), then the
function with ``point_rng``, or ``Simulation.evaluate``, give the row's metrics bit for bit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from chalicelib.simulations.declarations import point_rng
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore
from tests.support.inline import Inline

SEED = 7


def stored_rows(tmp_path: Path, body: dict[str, Any]) -> list[dict[str, Any]]:
    store = LocalStore(tmp_path / "data")
    inline = Inline(store)
    run_id = inline.submit(body)
    inline.drain()
    return [
        row
        for obj in store.list(layout.results_prefix(run_id))
        for row in pq.read_table(io.BytesIO(store.get(obj.key))).to_pylist()
    ]


def test_a_stored_point_is_reproduced_from_its_results_row(tmp_path: Path) -> None:
    body = {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"range": {"start": 80, "stop": 121, "step": 20}},  # ints for a float
            "option": {"values": ["call", "put"]},
            "paths": {"values": [64]},
        },
        "replicates": 2,
        "shards": {"count": 3},
        "seed": SEED,
    }
    rows = stored_rows(tmp_path, body)
    assert len(rows) == 3 * 2 * 2
    sim = REGISTRY["option_pricing"]
    for row in rows:
        stored = dict(row["metrics"])
        point = sim.point_from_results(dict(row["params"]))
        assert isinstance(point["strike"], float) and isinstance(point["paths"], int)
        params = sim.effective_params(point)
        rng = point_rng(sim.name, sim.version, SEED, params, row["replicate"])
        assert sim.fn(params, rng) == stored
        assert sim.evaluate(point, SEED, replicate=row["replicate"]) == stored
    replicas = {(r["point_index"] // 2, r["replicate"]): dict(r["metrics"]) for r in rows}
    assert replicas[(0, 0)] != replicas[(0, 1)]  # the replicate is part of the stream
