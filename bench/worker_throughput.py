"""What the worker costs on top of the simulation itself.

    .venv/bin/python -m bench.worker_throughput                 # a table
    .venv/bin/python -m bench.worker_throughput --json          # the same numbers as JSON
    .venv/bin/python -m bench.worker_throughput --target 1.0    # shorter shards

For each case, one shard of N points (N calibrated so the bare loop takes about ``--target``
seconds) is run two ways:

- worker: ``run_task`` on a fresh ``LocalStore`` in a temp dir, with a Lambda-like context
  (so the deadline check runs before every point, as on Lambda): task re-validation, point
  decoding, evaluation, the results Parquet file, the success lock and the outcome row;
- bare: a loop calling ``Simulation.evaluator(seed)`` (the stream fast path) on the same
  points, decoded beforehand.

Reported: points/s both ways, the ratio worker/bare, the absolute overhead per shard
(worker - bare, also per point), and parts of it timed on their own: validating the task and
writing lock + results + outcome to the store (fixed per shard), encoding the results Parquet
(grows with the points). The rest of the overhead is per point: decoding the point and
building its result row (parameters formatted as strings, metrics as a list), a few us each.

Each figure is the best of ``--repeats`` interleaved runs, in process CPU time (user + system):
on a shared machine wall time mostly measures the neighbours. Wall-clock ratios are reported
too (``--json``), and agree when the machine is quiet.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing
from chalicelib.execution.worker import format_value, run_task
from chalicelib.logs import logger
from chalicelib.model import events
from chalicelib.model.request import SweepRequest
from chalicelib.model.validation import validate_request
from chalicelib.simulations.declarations import Value
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage.stores import LocalStore
from chalicelib.storage.tables import ResultColumns, results_parquet
from scripts.local_runs import shard_payload

RUN_ID = "20261126T000000000Z-000000bench0"
DT = "2026-11-26"
CALIBRATION_POINTS = 100
MIN_POINTS, MAX_POINTS = 50, 200_000

Axes = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Case:
    name: str
    simulation: str
    axes: Callable[[int], Axes]  # a space of exactly n points

    def body(self, n: int) -> dict[str, Any]:
        return {"simulation": self.simulation, "parameters": self.axes(n), "shards": {"count": 1}}


CASES = (
    Case(
        "option_pricing paths=1000",
        "option_pricing",
        lambda n: {
            "volatility": {"linspace": {"start": 0.1, "stop": 0.9, "num": n}},
            "option": {"values": ["call"]},
            "paths": {"values": [1000]},
        },
    ),
    Case(
        "monte_carlo_pi samples~10000",
        "monte_carlo_pi",
        lambda n: {"samples": {"range": {"start": 10_000, "stop": 10_000 + n, "step": 1}}},
    ),
)


class DeadlineContext:
    """Like Lambda's context: the remaining time is computed from a deadline on each call."""

    aws_request_id = "bench"

    def __init__(self, budget_s: float = 900.0) -> None:
        self.deadline = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


@dataclass(frozen=True)
class Timed:
    wall_s: float
    cpu_s: float


class Stopwatch:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def read(self) -> Timed:
        return Timed(time.perf_counter() - self.wall, time.process_time() - self.cpu)


@dataclass(frozen=True)
class Result:
    case: str
    points: int
    repeats: int
    worker_s: float  # best CPU time of the repeats
    bare_s: float
    worker_median_s: float
    bare_median_s: float
    worker_wall_s: float  # best wall time of the repeats
    bare_wall_s: float
    validate_ms: float
    parquet_ms: float
    store_ms: float
    results_bytes: int

    @property
    def worker_points_per_s(self) -> float:
        return self.points / self.worker_s

    @property
    def bare_points_per_s(self) -> float:
        return self.points / self.bare_s

    @property
    def ratio(self) -> float:
        return self.worker_s / self.bare_s

    @property
    def overhead_ms(self) -> float:
        return (self.worker_s - self.bare_s) * 1000

    @property
    def overhead_us_per_point(self) -> float:
        return self.overhead_ms * 1000 / self.points

    def to_dict(self) -> dict[str, float | int | str]:
        row: dict[str, float | int | str] = dict(asdict(self))
        row["worker_points_per_s"] = round(self.worker_points_per_s, 1)
        row["bare_points_per_s"] = round(self.bare_points_per_s, 1)
        row["ratio"] = round(self.ratio, 4)
        row["overhead_ms"] = round(self.overhead_ms, 1)
        row["overhead_us_per_point"] = round(self.overhead_us_per_point, 2)
        row["wall_ratio"] = round(self.worker_wall_s / self.bare_wall_s, 4)
        return row


def payload_for(request: SweepRequest) -> dict[str, Any]:
    return shard_payload(request, RUN_ID, DT, 0)


def points_of(request: SweepRequest) -> list[tuple[int, dict[str, Value]]]:
    return [(i, p) for i, p, _ in request.space.iter_points(0, request.total_points)]


