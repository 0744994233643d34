"""Reuse: a run with "reuse": true copies the points earlier runs computed, and only those.

Runs go through the real pieces on a LocalStore: the manifest, the root dispatcher's plan and
pending mark (``reuse.plan``, ``reuse.mark_pending``: what ``Dispatcher.run`` calls before any
worker) and ``run_task`` per shard; the simulation function is wrapped to count its calls.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import pricing
from chalicelib.analytics.catalog import NoCatalog
from chalicelib.execution import reuse, worker
from chalicelib.execution.worker import run_task
from chalicelib.model import ids
from chalicelib.model.errors import Conflict
from chalicelib.model.events import INITIAL, run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits
from chalicelib.model.validation import validate_request
from chalicelib.runs.redrive import redrive
from chalicelib.runs.status import status
from chalicelib.simulations import streams
from chalicelib.simulations.declarations import PointStreams
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout, manifests
from chalicelib.storage.stores import LocalStore, StoredObject
from chalicelib.storage.tables import REUSE_MERGED
from tests.support.harness import Harness, body_of
from tests.support.inline import Inline

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
    """Submits and runs sweeps in order; each run id is later than the previous one. With
    ``merge``, what each run evaluated is then merged into its family's index (what its
    compaction does); without, every run stays pending and plans read its results."""

    def __init__(self, store: LocalStore, merge: bool = False) -> None:
        self.store = store
        self.merge = merge
        self.clock = datetime(2026, 12, 1, tzinfo=UTC)

    def run(self, body: dict[str, Any], shards: Sequence[int] | None = None) -> Manifest:
        """Submit and run ``body``: every shard, or only ``shards`` (the others' events lost:
        the run stays incomplete, unmerged)."""
        request = validate_request(body, LIMITS)
        self.clock += timedelta(seconds=1)
        run = Manifest.new(ids.new_run_id(self.clock), self.clock, "test", request, LIMITS)
        manifests.save(self.store, run)
        if request.reuse:
            reuse.plan(self.store, run)
        reuse.mark_pending(self.store, run, INITIAL)
        for shard_id in range(request.shard_count) if shards is None else shards:
            run_task(run_task_payload(run, shard_id), None, self.store, 0)
        if self.merge and shards is None:
            reuse.merge_run(self.store, run.run_id, NoCatalog())
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


@pytest.fixture(params=["pending runs", "merged index"])
def runs(tmp_path: Path, request: pytest.FixtureRequest) -> Runs:
    """Every test twice: plans reading the earlier runs' results (each still pending), and
    plans reading the family's merged index (each run merged once complete)."""
    return Runs(LocalStore(tmp_path / "data"), merge=request.param == "merged index")


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
    second = runs.run(grid(VOL9, seed=7))  # the same points again, evaluated (no reuse)
    copy = runs.run(grid(VOL17, reuse=True))
    sources = {r["source_run_id"] for r in runs.results(copy).values()}
    assert sources == {first.run_id, None}
    fam = reuse.family("option_pricing", "1", 7)
    origins = reuse.history(runs.store, fam, "none").origins.to_pylist()
    assert origins.count(first.run_id) == 81
    assert origins.count(copy.run_id) == 72  # its evaluated points, not its 81 copies
    # Merged, the family's index holds each point once (the oldest run's), and no run is
    # left pending; unmerged, each run is pending (one marker a run, none a shard).
    assert origins.count(second.run_id) == (0 if runs.merge else 81)
    pending = [o.key for o in runs.store.list(layout.reuse_pending_prefix(fam))]
    assert [layout.parse_reuse_pending(k) for k in pending] == (
        [] if runs.merge else [first.run_id, second.run_id, copy.run_id]
    )
    merged = [layout.parse_reuse_merged(o.key) for o in runs.store.list("reuse/merged/")]
    assert merged == ([3] if runs.merge else [])  # only the latest generation is kept


