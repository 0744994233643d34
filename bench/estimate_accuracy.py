"""``sweep estimate``'s worker seconds against the same runs' measured worker seconds.

    .venv/bin/python -m bench.estimate_accuracy          # a table
    .venv/bin/python -m bench.estimate_accuracy --json

For both built-in simulations and three request shapes each (cheap points in many shards, dear
points in few, a mix), ``sweeps.estimate.estimate`` predicts the worker seconds per shard; then
the run is made with the local stage's worker code (``run_task`` per shard on a LocalStore, one
shard at a time, so shards do not compete for the cores as the local stage's pool makes them
do) and the mean ``duration_ms`` of its outcome rows is the measurement; the run's CPU time per
shard is reported beside it (on a loaded machine, wall time also measures the neighbours, and
Lambda bills the wall time of a function that has its vCPU to itself). Reported: the estimate,
both measurements and their ratios; the goal is within +-30 %. Worker memory is the local
stage's (1,769 MB: scale 1).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.reuse import Runner
from chalicelib.logs import logger
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore
from sweeps.estimate import estimate

CASES: dict[str, dict[str, Any]] = {
    "option_pricing, 2,000 cheap points (paths 100), 20 shards": {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"range": {"start": 50, "stop": 150, "step": 1}},
            "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 20}},
            "paths": {"values": [100]},
        },
        "shards": {"count": 20},
    },
    "option_pricing, 60 dear points (paths 200,000), 3 shards": {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"range": {"start": 80, "stop": 140, "step": 2}},
            "option": {"values": ["call", "put"]},
            "paths": {"values": [200_000]},
        },
        "shards": {"count": 3},
    },
    "option_pricing, 400 mixed points (paths 100..100,000), 8 shards": {
        "simulation": "option_pricing",
        "parameters": {
            "paths": {"values": [100, 1000, 10_000, 100_000]},
            "strike": {"range": {"start": 50, "stop": 150, "step": 1}},
        },
        "shards": {"count": 8},
    },
    "monte_carlo_pi, 2,000 cheap points (samples 1..2,000), 20 shards": {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 1, "stop": 2001, "step": 1}}},
        "shards": {"count": 20},
    },
    "monte_carlo_pi, 40 dear points (samples 1e6..), 4 shards": {
        "simulation": "monte_carlo_pi",
        "parameters": {
            "samples": {"range": {"start": 1_000_000, "stop": 1_400_000, "step": 10_000}}
        },
        "shards": {"count": 4},
    },
    "monte_carlo_pi, 600 mixed points (samples 10..1e5), 6 shards": {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 10, "stop": 100_010, "step": 166}}},
        "shards": {"count": 6},
    },
}


def measured_seconds(runner: Runner, body: dict[str, Any]) -> tuple[float, float]:
    """(mean outcome duration_ms per shard in s, CPU s per shard of the same run)."""
    run, _, cpu = runner.run(body)
    rows = [
        pq.read_table(io.BytesIO(runner.store.get(o.key))).to_pylist()[0]
        for o in runner.store.list(layout.outcomes_prefix(run.run_id))
    ]
    wall = statistics.mean(float(r["duration_ms"]) for r in rows) / 1000
    return wall, cpu / len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        runner = Runner(LocalStore(Path(tmp)))
        for name, body in CASES.items():
            predicted = estimate(body | {"seed": 5}).worker_seconds_per_shard
            wall, cpu = measured_seconds(runner, body | {"seed": 5})
            results.append(
                {
                    "case": name,
                    "estimated_s_per_shard": round(predicted, 4),
                    "measured_s_per_shard": round(wall, 4),
                    "measured_cpu_s_per_shard": round(cpu, 4),
                    "ratio": round(predicted / wall, 3),
                    "ratio_cpu": round(predicted / cpu, 3),
                }
            )
    within = all(0.7 <= r["ratio"] <= 1.3 for r in results)
    within_cpu = all(0.7 <= r["ratio_cpu"] <= 1.3 for r in results)
    report = {"results": results, "within_30_percent": within, "cpu_within_30_percent": within_cpu}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for r in results:
        print(
            f"{r['case']:<66} estimated {r['estimated_s_per_shard']:8.3f} s  "
            f"measured {r['measured_s_per_shard']:8.3f} s wall (ratio {r['ratio']:.2f}), "
            f"{r['measured_cpu_s_per_shard']:8.3f} s CPU (ratio {r['ratio_cpu']:.2f})"
        )
    print(
        f"all within +-30 %: wall {report['within_30_percent']}, "
        f"CPU {report['cpu_within_30_percent']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
