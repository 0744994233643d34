"""``sweep estimate``'s worker seconds against the same runs' measured worker seconds.

    .venv/bin/python -m bench.estimate_accuracy          # a table
    .venv/bin/python -m bench.estimate_accuracy --json

For both built-in simulations and three request shapes each (cheap points in many shards, dear
points in few, a mix of both in between), ``sweeps.estimate.estimate`` predicts the worker
seconds per shard; then the same request runs on the real local stage (``chalice local --stage
local``, started by ``scripts.local_stack`` as ``make demo`` does, submitted over HTTP with
``sweeps.Client``) and the measurement is the run's own cost: the worker's billed GB-s in
``GET /sweeps/{id}``'s ``cost.by_function`` (its usage records: each invocation's duration
rounded up to 1 ms, times 1,769 MB), back to seconds per invocation.

The stage runs one worker process (``SWEEP_LOCAL_PROCESSES=1``): on Lambda each invocation has
its vCPU to itself, and a pool of two on two shared cores would measure its shards competing.
The neighbours still compete on a shared machine, so the CPU time that worker process spent
in the run (``/proc``, its utime + stime) is reported beside the wall-clock measurement: wall
(what Lambda bills) over CPU is how much the machine's load stretched it. Worker memory is the
local stage's (1,769 MB: one vCPU, scale 1). The goal is +-30 %.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chalicelib.logs import logger
from chalicelib.pricing import function_sizes
from scripts.local_stack import local_stage
from sweeps import Client
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


def cpu_seconds(pid: int) -> float:
    """utime + stime of the living descendants of ``pid`` (the stage's worker processes; not
    the server itself, whose threads answer the API and dispatch)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            if p != pid:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # a process that ended meanwhile
    return total


def measured_seconds(client: Client, pid: int, body: dict[str, Any]) -> tuple[float, float]:
    """(the run's billed worker seconds per worker invocation, from its cost; the stage's CPU
    seconds per shard over the run)."""
    cpu = cpu_seconds(pid)
    run = client.submit(body, wait=True, timeout=900, poll=0.2)
    cpu = cpu_seconds(pid) - cpu
    status = run.status()
    assert status["complete"] and not status["failed_shards"], status
    worker = status["cost"]["by_function"]["worker"]
    seconds = worker["lambda_gb_s"] * 1024 / function_sizes("local")["worker"].memory_mb
    # The run's compaction runs in the same pool process once status finds it complete: wait
    # for it, so its CPU is not counted in the next case's (nor its queueing in its shards).
    deadline = time.monotonic() + 120
    while "compactor" not in run.status()["cost"]["by_function"] and time.monotonic() < deadline:
        time.sleep(0.2)
    return seconds / worker["invocations"], cpu / status["shard_count"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    results: list[dict[str, Any]] = []
    settings = {"SWEEP_LOCAL_PROCESSES": "1", "SWEEP_LOCAL_RECONCILER": "false"}
    with (
        tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp,
        local_stage(Path(tmp) / "data", Path(tmp) / "server.log", settings=settings) as stage,
    ):
        base, server = stage
        client = Client(base)
        time.sleep(1)  # the warm pool's first import, off the first run's clock
        for name, body in CASES.items():
            predicted = estimate(body | {"seed": 5}).worker_seconds_per_shard
            wall, cpu = measured_seconds(client, server.pid, body | {"seed": 5})
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
    report = {
        "results": results,
        "within_30_percent": within,
        "cpu_within_30_percent": within_cpu,
        "load_average": [round(x, 2) for x in os.getloadavg()],  # the last 1, 5 and 15 minutes
    }
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
        f"CPU {report['cpu_within_30_percent']}; load average {report['load_average']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