def test_a_partly_copied_runs_evaluated_points_pair_each_key_with_its_own_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards that copied every other block of points: what the run evaluated
    (``reuse.evaluated``, what plans and the merge read) is exactly its points without a
    source, each stream key beside its own point's metrics as the results hold them: what a
    later run copies by that key. Keys made here from each results row's point index."""
    Counted(monkeypatch)
    runs = Runs(LocalStore(tmp_path / "data"))
    runs.run(grid(VOL9))
    body = grid(VOL17, reuse=True, shards={"count": 5})
    wide, request = runs.run(body), validate_request(body, LIMITS)
    sim = REGISTRY["option_pricing"]
    point_streams = PointStreams(sim, 7)
    results = runs.results(wide)
    own = {
        point_streams.key(sim.effective_params(request.space.point(i))): row
        for i, row in results.items()
        if row["source_run_id"] is None
    }
    rows = reuse.evaluated(runs.store, wide.run_id)
    assert rows is not None and rows.num_rows == len(own) == 72
    for row in rows.to_pylist():
        stored = own[row["key"]]
        assert row["shard_id"] == stored["shard_id"] and row["source_run_id"] == wide.run_id
        metrics = dict(zip(sim.metrics, row["metrics"], strict=True))
        assert identical(metrics, dict(stored["metrics"]))
        assert dict(row["params"]) == {
            name: streams.canonical(value)
            for name, value in sim.effective_params(
                request.space.point(stored["point_index"])
            ).items()
        }


def test_a_shard_reads_its_plan_a_row_group_at_a_time_and_copies_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One shard of 153 points evaluated in row groups of 7 while its plan is read in batches
    of 5 (aligned neither with each other nor with the copied blocks of 9): the function is
    called for exactly the 72 new points, each copied row names its source and holds its
    source's metrics, every row equals the same request evaluated from scratch bit for bit,
    and the plan's scratch file is gone afterwards."""
    monkeypatch.setattr(worker, "ROW_GROUP_POINTS", 7)
    monkeypatch.setattr(reuse, "ROW_GROUP_POINTS", 5)
    counted = Counted(monkeypatch)
    runs = Runs(LocalStore(tmp_path / "data"))
    coarse = runs.run(grid(VOL9))
    counted.calls.clear()
    wide = runs.run(grid(VOL17, reuse=True, shards={"count": 1}))
    assert len(counted.calls) == 72
    rows = runs.results(wide)
    assert sorted(rows) == list(range(153))
    source = by_point(runs.results(coarse))
    for row in rows.values():
        point = tuple(sorted(row["params"]))
        assert row["source_run_id"] == (coarse.run_id if point in source else None)
        if point in source:
            assert row["metrics"] == source[point]["metrics"]
    fresh = Runs(LocalStore(tmp_path / "fresh"))
    scratch = fresh.results(fresh.run(grid(VOL17, shards={"count": 3})))
    for i, row in rows.items():
        assert row["params"] == scratch[i]["params"]
        assert identical(dict(row["metrics"]), dict(scratch[i]["metrics"])), i
    assert [o["points_reused"] for o in runs.outcomes(wide)] == [81]
    assert not list((tmp_path / "data").glob(".tmp-*"))


