"""Worker peak memory against shard size: ``run_task`` on a ``LocalStore``, one fresh process per
size, peak RSS (``ru_maxrss``) after the shard is written.

option_pricing with paths=1 (the cheapest point, so the results dominate), one shard of N
points. The worker streams results to Parquet in row groups of ``ROW_GROUP_POINTS`` points,
so the goal is peak(10^6) <= peak(10^4) + 64 MB. Before issue 16 it held every point until
the end: 83 MB at 10^4... 182 MB at 10^5, 306 MB at 4x10^5 (issue 16's figures). Each process
has the deployed functions' environment variables (``.chalice/config.json``), as a worker has:
one math thread, and glibc's malloc thresholds pinned (``simulations.allocator``), which let a
process keep up to 64 MB of freed heap.

The reuse case (``--reuse-sizes``): the same shard with ``"reuse": true`` after a run that
evaluated it, so every point is copied from the reuse plan, as a rerun of a finished sweep
is. A process evaluates the source run and plans the reusing run as its root dispatcher does
(``reuse.plan``); a fresh process then runs the reusing shard and is measured. Same goal:
peak(10^6) <= peak(10^4) + 64 MB. Before the plan was read a row group at a time, the worker
held a dict of every copied point (about 500 bytes a point: +504 MB at 10^6).

    .venv/bin/python -m bench.worker_memory [--sizes 10000 100000 1000000]
        [--reuse-sizes 10000 1000000] [--json]
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


def body(points: int, reusing: bool = False) -> dict[str, Any]:
    return {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"linspace": {"start": 50, "stop": 150, "num": points}},
            "paths": {"values": [1]},
        },
        "shards": {"count": 1},
        **({"reuse": True} if reusing else {}),
    }


def one(points: int, root: str | None = None) -> dict[str, Any]:
    """In this process: one shard of ``points`` points, then the peak RSS; with ``root``, the
    reusing run ``prepare`` left there."""
    from chalicelib.execution.worker import run_task
    from chalicelib.model.events import task_payload
    from chalicelib.model.validation import validate_request
    from chalicelib.storage.stores import LocalStore

    with tempfile.TemporaryDirectory() as scratch:
        where = Path(root or scratch)
        if root is None:
            request = validate_request(body(points), limits=None)
            payload = task_payload(RUN_ID, 0, (0, points), "2026-12-01", request.to_dict())
        else:
            payload = json.loads((where / "payload.json").read_text())
        started = time.perf_counter()
        summary = run_task(payload, None, LocalStore(where), 0)
        seconds = time.perf_counter() - started
        results = where / "results" / f"run_id={payload['run_id']}"
        size = sum(p.stat().st_size for p in results.rglob("*.parquet"))
    assert summary["status"] == "succeeded", summary
    assert summary.get("points_reused", 0) == (points if root else 0), summary
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "points": points,
        "reused": summary.get("points_reused", 0),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "seconds": round(seconds, 2),
        "results_mb": round(size / 2**20, 2),
    }


def prepare(points: int, root: str) -> None:
    """In this process: a run that evaluates the shard, then the same request with reuse,
    planned as its root dispatcher plans it; the reusing shard's event is left in
    ``root/payload.json``."""
    from datetime import UTC, datetime, timedelta

    from chalicelib.execution import reuse
    from chalicelib.execution.worker import run_task
    from chalicelib.model import ids
    from chalicelib.model.events import INITIAL, run_task_payload
    from chalicelib.model.manifest import Manifest
    from chalicelib.model.request import Limits
    from chalicelib.model.validation import validate_request
    from chalicelib.storage import manifests
    from chalicelib.storage.stores import LocalStore

    store = LocalStore(Path(root))
    limits = Limits(max_points=points, max_shards=1, allow_fault_injection=False)
    clock = datetime(2026, 12, 1, tzinfo=UTC)
    runs = []
    for reusing in (False, True):
        request = validate_request(body(points, reusing), limits)
        clock += timedelta(seconds=1)
        run = Manifest.new(ids.new_run_id(clock), clock, "bench", request, limits)
        manifests.save(store, run)
        if reusing:
            reuse.plan(store, run)
        else:
            reuse.mark_pending(store, run, INITIAL)
            assert run_task(run_task_payload(run, 0), None, store, 0)["status"] == "succeeded"
        runs.append(run)
    (Path(root) / "payload.json").write_text(json.dumps(run_task_payload(runs[-1], 0)))


def measured(points: int, env: dict[str, str], reusing: bool) -> dict[str, Any]:
    """``one`` in a fresh process (after ``prepare`` in another, for a reusing shard)."""
    module = [sys.executable, "-m", "bench.worker_memory"]
    with tempfile.TemporaryDirectory() as root:
        extra = []
        if reusing:
            subprocess.run(  # its logs are not the report
                [*module, "--prepare", str(points), root],
                stdout=subprocess.DEVNULL,
                check=True,
                env=env,
            )
            extra = ["--root", root]
        done = subprocess.run(
            [*module, "--one", str(points), *extra],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            env=env,
        )
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--reuse-sizes", type=int, nargs="*", default=[10_000, 1_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(int(args.prepare[0]), args.prepare[1])
        return 0
    if args.one:
        print(json.dumps(one(args.one, args.root)))
        return 0
    began = time.monotonic()
    load_before = round(os.getloadavg()[0], 2)
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    env = os.environ | config["environment_variables"]
    rows, reused = [], []
    for points in args.sizes:
        rows.append(measured(points, env, reusing=False))
        if not args.json:
            print(rows[-1], flush=True)
    for points in args.reuse_sizes:
        reused.append(measured(points, env, reusing=True))
        if not args.json:
            print("reuse", reused[-1], flush=True)
    by = {r["points"]: r["peak_rss_mb"] for r in rows}
    report: dict[str, Any] = {
        "sizes": rows,
        "growth_mb": round(by[max(by)] - by[min(by)], 1),
        "command": " ".join(
            [
                ".venv/bin/python",
                "-m",
                "bench.worker_memory",
                "--sizes",
                *map(str, args.sizes),
                "--reuse-sizes",
                *map(str, args.reuse_sizes),
            ]
        ),
        "load_1min": [load_before, round(os.getloadavg()[0], 2)],
        "took_s": round(time.monotonic() - began, 1),
    }
    if reused:
        by_reused = {r["points"]: r["peak_rss_mb"] for r in reused}
        report["reuse_sizes"] = reused
        report["reuse_growth_mb"] = round(by_reused[max(by_reused)] - by[min(by)], 1)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"peak({max(by):,}) - peak({min(by):,}) = {report['growth_mb']} MB (goal <= 64)")
    if reused:
        print(
            f"reusing: peak({max(by_reused):,} reused) - peak({min(by):,}) = "
            f"{report['reuse_growth_mb']} MB (goal <= 64)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
