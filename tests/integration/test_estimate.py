"""``sweep estimate`` charges what the run is then charged: the workers, the dispatcher and the
compactor's two invocations (its compaction, then its clean-up), each at its own memory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import pricing
from chalicelib.analytics.catalog import NoCatalog
from chalicelib.config import Settings
from chalicelib.execution import reuse
from chalicelib.execution.compaction import compact_event
from chalicelib.model.validation import validate_request
from chalicelib.runs import cost
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore, S3Store
from sweeps import estimate as estimating
from tests.support.inline import Inline

BODY: dict[str, Any] = {
    "simulation": "option_pricing",
    "parameters": {
        "strike": {"range": {"start": 80, "stop": 140, "step": 1}},
        "paths": {"values": [30]},
    },
    "shards": {"count": 6},
    "seed": 3,
}


def test_the_dispatchers_requests_are_what_a_real_dispatcher_makes(s3_store: S3Store) -> None:
    """A run small enough for one dispatcher (its root is its leaf), on S3 (moto), where the
    summary's GET and the redrive lists' listing go out at once: the S3 requests its usage
    record counts are the estimate's per dispatcher. (On a folder the listing is not made
    once the GET finds no summary: one write fewer.)"""
    inline = Inline(s3_store, Settings(stage="dev", dispatch_backoff_ms=1))
    run_id = inline.submit(BODY)
    inline.drain()
    used = cost.usage_by_function(s3_store, run_id)["dispatcher"]
    assert used.invocations == 1
    assert (used.s3_reads, used.s3_writes) == estimating.DISPATCHER_REQUESTS


def test_the_compactors_requests_are_what_the_real_compactor_makes(tmp_path: Path) -> None:
    """The estimate's model of the compactor's S3 requests, measured on its own small runs of
    2 and 8 shards, gives for a run of 6 shards (and 4) exactly what the real compactor's two
    invocations on such a run record in their usage records."""
    request = validate_request(BODY, limits=None)
    timing = estimating._compactor_timing(request, 1e-4, None)
    assert all(t > 0 for t in timing.seconds(6, request.total_points))  # CPU was spent
    for shards in (6, 4):
        body = BODY | {"shards": {"size": -(-request.total_points // shards)}}
        resharded = validate_request(body, limits=None)
        assert resharded.shard_count == shards
        root = tmp_path / f"run-{shards}"
        estimating._complete_run(resharded, shards, body["shards"]["size"], root)
        store = LocalStore(root)
        event = {"run_id": estimating.RUN_ID}
        assert compact_event(event, store, Settings(), NoCatalog())["status"] == "compacted"
        cleaning = dataclasses.replace(Settings(), compaction_grace_s=0)
        assert compact_event(event, store, cleaning, NoCatalog())["status"] == "cleaned"
        # The compaction merged the run's points into its family's index: the merge, which
        # the run is charged for, is part of what the estimate times.
        fam = reuse.family("option_pricing", "1", 3)
        assert [o.key for o in store.list(layout.reuse_merged_prefix(fam))]
        used = cost.usage_by_function(store, estimating.RUN_ID)["compactor"]
        bill = timing.billed("local", shards, resharded.total_points)
        assert used.invocations == len(bill.seconds) == 2
        assert (used.s3_reads, used.s3_writes) == (bill.s3_reads, bill.s3_writes)


def test_the_estimate_bills_the_compactor_at_its_own_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every local measurement fixed, the estimate's totals are the workers', the
    dispatcher's and the compactor's, the compactor's GB-s at the compactor's memory."""
    shard = estimating.ShardTiming(0.004, (3, 5))
    timing = estimating.CompactorTiming(
        compact=(0.5, 0.01, 1e-5), cleanup=(0.1, 0.002, 0.0), reads=(10, 3), writes=(24, 0)
    )
    measured = estimating._Measured(1e-3, shard, 0.0, timing)
    monkeypatch.setattr(estimating, "_measure", lambda *args: measured)
    sizes = {
        "worker": pricing.FunctionSize(1769, 900),
        "dispatcher": pricing.FunctionSize(1024, 900),
        "compactor": pricing.FunctionSize(3008, 900),
    }
    monkeypatch.setattr(pricing, "function_sizes", lambda stage: sizes)
    e = estimating.estimate(BODY)
    points, shards = 60, 6
    worker_s = 1e-3 * points / shards + 0.004 + estimating.ROUND_UP_S
    compact_s = 0.5 + 0.01 * shards + 1e-5 * points + estimating.ROUND_UP_S
    cleanup_s = 0.1 + 0.002 * shards + estimating.ROUND_UP_S
    gb_s = (
        shards * worker_s * 1769 / 1024
        + pricing.gb_seconds(round(estimating.DISPATCHER_S * 1000), 1024)
        + (compact_s + cleanup_s) * 3008 / 1024
    )
    assert e.worker_seconds_per_shard == pytest.approx(worker_s, abs=1e-4)
    assert e.compactor_seconds == pytest.approx(compact_s, abs=1e-4)
    assert e.compactor_memory_mb == 3008
    assert e.lambda_gb_s == pytest.approx(gb_s, abs=1e-4)
    assert e.invocations == shards + 1 + 2
    dispatcher_reads, dispatcher_writes = estimating.DISPATCHER_REQUESTS
    reads = shards * 3 + dispatcher_reads + 10 + 3 * shards
    writes = shards * 5 + dispatcher_writes + 24
    assert e.s3_requests == reads + writes
    assert e.usd == pytest.approx(pricing.usd(gb_s, shards + 3, reads, writes), rel=1e-6)
    assert any("compactor" in line for line in estimating.lines(e))

    # A compactor below a full vCPU: its single-threaded seconds stretch by 1769 / memory,
    # billed at its memory; the workers and the dispatcher are unchanged.
    sizes["compactor"] = pricing.FunctionSize(1024, 900)
    smaller = estimating.estimate(BODY)
    stretched = [
        (t - estimating.ROUND_UP_S) * 1769 / 1024 + estimating.ROUND_UP_S
        for t in (compact_s, cleanup_s)
    ]
    assert smaller.compactor_seconds == pytest.approx(stretched[0], abs=1e-4)
    others = gb_s - (compact_s + cleanup_s) * 3008 / 1024
    assert smaller.lambda_gb_s == pytest.approx(others + sum(stretched), abs=1e-4)