def test_a_sampled_runs_points_are_reused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sampled design (every value new, keys made from Arrow's float texts), replicated,
    with values across the magnitudes where Arrow's and repr's layouts differ: rerun with
    reuse, nothing is evaluated and every row is the first run's, bit for bit."""
    monkeypatch.setattr(worker, "ROW_GROUP_POINTS", 16)
    counted = Counted(monkeypatch)
    runs = Runs(LocalStore(tmp_path / "data"))
    body = {
        "simulation": "option_pricing",
        "parameters": {"paths": PATHS},
        "sample": {
            "design": "lhs",
            "points": 40,
            "axes": {
                "spot": {"loguniform": {"low": 1e-3, "high": 1e18}},
                "volatility": {"loguniform": {"low": 1e-8, "high": 1.0}},
                "rate": {"normal": {"mean": 0.0, "sd": 0.001}},
            },
        },
        "replicates": 2,
        "shards": {"count": 3},
        "seed": 7,
    }
    first = runs.run(body)
    assert len(counted.calls) == 80
    counted.calls.clear()
    again = runs.run(body | {"reuse": True, "shards": {"count": 2}})
    assert counted.calls == []
    before, after = runs.results(first), runs.results(again)
    assert sorted(after) == list(range(80))
    for i, row in after.items():
        assert row["source_run_id"] == first.run_id
        assert row["params"] == before[i]["params"] and row["metrics"] == before[i]["metrics"]


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


def bump_version(monkeypatch: pytest.MonkeyPatch) -> Counted:
    """A deploy that bumps option_pricing to version "2", whose results differ (a bug fix:
    every metric + 1), counting its calls."""
    counted = Counted(monkeypatch, version="2")
    fn = REGISTRY["option_pricing"].fn

    def fixed(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
        return {k: v + 1.0 for k, v in fn(p, rng).items()}

    monkeypatch.setitem(
        REGISTRY, "option_pricing", dataclasses.replace(REGISTRY["option_pricing"], fn=fixed)
    )
    return counted


def test_a_shard_of_an_older_version_is_refused_and_never_reused(
    runs: Runs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run A under version 1 loses shard 3's event; a deploy bumps the version to "2"; the
    shard is redriven (its root dispatcher marks the job pending, the worker runs it). The
    worker refuses it with a final SIMULATION_VERSION_CHANGED naming both versions instead of
    filing version 2's numbers under A's version 1; A is filed under version 1's family only,
    so a version-2 run with reuse copies nothing of A and equals a from-scratch version-2 run
    bit for bit."""
    Counted(monkeypatch)
    a = runs.run(grid(VOL9), shards=[0, 1, 2])
    counted = bump_version(monkeypatch)
    reuse.mark_pending(runs.store, a, "redrive-1")  # the redrive's root dispatcher
    summary = run_task(run_task_payload(a, 3), None, runs.store, 0)
    assert summary["status"] == "failed"
    assert summary["error_code"] == "SIMULATION_VERSION_CHANGED"
    assert counted.calls == [] and sorted(runs.results(a)) == list(range(61))
    (failure,) = [o for o in runs.outcomes(a) if o["error_code"] is not None]
    assert failure["shard_id"] == 3 and failure["retryable"] is False
    assert "version '1'" in failure["error_message"]
    assert "version '2'" in failure["error_message"]
    state = status(runs.store, a.run_id)
    assert state["complete"] and state["failed_shards"] == [3]
    assert state["simulation_version"] == "1"
    v1, v2 = reuse.family("option_pricing", "1", 7), reuse.family("option_pricing", "2", 7)
    marked = [layout.parse_reuse_pending(o.key) for o in runs.store.list(f"reuse/{v1}/")]
    assert set(marked) == {a.run_id}
    assert list(runs.store.list(f"reuse/{v2}/")) == []
    # Its compaction's merge cannot key A's points (this deployment declares version 2): none.
    assert reuse.merge_run(runs.store, a.run_id, NoCatalog()) == 0
    assert list(runs.store.list(layout.reuse_merged_prefix(v2))) == []

    b = runs.run(grid(VOL9, reuse=True))
    assert len(counted.calls) == 81
    assert status(runs.store, b.run_id)["points_reused"] == 0
    fresh = Runs(LocalStore(tmp_path / "fresh"))
    scratch = fresh.results(fresh.run(grid(VOL9, shards={"count": 3})))
    rows = runs.results(b)
    assert sorted(rows) == list(range(81))
    for i, row in rows.items():
        assert row["source_run_id"] is None and row["params"] == scratch[i]["params"]
        assert identical(dict(row["metrics"]), dict(scratch[i]["metrics"])), i


def test_the_version_comes_with_the_event_and_the_manifest_is_read_only_without_it(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dispatcher's event carries the version its run was accepted under (from the manifest
    it read), so the worker checks it without reading the manifest (a GET a shard on S3). An
    event without the version (sent before events carried it) has the manifest read, as
    before. An event of an older version is refused; one whose version is not a string is an
    invalid task."""
    Counted(monkeypatch)
    a = runs.run(grid(VOL9), shards=[0])
    read: list[str] = []
    get = runs.store.get

    def recording(key: str) -> bytes:
        read.append(key)
        return get(key)

    monkeypatch.setattr(runs.store, "get", recording)
    manifest_key = layout.manifest(a.run_id)
    payload = run_task_payload(a, 1)
    assert payload["simulation_version"] == "1"
    assert run_task(payload, None, runs.store, 0)["status"] == "succeeded"
    assert manifest_key not in read

    older = run_task_payload(a, 2)
    del older["simulation_version"]
    assert run_task(older, None, runs.store, 0)["status"] == "succeeded"
    assert read.count(manifest_key) == 1

    bump_version(monkeypatch)
    refused = run_task(run_task_payload(a, 3), None, runs.store, 0)
    assert refused["error_code"] == "SIMULATION_VERSION_CHANGED"

    bad = run_task_payload(runs.run(grid(VOL9), shards=[]), 0) | {"simulation_version": 2}
    assert run_task(bad, None, runs.store, 0)["error_code"] == "INVALID_TASK"


def test_a_redrive_after_the_version_changed_is_refused_up_front(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its workers would refuse every shard (SIMULATION_VERSION_CHANGED, final), each after an
    invocation: the redrive is a 409 naming both versions, and nothing is listed or sent."""
    Counted(monkeypatch)
    a = runs.run(grid(VOL9), shards=[0, 1])
    bump_version(monkeypatch)
    inline = Inline(runs.store)
    for include_pending in (False, True):
        with pytest.raises(Conflict) as refused:
            redrive(inline.settings, runs.store, inline.invoker, a.run_id, include_pending)
        assert "version '1'" in refused.value.message
        assert "version '2'" in refused.value.message
    assert list(runs.store.list(layout.redrive_lists_prefix(a.run_id))) == []
    assert not inline.invoker.queue


def test_a_source_marked_in_another_versions_family_is_not_a_source(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version-1 run marked pending in version 2's family (what a redrive's dispatcher did
    before it took the family from the manifest): plans of version 2 never copy it."""
    Counted(monkeypatch)
    a = runs.run(grid(VOL9))
    counted = bump_version(monkeypatch)
    v2 = reuse.family("option_pricing", "2", 7)
    runs.store.create(layout.reuse_pending(v2, a.run_id, "redrive-1"), b"")
    assert len(reuse.history(runs.store, v2, "none")) == 0
    b = runs.run(grid(VOL9, reuse=True))
    assert len(counted.calls) == 81
    assert {r["source_run_id"] for r in runs.results(b).values()} == {None}


def test_a_run_planned_after_its_version_was_bumped_copies_nothing(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version-1 run with reuse whose root dispatcher plans it only after a deploy bumped the
    version: it copies nothing (not version 2's points, nor version 1's keyed with version
    2's declaration), and its shards are refused."""
    Counted(monkeypatch)
    runs.run(grid(VOL9))
    request = validate_request(grid(VOL9, reuse=True), LIMITS)
    runs.clock += timedelta(seconds=1)
    late = Manifest.new(ids.new_run_id(runs.clock), runs.clock, "test", request, LIMITS)
    manifests.save(runs.store, late)
    bump_version(monkeypatch)
    runs.run(grid(VOL9))  # version 2's points are in version 2's family
    assert reuse.plan(runs.store, late) == {}
    assert json.loads(runs.store.get(layout.reuse_plan(late.run_id)))["reused"] == 0
    summary = run_task(run_task_payload(late, 0), None, runs.store, 0)
    assert summary["error_code"] == "SIMULATION_VERSION_CHANGED"


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


def test_a_source_run_gone_whole_only_means_evaluating_its_points(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run deleted with its manifest (its folders gone, its family's markers left): the
    points only it computed are evaluated, and the others are still copied."""
    counted = Counted(monkeypatch)
    gone = runs.run(grid(VOL9))
    root = Path(runs.store.describe())
    shutil.rmtree(root / layout.results_prefix(gone.run_id))
    shutil.rmtree((root / layout.manifest(gone.run_id)).parent)
    kept = runs.run(grid(VOL9, fail_shards=[0]))  # shard 0 (21 points) never succeeds
    counted.calls.clear()
    run = runs.run(grid(VOL9, reuse=True))
    assert len(counted.calls) == 21
    assert {r["source_run_id"] for r in runs.results(run).values()} == {kept.run_id, None}
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
    assert wide.invocations == 4 + 1 + 2 and wide.s3_requests > 4  # the compactor's two
    # A worker's reads (GET, HEAD) are priced as reads: less than all its requests as writes.
    as_writes = pricing.usd(wide.lambda_gb_s, wide.invocations, 0, wide.s3_requests)
    assert wide.usd < as_writes - 4 * (
        pricing.PRICES.s3_write_request - pricing.PRICES.s3_read_request
    )
    other_seed = estimating.estimate(grid(VOL17, reuse=True, seed=8), sample=20, data_root=root)
    assert other_seed.points_reused == 0
    run = runs.run(grid(VOL17, reuse=True))  # what the run then copies: what was counted
    assert status(runs.store, run.run_id)["points_reused"] == wide.points_reused

    tiny = {
        "worker": pricing.FunctionSize(512, 1),
        "dispatcher": pricing.FunctionSize(1024, 900),
        "compactor": pricing.FunctionSize(3008, 900),
    }
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


class RacingStore(LocalStore):
    """Runs another run's merge just before this one creates its generation: both want the
    same generation number, as two compactors of one family finishing together do."""

    other: str | None = None

    def create(self, key: str, data: bytes) -> bool:
        if layout.parse_reuse_merged(key) is not None and self.other is not None:
            other, self.other = self.other, None
            assert reuse.merge_run(self, other, NoCatalog()) == 81
        return super().create(key, data)


def test_two_runs_merged_at_once_lose_no_point(tmp_path: Path) -> None:
    store = RacingStore(tmp_path / "data")
    runs = Runs(store)
    first = runs.run(grid(VOL9))
    wide = runs.run(grid(VOL17))  # 153 points, 81 of them first's too
    store.other = first.run_id
    assert reuse.merge_run(store, wide.run_id, NoCatalog()) == 153  # lost 1, merged on top
    fam = reuse.family("option_pricing", "1", 7)
    keys = [o.key for o in store.list(layout.reuse_merged_prefix(fam))]
    assert keys == [layout.reuse_merged(fam, 2)]
    origins = reuse.history(store, fam, "none").origins.to_pylist()
    assert (origins.count(first.run_id), origins.count(wide.run_id)) == (81, 72)
    assert reuse.merge_run(store, first.run_id, NoCatalog()) == 0  # merged already


def test_compaction_merges_a_complete_runs_index(tmp_path: Path) -> None:
    """The hook: compacting a complete run folds what it evaluated (read from the generation
    just written) into its family's index, once, and the run is no longer pending."""
    from chalicelib.config import Settings
    from chalicelib.execution.compaction import compact

    runs = Runs(LocalStore(tmp_path / "data"))
    first = runs.run(grid(VOL9))
    assert status(runs.store, first.run_id)["complete"]  # writes its summary
    settings = Settings(stage="dev", compaction_target_mb=1)
    fam = reuse.family("option_pricing", "1", 7)
    before = [o.key for o in runs.store.list(layout.reuse_family(fam))]
    assert before == [layout.reuse_pending(fam, first.run_id, INITIAL)]
    catalog = FamilyCatalog()
    for _ in range(2):  # a second compactor call finds nothing left to merge
        compact(runs.store, first.run_id, settings, catalog)
        assert not any(runs.store.list(layout.reuse_pending_prefix(fam)))
        after = [o.key for o in runs.store.list(layout.reuse_merged_prefix(fam))]
        assert after == [layout.reuse_merged(fam, 1)]
    assert catalog.families == [fam]  # its partition of the table reuse, once merged
    again = runs.run(grid(VOL9, reuse=True))
    assert status(runs.store, again.run_id)["points_reused"] == 81


class GlueDown(NoCatalog):
    def register_family(self, family: str) -> int:
        raise RuntimeError("Glue is down")


def test_a_compacted_run_keeps_its_results_until_it_is_merged(tmp_path: Path) -> None:
    """A merge that fails (here Glue, after the generation is committed) leaves the run
    pending: its compaction does not delete the per-shard results plans read it from, even
    past the grace period, and the next compaction merges it, then cleans up."""
    from chalicelib.config import Settings
    from chalicelib.execution.compaction import compact

    runs = Runs(LocalStore(tmp_path / "data"))
    first = runs.run(grid(VOL9))
    assert status(runs.store, first.run_id)["complete"]
    settings = Settings(stage="dev", compaction_target_mb=1, compaction_grace_s=0)
    fam = reuse.family("option_pricing", "1", 7)
    held = compact(runs.store, first.run_id, settings, GlueDown())
    assert held["status"] == "compacted" and held["pending_merge"]
    assert reuse.pending(runs.store, first.run_id)
    assert len(list(runs.store.list(layout.results_prefix(first.run_id)))) == 4
    again = runs.run(grid(VOL9, reuse=True))
    assert status(runs.store, again.run_id)["points_reused"] == 81
    done = compact(runs.store, first.run_id, settings, FamilyCatalog())
    assert done["status"] == "cleaned" and not reuse.pending(runs.store, first.run_id)
    assert not any(runs.store.list(layout.results_prefix(first.run_id)))
    last = runs.run(grid(VOL9, reuse=True))
    assert status(runs.store, last.run_id)["points_reused"] == 81
    assert {r["source_run_id"] for r in runs.results(last).values()} == {first.run_id}
    assert [o.key for o in runs.store.list(layout.reuse_merged_prefix(fam))] == [
        layout.reuse_merged(fam, 2)  # the second merge is a generation on top of the first
    ]


class FamilyCatalog(NoCatalog):
    def __init__(self) -> None:
        self.families: list[str] = []

    def register_family(self, family: str) -> int:
        self.families.append(family)
        return 1


def test_a_familys_partition_is_registered_in_glue_once(tmp_path: Path) -> None:
    """Glue (moto) gets the family's partition of the table reuse, at the folder merging
    writes to; registering it again is no error."""
    import boto3
    from moto import mock_aws

    from chalicelib.analytics import glue_schema
    from chalicelib.analytics.catalog import GlueCatalog

    fam = reuse.family("option_pricing", "1", 7)
    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        glue.create_database(DatabaseInput={"Name": "db"})
        table = glue_schema.table_input("reuse", "s3://bucket/p/reuse/merged/")
        glue.create_table(DatabaseName="db", TableInput=table)
        catalog = GlueCatalog("db", "s3://bucket/p", lambda: glue)
        assert catalog.register_family(fam) == 1
        assert catalog.register_family(fam) == 0
        got = glue.get_partition(DatabaseName="db", TableName="reuse", PartitionValues=[fam])
    location = got["Partition"]["StorageDescriptor"]["Location"]
    assert location == f"s3://bucket/p/{layout.reuse_merged_prefix(fam)}"
    assert layout.reuse_merged(fam, 1).startswith(layout.reuse_merged_prefix(fam))
    columns = got["Partition"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == [f.name for f in REUSE_MERGED]


def pi_sample(points: int, **extra: Any) -> dict[str, Any]:
    """A random design drawing ``samples`` from 1..6: most points are repeated."""
    design = {"integer": {"low": 1, "high": 6}}
    return {
        "simulation": "monte_carlo_pi",
        "parameters": {},
        "sample": {"design": "random", "points": points, "axes": {"samples": design}},
        "shards": {"count": 2},
        "seed": 7,
    } | extra


def test_the_reuse_count_query_is_what_the_run_then_reuses(tmp_path: Path) -> None:
    """``sweeps.reuse_count``'s SQL, in the Athena dialect, run on DuckDB through the local
    engine's sqlglot path over the table ``reuse`` (the merged index), against each run's
    ``points_reused``: a widened grid with more replicates, a sampled block whose points repeat
    (each counted as often as the request holds it), another seed."""
    from sweeps import reuse_count
    from sweeps.engines.local import LocalEngine

    runs = Runs(LocalStore(tmp_path / "data"), merge=True)
    runs.run(grid(VOL9, replicates=2))
    runs.run(pi_sample(20))
    engine = LocalEngine(tmp_path / "data")
    cases = [
        (grid(VOL17, reuse=True, replicates=3), 162),
        (pi_sample(30, reuse=True), None),  # the first 20 points, and the later ones' repeats
        (grid(VOL9, reuse=True, seed=8), 0),
    ]
    for body, expected in cases:
        counted = reuse_count.count(engine, validate_request(body, LIMITS))
        run = runs.run(body)
        assert counted == status(runs.store, run.run_id)["points_reused"]
        assert counted == expected if expected is not None else 20 < counted <= 30


def test_a_reuse_count_too_long_for_athena_is_split_and_adds_up(tmp_path: Path) -> None:
    """Athena refuses a query over 262,144 characters, and a sampled block's ``VALUES`` list
    grows by a row per distinct point: such a request is counted by several queries, each
    within the limit, whose counts add up to the one query's (run on DuckDB, which has no
    limit) and to what the run then reuses."""
    from sweeps import reuse_count
    from sweeps.engines.local import LocalEngine

    big = validate_request(pi_sample(20_000) | {"sample": _wide_sample(20_000)}, LIMITS)
    (whole,) = reuse_count.count_sqls(big, limit=10**8)
    assert len(whole) > reuse_count.MAX_QUERY_CHARS  # one query would be refused
    parts = reuse_count.count_sqls(big)
    assert len(parts) > 1 and all(len(q.encode()) <= reuse_count.MAX_QUERY_CHARS for q in parts)

    runs = Runs(LocalStore(tmp_path / "data"), merge=True)
    runs.run(pi_sample(20))
    runs.run(grid(VOL9, replicates=2))
    engine = LocalEngine(tmp_path / "data")
    for body in (pi_sample(30, reuse=True), grid(VOL17, reuse=True, replicates=3)):
        request = validate_request(body, LIMITS)
        one = reuse_count.count(engine, request, limit=10**8)
        (alone,) = reuse_count.count_sqls(request, limit=10**8)
        limit = len(alone) - 30  # a limit the one query passes: split
        sqls = reuse_count.count_sqls(request, limit)
        assert len(sqls) > 1 and all(len(q.encode()) <= limit for q in sqls)
        assert reuse_count.count(engine, request, limit) == one > 0
        run = runs.run(body)
        assert one == status(runs.store, run.run_id)["points_reused"]


def _wide_sample(points: int) -> dict[str, Any]:
    """A sampled block whose points are all distinct (two continuous axes)."""
    axes = {"samples": {"integer": {"low": 1, "high": 10**9}}}
    return {"design": "random", "points": points, "axes": axes}


@contextmanager
def athena_over(
    root: Path, monkeypatch: pytest.MonkeyPatch, sent: list[str] | None = None
) -> Iterator[Any]:
    """moto's Athena as the client's (``aws.athena``), workgroup ``sweeps``; moto runs no SQL,
    so each query's answer is queued from DuckDB running the very text sent (through the
    local engine's sqlglot path) over the data under ``root``: what is stood in for is
    Athena's execution of the SQL, nothing of ours. Yields moto's Athena backend; ``sent``
    collects the queries."""
    import boto3
    from moto import mock_aws
    from moto.athena.models import QueryResults, athena_backends
    from moto.core.models import DEFAULT_ACCOUNT_ID

    from chalicelib import aws
    from sweeps.engines.local import LocalEngine

    def athena_answers(params: dict[str, Any], **_: Any) -> None:
        if sent is not None:
            sent.append(params["QueryString"])
        rows = LocalEngine(root).execute(params["QueryString"]).rows
        cells = [{"Data": [{"VarCharValue": "reusable"}]}]
        cells += [{"Data": [{"VarCharValue": str(r["reusable"])}]} for r in rows]
        info = [{"Name": "reusable", "Label": "reusable", "Type": "bigint", "Nullable": "UNKNOWN"}]
        backend: Any = athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]  # the mock's, once started
        backend.query_results_queue.append(QueryResults(rows=cells, column_info=info))

    with mock_aws():
        client = boto3.client("athena", region_name="us-east-1")
        client.create_work_group(
            Name="sweeps",
            Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/athena/"}},
        )
        client.meta.events.register(
            "before-parameter-build.athena.StartQueryExecution", athena_answers
        )
        monkeypatch.setattr(aws, "athena", lambda: client)
        yield athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def test_sweep_estimate_counts_reusable_points_on_athena(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sweep estimate --engine athena``: the request path is real boto3 against moto's Athena
    (StartQueryExecution in the workgroup, with the database as context, polled, results read
    through the paginator), answered as ``athena_over`` says."""
    from click.testing import CliRunner

    from sweeps import cli, reuse_count

    root = tmp_path / "data"
    runs = Runs(LocalStore(root), merge=True)
    runs.run(grid(VOL9, seed=9))
    body = grid(VOL17, reuse=True, seed=9)
    (tmp_path / "wide.json").write_text(json.dumps(body))
    sent: list[str] = []

    with athena_over(root, monkeypatch, sent) as backend:
        argv = ["estimate", str(tmp_path / "wide.json"), "--json", "--engine", "athena"]
        answer = CliRunner().invoke(cli.main, [*argv, "--workgroup", "sweeps", "--database", "db"])
        assert answer.exit_code == 0, answer.output
        (execution,) = backend.executions.values()
        assert execution.workgroup.name == "sweeps"
        assert execution.context == {"Database": "db"}
    assert sent == reuse_count.count_sqls(validate_request(body, LIMITS))
    assert len(sent) == 1
    estimated = json.loads(answer.stdout)
    run = runs.run(body)
    assert estimated["points_reused"] == status(runs.store, run.run_id)["points_reused"] == 81


class MergedMidPlan(LocalStore):
    """Merges run ``other`` (as its compactor does) right after the plan's listing of
    ``during`` is taken: the plan sees that listing as it was before the merge."""

    other: str | None = None
    during = ""

    def list(self, prefix: str) -> Iterator[StoredObject]:
        listed = list(super().list(prefix))
        if self.other is not None and prefix.startswith(self.during):
            other, self.other = self.other, None
            assert reuse.merge_run(self, other, NoCatalog()) == 81
        return iter(listed)


FAMILY = reuse.family("option_pricing", "1", 7)


@pytest.mark.parametrize(
    "during", [layout.reuse_merged_prefix(FAMILY), layout.reuse_pending_prefix(FAMILY)]
)
def test_a_source_merged_while_a_plan_reads_the_history_is_still_reused(
    tmp_path: Path, during: str
) -> None:
    """A run's compaction merges it into the index while a widened run is being planned
    (status finds it complete just when its user submits the next grid): wherever the merge
    lands between the plan's reads, its points are copied, none evaluated again."""
    store = MergedMidPlan(tmp_path / "data")
    runs = Runs(store)
    first = runs.run(grid(VOL9))
    store.other, store.during = first.run_id, during
    again = runs.run(grid(VOL9, reuse=True))
    assert store.other is None  # the merge did run mid-plan
    assert status(store, again.run_id)["points_reused"] == 81
    assert {row["source_run_id"] for row in runs.results(again).values()} == {first.run_id}


class PlanReads(LocalStore):
    """Counts the reads of one run's plan summary (``reuse_plans``: one entry a shard)."""

    plan = ""  # the counted run's plan summary key
    reads = 0

    def get(self, key: str) -> bytes:
        self.reads += key == self.plan
        return super().get(key)


def test_a_complete_reusing_runs_status_does_not_read_its_plan_again(tmp_path: Path) -> None:
    """The plan's counts have an entry a shard (100,000 for a 100,000-shard run): once status
    finds the run complete it keeps their sum in the summary, and reads it from there."""
    store = PlanReads(tmp_path / "data")
    runs = Runs(store)
    runs.run(grid(VOL9))
    wide = runs.run(grid(VOL17, reuse=True))
    store.plan = layout.reuse_plan(wide.run_id)  # its workers have read it: now status alone
    first = status(store, wide.run_id)
    assert first["complete"] and (first["points_reused"], first["points_evaluated"]) == (81, 72)
    assert store.reads == 1
    again = status(store, wide.run_id)
    assert again == first and store.reads == 1


DEPLOYED = "https://abc123defg.execute-api.us-east-1.amazonaws.com/api"


def test_submit_estimate_counts_on_the_deployed_stage_it_submits_to(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sweep submit --estimate`` to a deployed stage, without ``--engine``: the reusable
    points are counted on that stage's Athena (its data: an earlier run merged there), not in
    this machine's local data root (which holds another history: all 153 points), and the
    count is what the run then reuses on that stage.

    The stage is the harness (the API handler, dispatchers and workers on moto S3, stage dev);
    API Gateway, which cannot run here, is stood in for by a session that refuses an unsigned
    request and hands a signed one to the handler through chalice's test client. Athena
    answers over a copy of the stage's bucket (``athena_over``)."""
    from click.testing import CliRunner

    from sweeps import cli, reuse_count

    first = body_of(harness.post(grid(VOL9, seed=9)))["run_id"]
    harness.run_dispatchers()
    harness.run_workers()
    reuse.merge_run(harness.store, first, NoCatalog())  # what its compaction does
    bucket = LocalStore(tmp_path / "bucket")  # the stage's objects, as Athena's tables see them
    for key in harness.all_keys():
        bucket.put(key, harness.store.get(key))
    elsewhere = tmp_path / "local"  # the local stage's data, where reuse must not be counted
    Runs(LocalStore(elsewhere)).run(grid(VOL17, seed=9))
    monkeypatch.setenv("SWEEP_LOCAL_ROOT", str(elsewhere))
    monkeypatch.setenv("SWEEP_ATHENA_WORKGROUP", "sweeps")
    monkeypatch.setenv("SWEEP_GLUE_DATABASE", "db")
    monkeypatch.delenv("SWEEP_STAGE", raising=False)

    class ApiGateway(requests.Session):
        def request(  # type: ignore[override]
            self, method: str, url: str, data: bytes | None = None, **kw: Any
        ) -> requests.Response:
            assert url.startswith(DEPLOYED + "/"), url
            headers = dict(kw.get("headers") or {})
            response = requests.Response()
            response.url = url
            if not headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                response.status_code, response._content = 403, b'{"message": "Forbidden"}'
                return response
            path = url.removeprefix(DEPLOYED)
            got = harness.client.http.request(method, path, headers=headers, body=data or b"")
            response.status_code, response._content = got.status_code, got.body
            return response

    monkeypatch.setattr(requests, "Session", ApiGateway)
    body = grid(VOL17, reuse=True, seed=9)
    (tmp_path / "wide.json").write_text(json.dumps(body))
    sent: list[str] = []
    with athena_over(tmp_path / "bucket", monkeypatch, sent):
        argv = ["--api", DEPLOYED, "submit", str(tmp_path / "wide.json"), "--estimate"]
        answer = CliRunner().invoke(cli.main, argv, catch_exceptions=False)
    assert answer.exit_code == 0, answer.output
    assert sent == reuse_count.count_sqls(validate_request(body, LIMITS))
    assert len(sent) == 1
    assert "points 153 in 4 shards; 81 reusable, 72 to evaluate\n" in answer.stderr
    assert "note: priced with the local stage's function sizes" in answer.stderr
    assert "accepted: 153 points in 4 shards" in answer.stderr
    run_id = answer.stdout.strip()
    harness.run_dispatchers()
    harness.run_workers()
    assert body_of(harness.get(f"/sweeps/{run_id}"))["points_reused"] == 81
    # And --engine local reads this machine's data root instead, as asked.
    local = CliRunner().invoke(cli.main, [*argv, "--engine", "local"], catch_exceptions=False)
    assert "points 153 in 4 shards; 153 reusable, 0 to evaluate\n" in local.stderr
