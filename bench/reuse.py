"""A fully reused run against the same run evaluated, side by side.

    .venv/bin/python -m bench.reuse                          # 10^6 points, 100 shards
    .venv/bin/python -m bench.reuse --points-per-axis 20 --sources 2 --json

The work: ``option_pricing`` over strike x volatility x maturity (``--points-per-axis`` values
each, 100 by default: 10^6 points) with ``paths = 100``, in 100 shards, seed 1. In one process,
on a LocalStore in a temp dir, with the pieces the local stage runs (manifest, the root
dispatcher's reuse plan, ``run_task`` per shard):

1. ``--sources`` earlier runs evaluate slices of the space (each a contiguous block of strike
   values, so together they cover it once), each merged into its family's index once complete
   (``reuse.merge_run``, what its compaction does; not timed). A run not merged yet is read
   from its results instead: ``bench.reuse_planning`` times that;
2. **evaluating**: the full request without reuse, every shard in turn;
3. **reusing**: the full request with ``"reuse": true``: the plan (keys of every point matched
   against the index) plus every shard copying its points.

Both runs' results are compared point by point (metrics bit-identical) before any time is
reported. Times are wall clock of this one process (CPU time is reported too).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from chalicelib.analytics.catalog import NoCatalog
from chalicelib.execution import reuse
from chalicelib.execution.worker import run_task
from chalicelib.logs import logger
from chalicelib.model import ids
from chalicelib.model.events import INITIAL, run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits
from chalicelib.model.validation import validate_request
from chalicelib.storage import layout, manifests
from chalicelib.storage.stores import LocalStore

LIMITS = Limits(max_points=10_000_000, max_shards=10_000, allow_fault_injection=True)
SHARDS = 100


def body(per_axis: int, strikes: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    values = strikes if strikes is not None else list(np.linspace(50, 150, per_axis))
    return {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"values": [float(v) for v in values]},
            "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": per_axis}},
            "maturity": {"linspace": {"start": 0.25, "stop": 2.0, "num": per_axis}},
            "paths": {"values": [100]},
        },
        "shards": {"count": SHARDS},
        "seed": 1,
    } | extra


class Runner:
    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.clock = datetime(2026, 12, 1, tzinfo=UTC)

    def run(self, request_body: dict[str, Any]) -> tuple[Manifest, float, float]:
        request = validate_request(request_body, LIMITS)
        self.clock += timedelta(seconds=1)
        run = Manifest.new(ids.new_run_id(self.clock), self.clock, "bench", request, LIMITS)
        manifests.save(self.store, run)
        wall, cpu = time.perf_counter(), time.process_time()
        if request.reuse:
            reuse.plan(self.store, run)
        reuse.mark_pending(self.store, run, INITIAL)  # as its dispatcher
        for shard_id in range(request.shard_count):
            run_task(run_task_payload(run, shard_id), None, self.store, 0)
        return run, time.perf_counter() - wall, time.process_time() - cpu

    def merge(self, run: Manifest) -> None:
        """What the run's compaction does once it is complete (not timed: the compactor's
        invocation, before the reusing run is submitted): its points into the family's merged
        index, which the reusing run's plan then reads."""
        reuse.merge_run(self.store, run.run_id, NoCatalog())

    def metrics(self, run: Manifest) -> tuple[np.ndarray, int]:
        folder = Path(self.store.describe()) / layout.results_prefix(run.run_id)
        table = pq.read_table(folder)
        order = np.argsort(table["point_index"].to_numpy())
        values = table["metrics"].combine_chunks().items.to_numpy()
        width = len(values) // table.num_rows
        copied = table["source_run_id"].is_valid().to_numpy().sum()
        return values.reshape(-1, width)[order], int(copied)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points-per-axis", type=int, default=100)
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    n = args.points_per_axis
    strikes = list(np.linspace(50, 150, n))
    blocks = np.array_split(np.array(strikes), args.sources)
    with tempfile.TemporaryDirectory(prefix="bench-reuse-") as tmp:
        runner = Runner(LocalStore(Path(tmp)))
        sources_s = 0.0
        for block in blocks:
            source, wall, _ = runner.run(body(n, list(block), shards={"count": 10}))
            sources_s += wall
            runner.merge(source)
        evaluated, eval_wall, eval_cpu = runner.run(body(n))
        runner.merge(evaluated)
        reused, reuse_wall, reuse_cpu = runner.run(body(n, reuse=True))
        expected, none_copied = runner.metrics(evaluated)
        got, copied = runner.metrics(reused)
        if (
            none_copied
            or copied != n**3
            or not np.array_equal(np.nan_to_num(got, nan=-1.0), np.nan_to_num(expected, nan=-1.0))
        ):
            raise AssertionError("the reused run differs from the evaluated one")
    report = {
        "points": n**3,
        "shards": SHARDS,
        "sources": args.sources,
        "sources_s": round(sources_s, 2),
        "evaluating_s": round(eval_wall, 2),
        "evaluating_cpu_s": round(eval_cpu, 2),
        "reusing_s": round(reuse_wall, 2),
        "reusing_cpu_s": round(reuse_cpu, 2),
        "reused_over_evaluating": round(reuse_wall / eval_wall, 3),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['points']:,} points in {SHARDS} shards, {args.sources} source runs: "
            f"evaluating {eval_wall:.2f} s, fully reused {reuse_wall:.2f} s "
            f"({report['reused_over_evaluating']:.2f}x), metrics identical"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
