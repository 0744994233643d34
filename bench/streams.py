"""What building a point's random generator costs: stream v1, v2's ``point_rng``, v2's fast path.

    .venv/bin/python -m bench.streams            # a table
    .venv/bin/python -m bench.streams --json     # the same numbers as JSON

Each case builds the generators of N option_pricing points (paths = 100) from a decoded point
to a generator ready to draw, on two sets of points:

- grid: a 9 x 9 x 2 grid of the contract's axes, repeated (few values, each seen again);
- sampled: N points of an ``lhs`` design over spot, volatility and rate (``examples/lhs.json``'s
  axes), every value new: nothing a cache could hold.

- v1: the old stream, BLAKE2b of "simulation, seed, index" + ``PCG64(int)`` + ``Generator``
  (what a hand-written pool would use; kept here only as the baseline);
- v2 point_rng: ``declarations.point_rng``, a fresh ``Generator(Philox(key))`` per point;
- v2 per point: ``PointStreams.rng`` on the effective parameters, one re-keyed Philox, its key
  text from cached ``name=value`` fragments ("+ effective" includes making the effective
  parameters); on the sampled points a new ``PointStreams`` each run, so every value is new;
- v2 worker path: what the worker does (``execution.columns.column_keys``): the keys of a row
  group (``ROW_GROUP_POINTS``) at once from its columns, computed from the point indices, then
  the one generator re-keyed per point. On the grid it runs over the same 9 x 9 x 2 grid times
  ``ceil(N / 162)`` spot values (a space of N points, each grid value seen again as above).

Also one whole option_pricing point (paths = 100) through the evaluator, for scale. Each figure
is the best of ``--repeats`` interleaved runs in process CPU time (user + system): on a shared
machine wall time mostly measures the neighbours. The goal is <= 3 us for the worker path on
both sets of points.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from chalicelib.execution.columns import column_keys
from chalicelib.model.space import ParameterSpace
from chalicelib.simulations.batches import PointBatches
from chalicelib.simulations.declarations import PointStreams, point_rng
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage.tables import ROW_GROUP_POINTS

SPACE = ParameterSpace.from_request(
    {
        "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 9}},
        "strike": {"range": {"start": 80, "stop": 121, "step": 5}},
        "option": {"values": ["call", "put"]},
        "paths": {"values": [100]},
    }
)
SAMPLE_AXES = {
    "spot": {"uniform": {"low": 80, "high": 120}},
    "volatility": {"loguniform": {"low": 0.05, "high": 0.8}},
    "rate": {"normal": {"mean": 0.02, "sd": 0.01}},
}


def grid_space(n: int) -> ParameterSpace:
    """``SPACE`` times enough spot values for ``n`` points: the worker decodes a space."""
    spots = {"spot": {"linspace": {"start": 90, "stop": 110, "num": -(-n // SPACE.size)}}}
    return ParameterSpace.from_request(spots | SPACE.to_dict())


def sampled_space(n: int) -> ParameterSpace:
    return ParameterSpace.from_request(
        {"paths": {"values": [100]}},
        sample={"design": "lhs", "points": n, "axes": SAMPLE_AXES},
        seed=7,
        simulation="option_pricing",
    )


def v1_rng(simulation_name: str, seed: int, index: int) -> np.random.Generator:
    digest = hashlib.blake2b(
        f"{simulation_name}\x1f{seed}\x1f{index}".encode(), digest_size=16
    ).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "big")))


def cases(n: int) -> dict[str, Callable[[], None]]:
    sim = REGISTRY["option_pricing"]
    base, floats = sim.defaults, sim.float_names
    points = [p for _, p, _ in SPACE.iter_points(0, SPACE.size)]
    points = (points * (n // len(points) + 1))[:n]
    effective = [sim.effective_params(p) for p in points]
    sampled = [p for _, p, _ in sampled_space(n).iter_points(0, n, base, floats)]
    streams = PointStreams(sim, 7)
    batches = PointBatches(sim, 7)
    evaluate = sim.evaluator(7)

    def v1() -> None:
        for i in range(n):
            v1_rng("option_pricing", 7, i)

    def v2_point_rng() -> None:
        for p in effective:
            point_rng("option_pricing", "1", 7, p)

    def v2_fast() -> None:
        rng = streams.rng
        for p in effective:
            rng(p)

    def v2_fast_effective() -> None:
        rng, eff = streams.rng, sim.effective_params
        for p in points:
            rng(eff(p))

    def v2_fast_sampled() -> None:
        rng = PointStreams(sim, 7).rng  # new: no value seen before
        for p in sampled:
            rng(p)

    def worker_path(space: ParameterSpace) -> Callable[[], None]:
        def run() -> None:
            rng_at = batches.rng_at
            for lo in range(0, n, ROW_GROUP_POINTS):
                for key in column_keys(batches, space, lo, min(n, lo + ROW_GROUP_POINTS)):
                    rng_at(key)

        return run

    def whole_point() -> None:
        for p in points:
            evaluate(p)

    return {
        "v1 blake2b+PCG64+Generator": v1,
        "v2 point_rng": v2_point_rng,
        "v2 per point, grid": v2_fast,
        "v2 per point + effective params, grid": v2_fast_effective,
        "v2 per point, sampled (every value new)": v2_fast_sampled,
        "v2 worker path (batched keys), grid": worker_path(grid_space(n)),
        "v2 worker path (batched keys), sampled": worker_path(sampled_space(n)),
        "option_pricing point, paths=100 (per point)": whole_point,
    }


def cpu() -> float:
    return time.process_time()


def measure(n: int, repeats: int) -> list[dict[str, Any]]:
    best: dict[str, float] = {}
    runs = cases(n)
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = cpu()
            fn()
            best[name] = min(best.get(name, float("inf")), cpu() - t0)
    return [{"case": name, "us_per_point": round(t / n * 1e6, 2)} for name, t in best.items()]


def check_identical(n: int = 200) -> bool:
    """Both fast paths draw what point_rng draws, point by point, on both sets of points (the
    tests hold it too)."""
    sim = REGISTRY["option_pricing"]
    streams, batches = PointStreams(sim, 7), PointBatches(sim, 7)
    for space in (grid_space(n), sampled_space(n)):
        points = [p for _, p, _ in space.iter_points(0, n, sim.defaults, sim.float_names)]
        keys = column_keys(batches, space, 0, n)
        for params, key in zip(points, keys, strict=True):
            a = point_rng("option_pricing", "1", 7, params).standard_normal(5)
            if not np.array_equal(a, streams.rng(params).standard_normal(5)):
                return False
            if not np.array_equal(a, batches.rng_at(key).standard_normal(5)):
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    load_before = round(os.getloadavg()[0], 2)
    report = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "points": args.points,
        "identical": check_identical(),
        "results": measure(args.points, args.repeats),
        "load_1min": [load_before, round(os.getloadavg()[0], 2)],
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print(f"{args.points:,} points, best of {args.repeats}, CPU us per point")
    for r in report["results"]:
        print(f"  {r['case']:<48} {r['us_per_point']:>8.2f}")
    print(f"fast paths bit-identical to point_rng: {report['identical']}")
    before, after = report["load_1min"]
    print(f"load average (1 min): {before} at start, {after} at end")
    print(f"numpy {report['numpy']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
