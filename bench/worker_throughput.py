"""What the worker costs on top of the simulation itself.

    .venv/bin/python -m bench.worker_throughput                 # a table
    .venv/bin/python -m bench.worker_throughput --json          # the same numbers as JSON
    .venv/bin/python -m bench.worker_throughput --target 1.0    # shorter shards

For each case, one shard of N points (N calibrated so the bare loop takes about ``--target``
seconds) is run two ways:

- worker: ``run_task`` on a fresh ``LocalStore`` in a temp dir, with a Lambda-like context
  (so the deadline is read from it at the worker's looks, as on Lambda): task re-validation,
  point decoding, evaluation, the results Parquet file, the success lock and
  the outcome row;
- bare: what a user writes instead of us: the case's points decoded by hand from its axes
  (``numpy.linspace``, ``range``) into one parameter dict with the declared defaults written
  out, each passed to the simulation function itself with its stream by the public fast path
  (``PointStreams``, bit-identical to ``point_rng``), the metrics kept in a numpy array. None of
  our per-point code runs: no ``iter_points``, no evaluator, no defaults merge.

The worker's metrics are read back from its results file and compared with the bare loop's,
point by point, before any time is reported. Reported: points/s both ways, the ratio
worker/bare, the absolute overhead per shard (worker - bare, also per point), and parts of it
timed on their own: validating the task and writing lock + results + outcome to the store
(fixed per shard), encoding the results Parquet (grows with the points). The rest of the
overhead is per point: decoding the point, keying its stream through the worker's generic
path, and collecting its metrics.

Each figure is the best of ``--repeats`` interleaved runs, in process CPU time (user + system):
on a shared machine wall time mostly measures the neighbours. Wall-clock ratios are reported
too (``--json``), and agree when the machine is quiet.
"""

from __future__ import annotations

import argparse
import io
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

import numpy as np
import pyarrow.parquet as pq

from chalicelib.execution.columns import format_value
from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing
from chalicelib.execution.worker import run_task
from chalicelib.logs import logger
from chalicelib.model import events
from chalicelib.model.request import SweepRequest
from chalicelib.model.validation import validate_request
from chalicelib.simulations.builtin import monte_carlo_pi, option_pricing
from chalicelib.simulations.declarations import PointStreams
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout
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
    bare: Callable[[int], np.ndarray]  # the same n points by a hand-written loop: metrics rows

    def body(self, n: int) -> dict[str, Any]:
        return {"simulation": self.simulation, "parameters": self.axes(n), "shards": {"count": 1}}


def bare_option_pricing(n: int) -> np.ndarray:
    """The option_pricing case by hand: volatility over ``linspace(0.1, 0.9, n)``, a call,
    1,000 paths, every other parameter at its declared default, seed 0."""
    streams = PointStreams(REGISTRY["option_pricing"], 0)
    params: dict[str, Any] = {
        "spot": 100.0,
        "strike": 100.0,
        "rate": 0.01,
        "maturity": 1.0,
        "option": "call",
        "paths": 1000,
    }
    out = np.empty((n, 4))
    for row, volatility in enumerate(np.linspace(0.1, 0.9, n).tolist()):
        params["volatility"] = volatility
        m = option_pricing(params, streams.rng(params))
        out[row] = (m["price"], m["stderr"], m["analytic"], m["abs_error"])
    return out


def bare_monte_carlo_pi(n: int) -> np.ndarray:
    """The monte_carlo_pi case by hand: samples 10,000 ... 10,000 + n - 1, seed 0."""
    streams = PointStreams(REGISTRY["monte_carlo_pi"], 0)
    params: dict[str, Any] = {}
    out = np.empty((n, 2))
    for row, samples in enumerate(range(10_000, 10_000 + n)):
        params["samples"] = samples
        m = monte_carlo_pi(params, streams.rng(params))
        out[row] = (m["estimate"], m["abs_error"])
    return out


CASES = (
    Case(
        "option_pricing paths=1000",
        "option_pricing",
        lambda n: {
            "volatility": {"linspace": {"start": 0.1, "stop": 0.9, "num": n}},
            "option": {"values": ["call"]},
            "paths": {"values": [1000]},
        },
        bare_option_pricing,
    ),
    Case(
        "monte_carlo_pi samples~10000",
        "monte_carlo_pi",
        lambda n: {"samples": {"range": {"start": 10_000, "stop": 10_000 + n, "step": 1}}},
        bare_monte_carlo_pi,
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


def time_bare(case: Case, n: int) -> tuple[Timed, np.ndarray]:
    watch = Stopwatch()
    metrics = case.bare(n)
    return watch.read(), metrics


def time_worker(payload: dict[str, Any], scratch: Path) -> tuple[Timed, bytes]:
    """The worker's time for the shard, and the results file it wrote."""
    with tempfile.TemporaryDirectory(dir=scratch) as root:
        store = LocalStore(Path(root))
        watch = Stopwatch()
        summary = run_task(payload, DeadlineContext(), store, 10_000)
        elapsed = watch.read()
        if summary.get("status") != "succeeded":
            raise RuntimeError(f"the worker did not succeed: {summary}")
        return elapsed, store.get(layout.results(RUN_ID, 0))


def read_metrics(data: bytes, simulation: str) -> np.ndarray:
    """A results file's metrics as rows in point_index order, columns in declared order."""
    table = pq.read_table(io.BytesIO(data)).sort_by("point_index")
    names = REGISTRY[simulation].metrics
    return np.array([[dict(pairs)[n] for n in names] for pairs in table["metrics"].to_pylist()])


def calibrate(case: Case, target_s: float) -> int:
    """Points for which the bare loop takes about ``target_s`` of CPU."""
    time_bare(case, CALIBRATION_POINTS)  # warm-up
    per_point = min(time_bare(case, CALIBRATION_POINTS)[0].cpu_s for _ in range(3))
    return max(MIN_POINTS, min(MAX_POINTS, round(target_s * CALIBRATION_POINTS / per_point)))


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
    _, results = time_worker(payload, scratch)  # warm-up: imports, caches, first Parquet write
    got, (_, expected) = read_metrics(results, case.simulation), time_bare(case, n)
    if not np.array_equal(got, expected, equal_nan=True):
        raise AssertionError(f"{case.name}: the worker's metrics differ from the bare loop's")
    workers: list[Timed] = []
    bares: list[Timed] = []
    for _ in range(repeats):  # interleaved, so drift in machine speed hits both alike
        bares.append(time_bare(case, n)[0])
        workers.append(time_worker(payload, scratch)[0])
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
