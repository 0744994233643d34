"""Reuse: a run with "reuse": true copies the points earlier runs computed, and only those.

Runs go through the real pieces on a LocalStore: the manifest, the root dispatcher's plan
(``reuse.plan``, what ``Dispatcher.run`` calls before any worker) and ``run_task`` per shard;
the simulation function is wrapped to count its calls.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import pricing
from chalicelib.execution import reuse
from chalicelib.execution.worker import run_task
from chalicelib.model import ids
from chalicelib.model.events import run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits
from chalicelib.model.validation import validate_request
from chalicelib.runs.status import status
from chalicelib.simulations.declarations import PointStreams
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout, manifests
from chalicelib.storage.stores import LocalStore

LIMITS = Limits(max_points=10_000_000, max_shards=10_000, allow_fault_injection=True)
VOL9 = {"linspace": {"start": 0.1, "stop": 0.5, "num": 9}}
VOL17 = {"linspace": {"start": 0.1, "stop": 0.5, "num": 17}}  # holds VOL9's 9 values exactly
STRIKE9 = {"range": {"start": 80, "stop": 121, "step": 5}}
PATHS = {"values": [30]}


class Counted:
    """The option_pricing function, counting its calls (and the points it was called for)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, version: str = "1") -> None:
        self.sim = REGISTRY["option_pricing"]
        self.calls: list[dict[str, Any]] = []
        fn = self.sim.fn

        def counted(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
            self.calls.append(dict(p))
            return fn(p, rng)

        monkeypatch.setitem(
            REGISTRY, "option_pricing", dataclasses.replace(self.sim, fn=counted, version=version)
        )


class Runs:
    """Submits and runs sweeps in order; each run id is later than the previous one."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.clock = datetime(2026, 12, 1, tzinfo=UTC)

    def run(self, body: dict[str, Any]) -> Manifest:
        request = validate_request(body, LIMITS)
        self.clock += timedelta(seconds=1)
        run = Manifest.new(ids.new_run_id(self.clock), self.clock, "test", request, LIMITS)
        manifests.save(self.store, run)
        if request.reuse:
            reuse.plan(self.store, run)
        for shard_id in range(request.shard_count):
            run_task(run_task_payload(run, shard_id), None, self.store, 0)
        return run

    def results(self, run: Manifest) -> dict[int, dict[str, Any]]:
        rows: dict[int, dict[str, Any]] = {}
        folder = Path(self.store.describe()) / layout.results_prefix(run.run_id)
        for path in sorted(folder.glob("*.parquet")):
            for row in pq.read_table(path).to_pylist():
                assert row["point_index"] not in rows
                rows[row["point_index"]] = row
        return rows

    def outcomes(self, run: Manifest) -> list[dict[str, Any]]:
        prefix = layout.outcomes_prefix(run.run_id)
        return [
            pq.read_table(io.BytesIO(self.store.get(o.key))).to_pylist()[0]
            for o in self.store.list(prefix)
        ]


@pytest.fixture
def runs(tmp_path: Path) -> Runs:
    return Runs(LocalStore(tmp_path / "data"))


def grid(vol: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "simulation": "option_pricing",
        "parameters": {"volatility": vol, "strike": STRIKE9, "paths": PATHS},
        "shards": {"count": 4},
        "seed": 7,
    }
    return body | extra


def identical(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


def by_point(rows: dict[int, dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], Any]:
    return {tuple(sorted(r["params"])): r for r in rows.values()}


def test_a_widened_grid_evaluates_only_its_new_points(
    runs: Runs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    counted = Counted(monkeypatch)
    coarse = runs.run(grid(VOL9))
    assert len(counted.calls) == 81
    counted.calls.clear()

    wide = runs.run(grid(VOL17, reuse=True, shards={"count": 5}))
    assert len(counted.calls) == 72  # the 8 new volatilities x 9 strikes, nothing else
    assert {c["volatility"] for c in counted.calls}.isdisjoint(
        {0.1 + k * 0.05 for k in range(9)} | {0.5}
    )
    rows = runs.results(wide)
    assert sorted(rows) == list(range(153))  # every point, exactly once
    sources = [r["source_run_id"] for r in rows.values()]
    assert sources.count(coarse.run_id) == 81 and sources.count(None) == 72

    # Bit-identical to evaluating the same request from scratch, point by point.
    fresh = Runs(LocalStore(tmp_path / "fresh"))
    scratch = fresh.results(fresh.run(grid(VOL17, shards={"count": 3})))
    for i, row in rows.items():
        assert row["params"] == scratch[i]["params"]
        assert identical(dict(row["metrics"]), dict(scratch[i]["metrics"])), i

    state = status(runs.store, wide.run_id)
    assert state["points_reused"] == 81 and state["points_evaluated"] == 72
    assert state["points_succeeded"] == 153
    outcomes = runs.outcomes(wide)
    assert sum(o["points_reused"] for o in outcomes) == 81
    assert all(o["s3_requests"] > 0 for o in outcomes)
    assert all(o["points_reused"] == 0 for o in runs.outcomes(coarse))


def test_reordered_axes_and_other_shards_reuse_everything(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = Counted(monkeypatch)
    first = runs.run(grid(VOL9))
    body = grid(VOL9, reuse=True, shards={"size": 7})
    body["parameters"] = {"paths": PATHS, "strike": STRIKE9, "volatility": VOL9}
    counted.calls.clear()
    again = runs.run(body)
    assert counted.calls == []
    before, after = by_point(runs.results(first)), by_point(runs.results(again))
    assert before.keys() == after.keys()
    for point, row in after.items():
        assert row["source_run_id"] == first.run_id
        assert identical(dict(row["metrics"]), dict(before[point]["metrics"]))
    # A range axis gives ints, a values axis floats: 80 and 80.0 are one point.
    body["parameters"]["strike"] = {"values": [80.0 + 5 * k for k in range(9)]}
    counted.calls.clear()
    runs.run(body)
    assert counted.calls == []


def test_the_oldest_source_wins_and_reused_points_are_not_reindexed(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    Counted(monkeypatch)
    first = runs.run(grid(VOL9))
    runs.run(grid(VOL9, seed=7))  # the same points again, evaluated (no reuse)
    copy = runs.run(grid(VOL17, reuse=True))
    sources = {r["source_run_id"] for r in runs.results(copy).values()}
    assert sources == {first.run_id, None}
    indexed = {layout.parse_reuse_index(o.key)[0] for o in runs.store.list(layout.REUSE_INDEX)}  # type: ignore[index]
    assert copy.run_id in indexed  # its 72 evaluated points
    fam = reuse.family("option_pricing", "1", 7)
    rows = sum(
        pq.read_metadata(Path(runs.store.describe()) / o.key).num_rows
        for o in runs.store.list(layout.reuse_family(fam) + f"run_id={copy.run_id}/")
    )
    assert rows == 72


def test_a_partly_copied_shards_index_pairs_each_key_with_its_own_point(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards that copied every other block of points index only those they evaluated, each
    stream key beside its own point index and metrics: what a later run copies by that key."""
    Counted(monkeypatch)
    runs.run(grid(VOL9))
    body = grid(VOL17, reuse=True, shards={"count": 5})
    wide, request = runs.run(body), validate_request(body, LIMITS)
    sim = REGISTRY["option_pricing"]
    streams = PointStreams(sim, 7)
    results = runs.results(wide)
    fam = reuse.family("option_pricing", "1", 7)
    indexed = []
    for o in runs.store.list(layout.reuse_family(fam) + f"run_id={wide.run_id}/"):
        for row in pq.read_table(Path(runs.store.describe()) / o.key).to_pylist():
            point = request.space.point(row["point_index"])
            assert row["key"] == streams.key(sim.effective_params(point))
            stored = results[row["point_index"]]
            assert stored["source_run_id"] is None
            metrics = dict(zip(sim.metrics, row["metrics"], strict=True))
            assert identical(metrics, dict(stored["metrics"]))
            indexed.append(row["point_index"])
    evaluated = sorted(i for i, r in results.items() if r["source_run_id"] is None)
    assert sorted(indexed) == evaluated and len(evaluated) == 72


@pytest.mark.parametrize("change", ["seed", "version"])
def test_no_reuse_across_seeds_or_versions(
    runs: Runs, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    Counted(monkeypatch)
    runs.run(grid(VOL9))
    if change == "version":
        counted = Counted(monkeypatch, version="2")
        body = grid(VOL9, reuse=True)
    else:
        counted = Counted(monkeypatch)
        body = grid(VOL9, reuse=True, seed=8)
    run = runs.run(body)
    assert len(counted.calls) == 81
    assert all(r["source_run_id"] is None for r in runs.results(run).values())
    assert status(runs.store, run.run_id)["points_reused"] == 0


def test_no_reuse_across_simulations(runs: Runs) -> None:
    assert reuse.family("option_pricing", "1", 7) != reuse.family("monte_carlo_pi", "1", 7)
    pi = {"simulation": "monte_carlo_pi", "parameters": {"samples": {"values": [100, 200]}}}
    runs.run(pi | {"shards": {"count": 1}, "seed": 7})
    run = runs.run(grid(VOL9, reuse=True))
    assert status(runs.store, run.run_id)["points_reused"] == 0


def test_a_deleted_or_failed_source_only_means_evaluating(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = Counted(monkeypatch)
    gone = runs.run(grid(VOL9))
    shutil.rmtree(Path(runs.store.describe()) / layout.results_prefix(gone.run_id))
    failing = runs.run(grid(VOL9, fail_shards=[0]))  # shard 0 (21 points) never succeeds
    counted.calls.clear()
    run = runs.run(grid(VOL9, reuse=True))
    assert len(counted.calls) == 21
    rows = runs.results(run)
    assert sorted(rows) == list(range(81))
    assert {r["source_run_id"] for r in rows.values()} == {failing.run_id, None}
    assert status(runs.store, run.run_id)["points_reused"] == 60


def test_without_reuse_nothing_is_copied(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    counted = Counted(monkeypatch)
    runs.run(grid(VOL9))
    run = runs.run(grid(VOL9))
    assert len(counted.calls) == 162
    assert not runs.store.exists(layout.reuse_plan(run.run_id))
    assert all(r["source_run_id"] is None for r in runs.results(run).values())
    state = status(runs.store, run.run_id)
    assert state["points_reused"] == 0 and state["points_evaluated"] == 81


def test_a_plan_is_written_once(runs: Runs) -> None:
    runs.run(grid(VOL9))
    run = runs.run(grid(VOL17, reuse=True))
    plan = runs.store.get(layout.reuse_plan(run.run_id))
    assert reuse.plan(runs.store, run) == {int(k): v for k, v in json.loads(plan)["shards"].items()}
    assert runs.store.get(layout.reuse_plan(run.run_id)) == plan


def subsets(values: list[float]) -> st.SearchStrategy[list[float]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            subsets([0.1, 0.2, 0.3, 0.45]),
            subsets([80.0, 95.0, 110.0]),
            st.booleans(),
            st.integers(1, 6),
        ),
        min_size=2,
        max_size=3,
    )
)
def test_same_point_same_metrics_in_any_grid_and_sharding(
    tmp_path_factory: pytest.TempPathFactory,
    plans: list[tuple[list[float], list[float], bool, int]],
) -> None:
    """Property: whatever grids, orders and shardings come before, a point's metrics are
    those of evaluating it on its own, and a reusing run holds every point exactly once."""
    runs = Runs(LocalStore(tmp_path_factory.mktemp("prop")))
    sim = REGISTRY["option_pricing"]
    for vols, strikes, flip, shards in plans:
        axes = {"volatility": {"values": vols}, "strike": {"values": strikes}}
        if flip:
            axes = dict(reversed(list(axes.items())))
        total = len(vols) * len(strikes)
        body = {
            "simulation": "option_pricing",
            "parameters": axes | {"paths": PATHS},
            "shards": {"count": min(shards, total)},
            "seed": 3,
            "reuse": True,
        }
        rows = runs.results(runs.run(body))
        assert sorted(rows) == list(range(total))
        for row in rows.values():
            point = {k: float(v) if k != "paths" else int(v) for k, v in row["params"]}
            assert identical(dict(row["metrics"]), sim.evaluate(point, 3))


def test_estimate_counts_reusable_points_and_warns_about_long_shards(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweeps import estimate as estimating

    runs.run(grid(VOL9))
    root = Path(runs.store.describe())
    wide = estimating.estimate(grid(VOL17, reuse=True), sample=20, data_root=root)
    assert (wide.points, wide.shards, wide.points_reused) == (153, 4, 81)
    assert wide.worker_seconds_per_shard > 0 and wide.usd > 0 and wide.warning is None
    assert wide.invocations == 4 + 1 and wide.s3_requests > 4
    # A worker's reads (GET, HEAD) are priced as reads: less than all its requests as writes.
    as_writes = pricing.usd(wide.lambda_gb_s, wide.invocations, 0, wide.s3_requests)
    assert wide.usd < as_writes - 4 * (
        pricing.PRICES.s3_write_request - pricing.PRICES.s3_read_request
    )
    other_seed = estimating.estimate(grid(VOL17, reuse=True, seed=8), sample=20, data_root=root)
    assert other_seed.points_reused == 0

    tiny = {"worker": pricing.FunctionSize(512, 1), "dispatcher": pricing.FunctionSize(1024, 900)}
    monkeypatch.setattr(pricing, "function_sizes", lambda stage: tiny)
    body = grid(VOL17, shards={"count": 1})
    body["parameters"]["paths"] = {"values": [200_000]}
    slow = estimating.estimate(body, sample=3, overhead_points=2)
    assert slow.cpu_scale == pytest.approx(1769 / 512, abs=1e-4)
    assert slow.warning is not None and '"shards": {"size": ' in slow.warning
    size = int(slow.warning.split('{"size": ')[1].split("}")[0])
    assert 1 <= size < 153


def test_replicates_are_points_of_their_own(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replicate r > 0 joins the stream key: reused per replicate, never across them."""
    counted = Counted(monkeypatch)
    first = runs.run(grid(VOL9, replicates=2))
    assert len(counted.calls) == 162
    counted.calls.clear()
    again = runs.run(grid(VOL9, replicates=3, reuse=True))
    assert len(counted.calls) == 81  # only replicate 2 is new
    rows = runs.results(again)
    by_replicate = {r: [x for x in rows.values() if x["replicate"] == r] for r in range(3)}
    assert {x["source_run_id"] for x in by_replicate[0] + by_replicate[1]} == {first.run_id}
    assert {x["source_run_id"] for x in by_replicate[2]} == {None}
    zero, one = by_replicate[0][0], by_replicate[1][0]
    assert zero["params"] == one["params"] and zero["metrics"] != one["metrics"]
