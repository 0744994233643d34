"""Time every baseline query of athena/ on the local engine over a 1,000-shard run.

    .venv/bin/python -m bench.queries                  # build a run in a temp dir, time, print
    .venv/bin/python -m bench.queries --root DIR       # keep (or reuse) the data root
    .venv/bin/python -m bench.queries --json

The run goes through the real worker (bench.local_runs): option_pricing over 2,000 points in
1,000 shards of 2 points (100 paths each), with 10 shards failing by injection. Each query is
run ``--repeat`` times; ``first`` includes DuckDB's connection and view set-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chalicelib.storage import layout
from scripts.local_runs import run_sweep
from sweeps.engines.local import LocalEngine
from sweeps.sql import all_queries

SHARDS = 1000
FAIL_SHARDS = list(range(0, SHARDS, 100))
BODY: dict[str, Any] = {
    "simulation": "option_pricing",
    "parameters": {
        "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 10}},
        "strike": {"range": {"start": 50, "stop": 250, "step": 1}},
        "paths": {"values": [100]},
    },
    "shards": {"count": SHARDS},
    "seed": 1,
    "fail_shards": FAIL_SHARDS,
}
RUN_ID = "20261126T100000000Z-bench0000001"  # fixed, so --root can reuse a built run
DT = "2026-11-26"


def params_for(name: str) -> dict[str, Any]:
    params: dict[str, dict[str, Any]] = {
        "run_summary": {"run_id": RUN_ID},
        "failure_by_error": {"run_id": RUN_ID},
        "coverage": {"run_id": RUN_ID, "shard_count": SHARDS},
        "best_points": {"run_id": RUN_ID, "metric": "abs_error"},
        "run_cost": {"run_id": RUN_ID},
    }
    return params.get(name, {})


def build(root: Path, processes: int) -> float:
    started = time.perf_counter()
    run_sweep(root, BODY, RUN_ID, DT, processes=processes)
    return time.perf_counter() - started


def check(name: str, rows: list[dict[str, Any]]) -> None:
    """The numbers the run must produce, so a fast wrong answer is never reported."""
    failed = len(FAIL_SHARDS)
    if name == "run_summary":
        got = {r["status"]: (r["shards"], r["points"]) for r in rows}
        assert got == {
            "succeeded": (SHARDS - failed, 2 * (SHARDS - failed)),
            "failed": (failed, 2 * failed),
        }
    elif name in ("failure_rate", "daily_failure_rate"):
        assert [(r["shards"], r["failed"]) for r in rows] == [(SHARDS, failed)]
    elif name == "failure_by_error":
        assert [(r["error_code"], r["failed_shards"]) for r in rows] == [
            ("INJECTED_FAILURE", failed)
        ]
    elif name == "coverage":
        assert rows == []
    elif name == "run_cost":
        # one worker invocation per shard (the injected failures are final at once), a total
        lines = {r["function_name"]: r["invocations"] for r in rows}
        assert lines["worker"] == SHARDS and lines["total"] == sum(
            n for f, n in lines.items() if f != "total"
        )
    elif name == "best_points":
        # 10 volatilities + 1 paths value + 198 strikes: failed shards 0, 100, ... 900 hold
        # strikes 50 and 51 at every volatility, so those two have no result at all; and one
        # row for each of the 4 parameters left at their default (spot, rate, maturity, option).
        assert len(rows) == 10 + 1 + 198 + 4


def time_queries(root: Path, repeat: int) -> list[dict[str, Any]]:
    engine = LocalEngine(root)
    rows = []
    for name in all_queries():
        times = []
        result = None
        for _ in range(repeat):
            started = time.perf_counter()
            result = engine.run(name, **params_for(name))
            times.append(time.perf_counter() - started)
        assert result is not None
        check(name, result.rows)
        rows.append(
            {
                "query": name,
                "rows": len(result.rows),
                "first_s": times[0],
                "median_s": statistics.median(times),
                "min_s": min(times),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queries", description=__doc__)
    parser.add_argument("--root", type=Path, help="data root to build into (or reuse)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from chalicelib.logs import logger

    logger.setLevel("WARNING")
    with tempfile.TemporaryDirectory(prefix="bench-queries-") as tmp:
        root = args.root or Path(tmp) / "data"
        exists = (root / layout.outcomes_prefix(RUN_ID)).is_dir()
        build_s = 0.0 if exists else build(root, args.processes)
        files = {
            table: sum(1 for _ in (root / table).rglob("*.parquet"))
            for table in ("outcomes", "results")
        }
        timings = time_queries(root, args.repeat)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "shards": SHARDS,
        "files": files,
        "build_s": build_s,
        "repeat": args.repeat,
        "queries": timings,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['machine']}; {SHARDS} shards; files {files}; build {build_s:.1f} s")
    print(f"{'query':<20} {'rows':>6} {'first s':>8} {'median s':>9} {'min s':>7}")
    for t in timings:
        print(
            f"{t['query']:<20} {t['rows']:>6} {t['first_s']:>8.3f} {t['median_s']:>9.3f} "
            f"{t['min_s']:>7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
