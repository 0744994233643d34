"""Time the parent's planning and the workers' point decoding at the scale the design promises.

    .venv/bin/python -m bench.partition_and_decode            # a table
    .venv/bin/python -m bench.partition_and_decode --json     # the same numbers as JSON

Cases:
- shard_bounds for all 10,000 shard ids (what workers do to check the bounds they were sent);
- ParameterSpace.point(i) for 10^6 random indices of a 4-axis space of 1.25 * 10^12 points;
- iter_points over 10^6 consecutive points of that space (what a worker does for its shard);
- iter_points over 10^5 consecutive points from the middle of sampled blocks of 10^7 points
  (random and LHS, three axes: uniform, loguniform, truncated normal), where every point's
  coordinates are computed from its block index (docs/spaces.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.model.sharding import ShardSpec, shard_bounds, shard_count
from chalicelib.model.space import ParameterSpace

TOTAL = 10**12
SHARDS = 10_000

# 10_000 * 50_000 * 500 * 5 = 1.25 * 10^12 points: linspace, range (negative step), linspace,
# values; decoding exercises every axis kind.
SPACE_REQUEST: dict[str, dict[str, Any]] = {
    "spot": {"linspace": {"start": 50.0, "stop": 150.0, "num": 10_000}},
    "strike": {"range": {"start": 150_000, "stop": 100_000, "step": -1}},
    "volatility": {"linspace": {"start": 0.05, "stop": 1.0, "num": 500}},
    "maturity": {"values": [0.25, 0.5, 1.0, 2.0, 5.0]},
}


SAMPLE_AXES: dict[str, Any] = {
    "spot": {"uniform": {"low": 80, "high": 120}},
    "volatility": {"loguniform": {"low": 0.05, "high": 0.8}},
    "rate": {"normal": {"mean": 0.02, "sd": 0.01}},
}
SAMPLE_POINTS = 10**7


def sampled_space(design: str) -> ParameterSpace:
    sample = {"design": design, "points": SAMPLE_POINTS, "axes": SAMPLE_AXES}
    return ParameterSpace.from_request({}, sample, 1, 7, "option_pricing")


@dataclass(frozen=True)
class Result:
    case: str
    operations: int
    repeats: int
    best_s: float
    median_s: float

    @property
    def best_ns_per_op(self) -> float:
        return self.best_s / self.operations * 1e9

    @property
    def ops_per_s(self) -> float:
        return self.operations / self.best_s

    def to_dict(self) -> dict[str, float | int | str]:
        row: dict[str, float | int | str] = dict(asdict(self))
        row["best_ns_per_op"] = round(self.best_ns_per_op, 1)
        row["ops_per_s"] = round(self.ops_per_s)
        return row


def timed(case: str, operations: int, repeats: int, run: Callable[[], object]) -> Result:
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return Result(case, operations, repeats, min(samples), statistics.median(samples))


def bench_bounds(repeats: int) -> Result:
    spec = ShardSpec("count", SHARDS)
    count = shard_count(TOTAL, spec)

    def run() -> None:
        end = 0
        for k in range(count):
            start, end_k = shard_bounds(TOTAL, spec, k)
            assert start == end
            end = end_k
        assert end == TOTAL

    return timed(f"shard_bounds x {SHARDS:,} ids", count, repeats, run)


def bench_decode(space: ParameterSpace, points: int, repeats: int, seed: int) -> Result:
    rnd = random.Random(seed)
    indices = [rnd.randrange(space.size) for _ in range(points)]
    point = space.point

    def run() -> None:
        for i in indices:
            point(i)

    return timed(f"point(i) x {points:,} random i", points, repeats, run)


def bench_iterate(space: ParameterSpace, points: int, repeats: int, seed: int) -> Result:
    start = random.Random(seed).randrange(space.size - points)

    def run() -> None:
        n = 0
        for _ in space.iter_points(start, start + points):
            n += 1
        assert n == points

    return timed(f"iter_points x {points:,} consecutive", points, repeats, run)


def bench_sampled(design: str, points: int, repeats: int) -> Result:
    space = sampled_space(design)
    start = SAMPLE_POINTS // 2

    def run() -> None:
        n = 0
        for _ in space.iter_points(start, start + points):
            n += 1
        assert n == points

    return timed(f"{design} block, iter_points x {points:,}", points, repeats, run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (default 5)")
    parser.add_argument("--points", type=int, default=10**6, help="points decoded per run")
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args(argv)

    space = ParameterSpace.from_request(SPACE_REQUEST)
    assert space.size >= 10**12
    results = [
        bench_bounds(args.repeats),
        bench_decode(space, args.points, args.repeats, args.seed),
        bench_iterate(space, args.points, args.repeats, args.seed),
        bench_sampled("random", args.points // 10, args.repeats),
        bench_sampled("lhs", args.points // 10, args.repeats),
    ]

    if args.json:
        report = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "space_points": space.size,
            "space_axes": len(space.axes),
            "results": [r.to_dict() for r in results],
        }
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

    print(f"python {platform.python_version()} on {platform.machine()}; ", end="")
    print(f"space of {space.size:.3e} points over {len(space.axes)} axes")
    header = f"{'case':<40} {'ops':>10} {'best s':>9} {'median s':>9} {'ns/op':>9} {'ops/s':>12}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.case:<40} {r.operations:>10,} {r.best_s:>9.4f} {r.median_s:>9.4f} "
            f"{r.best_ns_per_op:>9.0f} {r.ops_per_s:>12,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
