"""``make rehearse``'s check of its run at scale (``scripts.rehearse.scale_problems``) bites.

The run itself needs the deployed artifacts and minutes of CPU, so it runs in ``make rehearse``
only (CI's second step); here its check is fed the report such a run gives when the deployed
code does what it must, then that report with one fault each, as a regression would leave it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from scripts.rehearse import SCALE_SHARDS, scale_problems

RUN = "20261206T155005279Z-5dd8d1c1b044"
GEN = "gen-000001-dbb46267c4b74ab9"


def spread(n: int) -> dict[str, int]:
    return {"rows": n, "distinct": n, "lo": 0, "hi": n - 1}


def good(n: int = SCALE_SHARDS) -> dict[str, Any]:
    """The report of a run at scale whose deployed code did everything right (the shape
    ``artifact_driver.run_at_scale`` prints; its figures are a real run's at 1,100 shards)."""
    leaf, inner = n // 100, n // 10
    dispatched = [[0, n]]
    dispatched += [[lo, lo + inner] for lo in range(0, n, inner)]
    dispatched += [[lo, lo + leaf] for lo in range(0, n, leaf)]
    complete = {
        "complete": True,
        "shards": {"succeeded": n, "failed": 0, "pending": 0},
        "failed_shards": [],
        "points_succeeded": 2 * n,
        "dispatch": {"dispatched": n, "failed": 0},
    }
    outcomes = f"sweeps/outcomes/run_id={RUN}/status=succeeded/dt=2026-12-06/"
    compacted = f"sweeps/compacted/outcomes/run_id={RUN}"
    return {
        "shards": n,
        "points": 2 * n,
        "dispatched": dispatched,
        "worker_events": n,
        "worker_runs": spread(n),
        "running_at": n - 50,
        "running": complete
        | {
            "complete": False,
            "shards": {"succeeded": n - 50, "failed": 0, "pending": 50},
            "points_succeeded": 2 * (n - 50),
        },
        "running_listings": ["", f"{outcomes}shard-000999-attempt-1.parquet"],
        "complete": complete,
        "compactions": [{"status": "cleaned", "generation": 1, "deleted": n}],
        "cleanup_requests": {"DeleteObjects": 2},
        "compaction_records": [
            "gen-000001-dbb46267c4b74ab9.usage.gz",
            "gen-000001.cleaned",
            "gen-000001.json",
            "gen-000001.pointed",
        ],
        "compacted": complete,
        "late_delivery": {"run_id": RUN, "shard_id": n - 1, "status": "duplicate"},
        "late_dispatch": {"complete": True, "queued": 0},
        "per_shard_results_left": 0,
        "succeeded_outcome_files": n,
        "partitions": {
            "results": {"": f"sweeps/compacted/results/run_id={RUN}/{GEN}/"},
            "outcomes": {
                "succeeded/2026-12-06": f"{compacted}/status=succeeded/dt=2026-12-06/{GEN}/",
                "failed/2026-12-06": f"{compacted}/status=failed/dt=2026-12-06/{GEN}/",
            },
        },
        "results_read": spread(2 * n),
        "outcomes_read": {
            "succeeded/2026-12-06": spread(n),
            "failed/2026-12-06": {"rows": 0, "distinct": 0, "lo": -1, "hi": -1},
        },
        "seconds": 100.0,
        "cpu_seconds": 40.0,
    }


def test_a_run_that_did_everything_right_passes() -> None:
    assert scale_problems(good()) == []
    assert SCALE_SHARDS > 1000 and SCALE_SHARDS % 100 == 0  # past a page; 100 leaves exactly


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def fault(report: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            report = report[key]
        report[last] = value

    return fault


FAULTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    # A store layer without delete_many: one DELETE per per-shard results file.
    "clean-up one DELETE a key": (
        _set("cleanup_requests", {"DeleteObject": SCALE_SHARDS}),
        "the clean-up of 1,100 files took 1100 requests",
    ),
    "no clean-up request": (_set("cleanup_requests", {}), "the clean-up of 1,100 files"),
    "a leaf lost (run inline by its parent)": (
        lambda r: r["dispatched"].pop(),
        "dispatcher invocations by shards",
    ),
    "a flat tree (the leaf setting ignored)": (
        _set("dispatched", [[0, SCALE_SHARDS], *([[0, 110]] * 10)]),
        "dispatcher invocations by shards",
    ),
    "a shard run twice": (_set("worker_runs.rows", SCALE_SHARDS + 1), "worker invocations"),
    "a shard never handed out": (_set("worker_events", SCALE_SHARDS - 1), "worker events"),
    "status while running miscounts": (
        _set("running.shards.pending", 49),
        "status while running, shards",
    ),
    "status read one page only": (
        _set("running_listings", [""]),
        "outcome listings while running",
    ),
    "status listed the folder from the start twice": (
        _set("running_listings", ["", ""]),
        "outcome listings from the start",
    ),
    "the summary misses a shard": (
        _set("complete.points_succeeded", 2 * SCALE_SHARDS - 2),
        "status once complete",
    ),
    "status changed by compaction": (
        _set("compacted.failed_shards", [7]),
        "status after compaction",
    ),
    "compaction not cleaned": (
        _set("compactions", [{"status": "compacted", "generation": 1}]),
        "compactor invocations",
    ),
    "no cleaned record": (
        lambda r: r["compaction_records"].remove("gen-000001.cleaned"),
        "compaction records",
    ),
    "a second generation": (
        lambda r: r["compaction_records"].append("gen-000002.json"),
        "a second generation",
    ),
    "a per-shard results file left": (
        _set("per_shard_results_left", 3),
        "per-shard results files after the clean-up",
    ),
    "a success outcome deleted": (
        _set("succeeded_outcome_files", SCALE_SHARDS - 1),
        "per-shard success outcomes",
    ),
    "a late delivery wrote again": (
        _set("late_delivery.status", "succeeded"),
        "a late worker delivery after compaction",
    ),
    "a late root dispatch handed out the tree again": (
        _set("late_dispatch", {"complete": False, "queued": 10}),
        "a late root dispatcher delivery after compaction",
    ),
    "the catalog still at the per-shard folder": (
        _set("partitions.results", {"": f"sweeps/results/run_id={RUN}/"}),
        "partitions not pointed at generation 1",
    ),
    "a point read twice": (
        _set("results_read", {"rows": 2201, "distinct": 2200, "lo": 0, "hi": 2199}),
        "points read through the results partition",
    ),
    "a point missing": (
        _set("results_read", {"rows": 2199, "distinct": 2199, "lo": 0, "hi": 2199}),
        "points read through the results partition",
    ),
    "a failed outcome in the compacted run": (
        _set("outcomes_read.failed/2026-12-06", {"rows": 1, "distinct": 1, "lo": 3, "hi": 3}),
        "outcomes partition failed/2026-12-06",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_named(fault: str) -> None:
    report = copy.deepcopy(good())
    change, named = FAULTS[fault]
    change(report)
    problems = scale_problems(report)
    assert problems, fault
    assert any(named in problem for problem in problems), problems