def time_bare(request: SweepRequest, points: list[tuple[int, dict[str, Value]]]) -> Timed:
    sim = REGISTRY[request.simulation]
    evaluate = sim.evaluator(request.seed)  # the worker's own stream fast path
    watch = Stopwatch()
    for _, point in points:
        evaluate(point)
    return watch.read()


def time_worker(payload: dict[str, Any], scratch: Path) -> Timed:
    with tempfile.TemporaryDirectory(dir=scratch) as root:
        store = LocalStore(Path(root))
        watch = Stopwatch()
        summary = run_task(payload, DeadlineContext(), store, 10_000)
        elapsed = watch.read()
    if summary.get("status") != "succeeded":
        raise RuntimeError(f"the worker did not succeed: {summary}")
    return elapsed


def calibrate(case: Case, target_s: float) -> int:
    """Points for which the bare loop takes about ``target_s`` of CPU."""
    request = validate_request(case.body(CALIBRATION_POINTS), limits=None)
    points = points_of(request)
    time_bare(request, points)  # warm-up
    per_point = min(time_bare(request, points).cpu_s for _ in range(3)) / CALIBRATION_POINTS
    return max(MIN_POINTS, min(MAX_POINTS, round(target_s / per_point)))


def fixed_costs(payload: dict[str, Any], scratch: Path) -> tuple[float, float, float, int]:
    """Milliseconds to validate the task, encode the results and write lock + results +
    outcome, each timed on its own (best of 3); and the results file's size."""
    shard = events.parse_task(payload)
    sim = REGISTRY[shard.request.simulation]
    rows = ResultColumns(shard.request.space.names, sim.metrics)
    for i, p, r in shard.request.space.iter_points(shard.start, shard.end):
        rows.add(i, map(format_value, p.values()), sim.evaluate(p, 0, replicate=r).values())
    validate = parquet = store_ms = float("inf")
    size = 0
    for _ in range(3):
        t0 = time.perf_counter()
        events.parse_task(payload)
        validate = min(validate, time.perf_counter() - t0)
        t0 = time.perf_counter()
        data = results_parquet(shard.shard_id, rows)
        parquet = min(parquet, time.perf_counter() - t0)
        size = len(data)
        ref = ShardRef(RUN_ID, 0, DT, shard.start, shard.end, shard.request.simulation)
        with tempfile.TemporaryDirectory(dir=scratch) as root:
            writer = OutcomeWriter(LocalStore(Path(root)))
            t0 = time.perf_counter()
            writer.record_success(ref, data, len(rows), Timing.since(datetime.now(UTC)), "bench")
            store_ms = min(store_ms, time.perf_counter() - t0)
    return validate * 1000, parquet * 1000, store_ms * 1000, size


def measure(case: Case, target_s: float, repeats: int, scratch: Path) -> Result:
    n = calibrate(case, target_s)
    request = validate_request(case.body(n), limits=None)
    assert request.total_points == n
    payload = payload_for(request)
    points = points_of(request)
    time_worker(payload, scratch)  # warm-up: imports, caches, first Parquet write
    workers: list[Timed] = []
    bares: list[Timed] = []
    for _ in range(repeats):  # interleaved, so drift in machine speed hits both alike
        bares.append(time_bare(request, points))
        workers.append(time_worker(payload, scratch))
    validate_ms, parquet_ms, store_ms, size = fixed_costs(payload, scratch)
    return Result(
        case=case.name,
        points=n,
        repeats=repeats,
        worker_s=min(t.cpu_s for t in workers),
        bare_s=min(t.cpu_s for t in bares),
        worker_median_s=statistics.median(t.cpu_s for t in workers),
        bare_median_s=statistics.median(t.cpu_s for t in bares),
        worker_wall_s=min(t.wall_s for t in workers),
        bare_wall_s=min(t.wall_s for t in bares),
        validate_ms=validate_ms,
        parquet_ms=parquet_ms,
        store_ms=store_ms,
        results_bytes=size,
    )


def render(results: list[Result]) -> str:
    head = (
        f"{'case':<30} {'points':>7} {'bare pts/s':>11} {'worker pts/s':>13} {'ratio':>7} "
        f"{'overhead':>10} {'per pt':>8} {'validate':>9} {'parquet':>8} {'store':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.case:<30} {r.points:>7} {r.bare_points_per_s:>11,.0f} "
            f"{r.worker_points_per_s:>13,.0f} {r.ratio:>7.3f} {r.overhead_ms:>8.1f}ms "
            f"{r.overhead_us_per_point:>6.1f}us "
            f"{r.validate_ms:>7.2f}ms {r.parquet_ms:>6.2f}ms {r.store_ms:>5.2f}ms"
        )
    lines.append(
        "CPU time, best of the repeats; overhead = worker - bare per shard (and per point); "
        "validate/parquet/store: parts of it, timed alone"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", type=float, default=1.0, help="CPU seconds of bare work")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")  # one INFO line per shard would drown the table
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as scratch:
        results = [measure(c, args.target, args.repeats, Path(scratch)) for c in CASES]
    if args.json:
        env = {"python": sys.version.split()[0], "machine": platform.machine()}
        print(json.dumps({"env": env, "results": [r.to_dict() for r in results]}, indent=2))
    else:
        print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