def test_the_estimate_counts_the_dispatcher_tree_the_stage_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1,001 shards take 11 dispatcher invocations (a root split 10 ways, each a leaf) and
    100,000 take 111; the estimate counted one a leaf of 1,000 plus the root (3 and 101)."""
    shard = estimating.ShardTiming(0.004, (3, 5))
    timing = estimating.CompactorTiming((0.5, 0, 0), (0.1, 0, 0), (10, 0), (24, 0))
    measured = estimating._Measured(1e-6, shard, 0.0, timing)
    monkeypatch.setattr(estimating, "_measure", lambda *args: measured)
    for shards, tree in ((1, 1), (1000, 1), (1001, 11), (100_000, 111)):
        body = {
            "simulation": "monte_carlo_pi",
            "parameters": {"samples": {"range": {"start": 1, "stop": 100_001, "step": 1}}},
            "shards": {"count": shards},
        }
        assert estimating.estimate(body).invocations == shards + tree + 2, shards


def test_a_shard_of_only_new_points_is_warned_about_whatever_the_reused_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """800 points of 10 s each in shards of 80, 720 of them reusable (an earlier run's block:
    a shard 0 of only new points takes 800 s, over 80 % of the dev worker's 900 s): the
    estimate warns and names a size that fits (at most 71 points of 10 s in 720 s), while its
    totals charge only the 80 points to evaluate."""
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 1, "stop": 801, "step": 1}}},
        "shards": {"size": 80},
        "seed": 0,
        "reuse": True,
    }
    timing = estimating.CompactorTiming(
        compact=(1.0, 0.0, 0.0), cleanup=(1.0, 0.0, 0.0), reads=(1, 0), writes=(1, 0)
    )
    measured = estimating._Measured(10.0, estimating.ShardTiming(0.1, (3, 5)), 0.0, timing)
    monkeypatch.setattr(estimating, "_measure", lambda *args: measured)
    monkeypatch.setattr(estimating, "reusable", lambda request, root: 720)
    e = estimating.estimate(body, stage="dev", data_root=tmp_path)
    assert e.points_reused == 720
    assert e.worker_seconds_max_shard == pytest.approx(80 * 10.0 + 0.1 + estimating.ROUND_UP_S)
    assert e.warning is not None and '"shards": {"size": ' in e.warning
    size = int(e.warning.split('{"size": ')[1].split("}")[0])
    assert 1 <= size <= 71
    # Estimated again at that size (the machine as it was), it does not warn again.
    again = estimating.estimate(body | {"shards": {"size": size}}, stage="dev", data_root=tmp_path)
    assert again.warning is None and again.worker_seconds_max_shard < 0.8 * 900
    # The totals: 80 points evaluated over 10 shards, each shard's fixed cost.
    assert e.worker_seconds_per_shard == pytest.approx(8 * 10.0 + 0.1 + estimating.ROUND_UP_S)


# A billion cheap points in one shard: sampled in a second or two, and far over the timeout.
HUGE: dict[str, Any] = {
    "simulation": "option_pricing",
    "parameters": {
        "strike": {"range": {"start": 1, "stop": 100_001, "step": 1}},
        "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 10_000}},
        "paths": {"values": [1]},
    },
    "shards": {"count": 1},
}


def test_sweep_estimate_prints_every_figure_and_the_timeout_warning(tmp_path: Path) -> None:
    """``sweep estimate FILE`` for people: points, shards, worker seconds per shard, GB-s,
    requests, S3 requests, price and a warning naming a ``shards.size`` that fits, each read
    back from its line (tests.support.cli_text) and checked against the stage config, the
    price table and the other figures it follows from."""
    from click.testing import CliRunner

    from sweeps import cli
    from tests.support.cli_text import estimate_figures, price_bounds

    (tmp_path / "huge.json").write_text(json.dumps(HUGE))
    argv = ["estimate", str(tmp_path / "huge.json"), "--root", str(tmp_path / "data")]
    human = CliRunner().invoke(cli.main, argv, catch_exceptions=False)
    assert human.exit_code == 0, human.output
    shown = estimate_figures(human.stdout)

    points, sizes = 100_000 * 10_000, pricing.function_sizes("local")
    assert (shown["points"], shown["shards"], shown["reusable"]) == (points, 1, None)
    assert shown["requests"] == 1 + 1 + 2  # the worker, the dispatcher, the compactor's two
    assert shown["s3_requests"] > 1  # the worker's writes, at least
    assert shown["memory_mb"] == sizes["worker"].memory_mb
    assert shown["compactor_mb"] == sizes["compactor"].memory_mb
    p = pricing.PRICES
    assert shown["prices"] == f"{p.id} ({p.region}, {p.date})"

    # One shard: it is the largest, and the run's worker GB-s are its seconds at its memory.
    worker_s, fixed_s = shown["worker_max_s"], shown["fixed_ms"] / 1000 * shown["scale"]
    assert shown["worker_s"] == worker_s > 0.8 * sizes["worker"].timeout_s
    least_gb_s = (
        worker_s * shown["memory_mb"] + shown["compactor_s"] * shown["compactor_mb"]
    ) / 1024
    assert shown["gb_s"] >= least_gb_s * (1 - 1e-6)
    low, high = price_bounds(shown["gb_s"], shown["requests"], shown["s3_requests"])
    assert low * (1 - 1e-5) <= shown["usd"] <= high * (1 + 1e-5)

    warning = shown["warning"]
    assert warning is not None
    assert warning["shard_points"] == points
    assert warning["timeout_s"] == sizes["worker"].timeout_s
    assert abs(warning["seconds"] - worker_s) <= 1
    # The size named is what fits a tenth below 80 % of the timeout at the printed per-point
    # seconds, its round-up included: estimated again with it, it does not warn again.
    per_point_s = (worker_s - fixed_s - estimating.ROUND_UP_S) / points
    limit = 0.8 * sizes["worker"].timeout_s * estimating.SUGGESTED_SHARE
    fits = (limit - fixed_s - estimating.ROUND_UP_S) / per_point_s
    assert 1 <= warning["size"] < points
    assert abs(warning["size"] - fits) <= fits * 1e-4 + 1
