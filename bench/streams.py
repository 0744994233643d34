"""What building a point's random generator costs: stream v1, v2's ``point_rng``, v2's fast path.

    .venv/bin/python -m bench.streams            # a table
    .venv/bin/python -m bench.streams --json     # the same numbers as JSON

Each case builds the generator of N distinct option_pricing points (a 9 x 17 x 2 grid of the
contract's axes, paths = 100, repeated) from a decoded point to a generator ready to draw:

- v1: the old stream, BLAKE2b of "simulation, seed, index" + ``PCG64(int)`` + ``Generator``
  (what a hand-written pool would use; kept here only as the baseline);
- v2 point_rng: ``declarations.point_rng``, a fresh ``Generator(Philox(key))`` per point;
- v2 fast path: ``PointStreams.rng`` on the effective parameters, the one re-keyed Philox the
  worker uses; "+ effective" includes making the effective parameters (defaults overlaid).

Also one whole option_pricing point (paths = 100) through the worker's evaluator, for scale.
Each figure is the best of ``--repeats`` interleaved runs in process CPU time (user + system):
on a shared machine wall time mostly measures the neighbours.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from chalicelib.model.space import ParameterSpace
from chalicelib.simulations.declarations import PointStreams, Value, point_rng
from chalicelib.simulations.registry import REGISTRY

SPACE = ParameterSpace.from_request(
    {
        "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 9}},
        "strike": {"range": {"start": 80, "stop": 121, "step": 5}},
        "option": {"values": ["call", "put"]},
        "paths": {"values": [100]},
    }
)


def v1_rng(simulation_name: str, seed: int, index: int) -> np.random.Generator:
    digest = hashlib.blake2b(
        f"{simulation_name}\x1f{seed}\x1f{index}".encode(), digest_size=16
    ).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "big")))


def cases(n: int) -> dict[str, Callable[[], None]]:
    sim = REGISTRY["option_pricing"]
    points = [p for _, p, _ in SPACE.iter_points(0, SPACE.size)]
    points = (points * (n // len(points) + 1))[:n]
    effective = [sim.effective_params(p) for p in points]
    streams = PointStreams(sim, 7)
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

    def whole_point() -> None:
        for p in points:
            evaluate(p)

    return {
        "v1 blake2b+PCG64+Generator": v1,
        "v2 point_rng": v2_point_rng,
        "v2 fast path": v2_fast,
        "v2 fast path + effective params": v2_fast_effective,
        "option_pricing point, paths=100 (fast path)": whole_point,
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
    """The fast path draws what point_rng draws, point by point (the tests hold it too)."""
    sim = REGISTRY["option_pricing"]
    streams = PointStreams(sim, 7)
    for _, point, _ in SPACE.iter_points(0, min(n, SPACE.size)):
        params: dict[str, Value] = sim.effective_params(point)
        a = point_rng("option_pricing", "1", 7, params).standard_normal(5)
        if not np.array_equal(a, streams.rng(params).standard_normal(5)):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "points": args.points,
        "identical": check_identical(),
        "results": measure(args.points, args.repeats),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print(f"{args.points:,} points, best of {args.repeats}, CPU us per point")
    for r in report["results"]:
        print(f"  {r['case']:<48} {r['us_per_point']:>8.2f}")
    print(f"fast path bit-identical to point_rng: {report['identical']}")
    print(f"numpy {report['numpy']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
