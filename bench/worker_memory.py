"""Worker peak memory against shard size: ``run_task`` on a ``LocalStore``, one fresh process per
size, peak RSS (``ru_maxrss``) after the shard is written.

option_pricing with paths=1 (the cheapest point, so the results dominate), one shard of N
points. The worker streams results to Parquet in row groups of ``ROW_GROUP_POINTS`` points,
so the goal is peak(10^6) <= peak(10^4) + 64 MB. Before issue 16 it held every point until
the end: 83 MB at 10^4... 182 MB at 10^5, 306 MB at 4x10^5 (issue 16's figures). Each process
has the deployed functions' environment variables (``.chalice/config.json``), as a worker has:
one math thread, and glibc's malloc thresholds pinned (``simulations.allocator``), which let a
process keep up to 64 MB of freed heap.

    .venv/bin/python -m bench.worker_memory [--sizes 10000 100000 1000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chalicelib.config import PROJECT_ROOT

RUN_ID = "20261201T100000000Z-0123456789ab"


def one(points: int) -> dict[str, Any]:
    """In this process: one shard of ``points`` points, then the peak RSS."""
    from chalicelib.execution.worker import run_task
    from chalicelib.model.events import task_payload
    from chalicelib.model.validation import validate_request
    from chalicelib.storage.stores import LocalStore

    body = {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"linspace": {"start": 50, "stop": 150, "num": points}},
            "paths": {"values": [1]},
        },
        "shards": {"count": 1},
    }
    request = validate_request(body, limits=None)
    payload = task_payload(RUN_ID, 0, (0, points), "2026-12-01", request.to_dict())
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        summary = run_task(payload, None, LocalStore(Path(root)), 0)
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(root, "results").rglob("*.parquet"))
    assert summary["status"] == "succeeded", summary
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "points": points,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "seconds": round(seconds, 2),
        "results_mb": round(size / 2**20, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one)))
        return 0
    began = time.monotonic()
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    env = os.environ | config["environment_variables"]
    rows = []
    for points in args.sizes:
        done = subprocess.run(
            [sys.executable, "-m", "bench.worker_memory", "--one", str(points)],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            env=env,
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if not args.json:
            print(rows[-1], flush=True)
    by = {r["points"]: r["peak_rss_mb"] for r in rows}
    report = {
        "sizes": rows,
        "growth_mb": round(by[max(by)] - by[min(by)], 1),
        "command": " ".join(
            [".venv/bin/python", "-m", "bench.worker_memory", "--sizes", *map(str, args.sizes)]
        ),
        "took_s": round(time.monotonic() - began, 1),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"peak({max(by):,}) - peak({min(by):,}) = {report['growth_mb']} MB (goal <= 64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
