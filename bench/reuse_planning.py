"""A reusing run's planning time against the family's history: 1, 10 and 30 earlier runs over
the same points, read from their results (the runs still pending) and from the family's merged
index.

    .venv/bin/python -m bench.reuse_planning                 # 10,000 points, 20 shards a run
    .venv/bin/python -m bench.reuse_planning --points-per-axis 10 --json

The work: ``option_pricing`` over strike x volatility (``--points-per-axis`` values each, 100
by default: 10,000 points) x option (call, put) with ``paths = 100``, in 20 shards, seed 1,
evaluated by ``run_task`` per shard on a LocalStore (the pieces the local stage runs), the same
request again and again without reuse: every earlier run computed every point. At each
checkpoint (1, 10, 30 runs) the data root is copied twice:

- **pending**: as the runs left it (no run compacted yet: a plan reads each run's results and
  makes each evaluated point's key from its index, what it does for runs not merged);
- **merged**: what each run evaluated merged into the family's index in run order
  (``reuse.merge_run``, what each run's compaction does once it is complete).

Then ``reuse.plan`` of a reusing run of the same request, three times on each copy (each a new
run id), through a ``CountingStore``: the median wall and CPU seconds, the S3 requests it made
(GETs and LIST pages, as a deployed dispatcher would pay them) and the rows of history it
matched. Every plan must copy every point. Times are of this one process; the request counts do
not depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.analytics.catalog import NoCatalog
from chalicelib.execution import reuse
from chalicelib.execution.worker import run_task
from chalicelib.logs import logger
from chalicelib.model import ids
from chalicelib.model.events import INITIAL, run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits
from chalicelib.model.validation import validate_request
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import manifests
from chalicelib.storage.stores import CountingStore, LocalStore

LIMITS = Limits(max_points=10_000_000, max_shards=10_000, allow_fault_injection=True)
CHECKPOINTS = (1, 10, 30)
SHARDS = 20
REPEATS = 3


def body(per_axis: int, **extra: Any) -> dict[str, Any]:
    return {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"values": [float(v) for v in np.linspace(50, 150, per_axis)]},
            "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": per_axis}},
            "option": {"values": ["call", "put"]},
            "paths": {"values": [100]},
        },
        "shards": {"count": SHARDS},
        "seed": 1,
    } | extra


class Clock:
    """Run ids later than every earlier one (run ids sort by creation time)."""

    def __init__(self) -> None:
        self.t = datetime(2026, 12, 1, tzinfo=UTC)

    def manifest(self, store: LocalStore, request_body: dict[str, Any]) -> Manifest:
        self.t += timedelta(seconds=1)
        request = validate_request(request_body, LIMITS)
        run = Manifest.new(ids.new_run_id(self.t), self.t, "bench", request, LIMITS)
        manifests.save(store, run)
        return run


def planning(root: Path, clock: Clock, per_axis: int, total: int) -> dict[str, Any]:
    """Median wall and CPU seconds of ``reuse.plan`` on the data root at ``root``, and the S3
    requests and history rows of one plan."""
    store = LocalStore(root)
    walls, cpus, requests, rows = [], [], 0, 0
    fam = reuse.family("option_pricing", REGISTRY["option_pricing"].version, 1)
    for _ in range(REPEATS):
        run = clock.manifest(store, body(per_axis, reuse=True))
        counting = CountingStore(store)
        wall, cpu = time.perf_counter(), time.process_time()
        counts = reuse.plan(counting, run)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if sum(counts.values()) != total:
            raise AssertionError(f"the plan copies {sum(counts.values())} of {total} points")
        requests = counting.reads + counting.writes - (len(counts) + 1)  # less its own writes
        rows = len(reuse.history(store, fam, run.run_id))
    return {
        "plan_s": round(statistics.median(walls), 4),
        "plan_cpu_s": round(statistics.median(cpus), 4),
        "s3_requests": requests,
        "history_rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points-per-axis", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    n = args.points_per_axis
    total = n * n * 2
    load_before = round(os.getloadavg()[0], 2)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-reuse-planning-") as tmp:
        history = Path(tmp) / "history"
        store = LocalStore(history)
        clock = Clock()
        earlier: list[str] = []
        for count in range(1, max(CHECKPOINTS) + 1):
            run = clock.manifest(store, body(n))
            reuse.mark_pending(store, run, INITIAL)  # as its dispatcher
            for shard_id in range(SHARDS):
                run_task(run_task_payload(run, shard_id), None, store, 0)
            earlier.append(run.run_id)
            if count not in CHECKPOINTS:
                continue
            files = Path(tmp) / f"files-{count}"
            merged = Path(tmp) / f"merged-{count}"
            shutil.copytree(history, files)
            shutil.copytree(history, merged)
            merged_store = LocalStore(merged)
            merge_cpu = []
            for run_id in earlier:
                cpu = time.process_time()
                reuse.merge_run(merged_store, run_id, NoCatalog())
                merge_cpu.append(time.process_time() - cpu)
            results.append(
                {
                    "earlier_runs": count,
                    "pending": planning(files, clock, n, total),
                    "merged": planning(merged, clock, n, total),
                    "merge_cpu_s_last_run": round(merge_cpu[-1], 4),
                }
            )
            shutil.rmtree(files)
            shutil.rmtree(merged)
    report = {
        "points": total,
        "shards": SHARDS,
        "results": results,
        "load_1min": [load_before, round(os.getloadavg()[0], 2)],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for r in results:
        f, m = r["pending"], r["merged"]
        print(
            f"{r['earlier_runs']:>3} earlier runs of {total:,} points: pending runs' results "
            f"{f['plan_s']:.3f} s ({f['plan_cpu_s']:.3f} s CPU, {f['s3_requests']} requests, "
            f"{f['history_rows']:,} rows); merged {m['plan_s']:.3f} s ({m['plan_cpu_s']:.3f} s "
            f"CPU, {m['s3_requests']} requests, {m['history_rows']:,} rows); merging the last "
            f"run {r['merge_cpu_s_last_run']:.3f} s CPU"
        )
    print(
        f"load average (1 min) {report['load_1min'][0]} at start, {report['load_1min'][1]} at end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
