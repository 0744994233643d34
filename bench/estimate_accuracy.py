"""``sweep estimate``'s worker and compactor seconds against the same runs' billed seconds.

    .venv/bin/python -m bench.estimate_accuracy              # a table
    .venv/bin/python -m bench.estimate_accuracy --json
    .venv/bin/python -m bench.estimate_accuracy --runs 3     # runs (and estimates) per case

For both built-in simulations and three request shapes each (cheap points in many shards, dear
points in few, a mix of both in between), the same request is, ``--runs`` times over:

- estimated: ``sweep estimate FILE --json --root DATA`` predicts the worker seconds per shard
  and the compactor's compaction seconds, run as a user runs it: a fresh process each time, so
  no estimate inherits the state an earlier case left in the process (in one long-lived
  process, cheap points after dear ones timed 1.5x slower, and the worker's fixed cost too);
- run on the real local stage (``chalice local --stage local``, started by
  ``scripts.local_stack`` as ``make demo`` does, submitted over HTTP with ``sweeps.Client``),
  and measured by the run's own cost: ``GET /sweeps/{id}``'s ``cost.by_function`` (the run's
  usage records, through ``runs.cost``), the worker's and the compactor's billed GB-s (each
  invocation's duration rounded up to 1 ms, times its memory) back to seconds per invocation.

What Lambda bills is an invocation's wall-clock duration; a function with 1,769 MB or more has
a whole vCPU to itself, so for CPU-bound code that duration is its CPU time (plus S3's round
trips, which the estimate does not model). On this shared machine an invocation's wall time
also holds the time it waited for a core that a neighbour had, which Lambda does not charge.
So that the billed (wall) figure measures the run and not the neighbours:

- the stage's processes and this one run at a higher scheduling priority (nice -10, and so
  their sessions' autogroups, when allowed: root or CAP_SYS_NICE; the report says whether it
  was) and the stage runs one worker process (``SWEEP_LOCAL_PROCESSES=1``), as an invocation
  has its vCPU to itself;
- each case has a stage of its own, so its worker process has run only that request's shards,
  as a Lambda environment serving the run has (glibc's malloc thresholds are pinned in both,
  ``simulations.allocator``: before that, a process that ran dear points ran the next case's
  points up to 1.5x faster);
- each case's measured figure is the median over ``--runs`` runs;
- the worker processes' CPU seconds per shard (``/proc``, utime + stime, read as soon as the
  run is complete) is reported beside it, and the load average with every case.

The goal is +-30 %: every single estimate (not only their median) within 0.7-1.3x of the
median billed seconds of the case's runs (``ratios``): on this shared machine one run's
seconds move by up to 1.6x from the next (the 40 dear monte_carlo_pi points, estimate then
run, three times in one stage: 0.17 then 0.20 s a shard, 0.26 then 0.31, 0.33 then 0.31), and
the median is the steadier measure of what the request costs. Each estimate's ratio to the
run submitted right after it is reported too (``ratios_own_run``): comparing pairs was tried as
the goal's measure (2026-12-06) and missed more often (5 of 18 against 1), so a run's own
noise, not the machine's drift between estimate and run, is what the median removes. Nothing
is fitted to this bench: the estimate measures its own costs.

``make bench`` puts the data roots on a tmpfs (``bench.scratch``). On this VM's disk (ext4
without a journal, which skips every inode freed in the last minutes when it creates a file)
a run's new files cost what the minutes before had deleted, and this bench deletes each case's
data root, thousands of files: a cheap shard writes four files, the run's 1,000 shards paid up
to 0.3 ms a file where the estimate's ten deliveries did not, and the two cheap cases' estimates
came to 0.60x of their runs there (2026-12-07, 07:19-07:44 UTC), against 0.88-1.27x on the
tmpfs an hour later (every estimate within +-30 %).

Each run lasts seconds (1,000 cheap shards, 12 to 50 dear or mixed ones), not a tenth of one:
this machine's cores change speed by up to 2x in phases that last seconds (a fixed loop timed
every 70 ms on each core: 14 to 25 ms within 40 s; ``monte_carlo_pi``'s points in one process:
125 then 250 us a point), so a run of 0.1 s sat in one phase, and its seconds moved by 1.6x
from one run to the next. The estimate, which measures for about a second, still can: the
median of each case's estimates against the median of its runs (``ratio_of_medians``) is
reported beside the goal's measure. So that a miss can be told from the machine's phases, each
case reports ``machine_ms`` (a fixed loop's CPU time) before each estimate, before its run and
after it: two runs of this bench half an hour apart (2026-12-06) measured the same 20 dear
``monte_carlo_pi`` shards at 0.146 and at 0.248 s a shard (median billed), with no code between.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chalicelib.logs import logger
from chalicelib.pricing import function_sizes
from scripts.local_stack import local_stage
from sweeps import Client

PRIORITY = -10  # nice value of the stage's processes and the estimate's while measuring

CASES: dict[str, dict[str, Any]] = {
    "option_pricing, 40,000 cheap points (paths 100), 1,000 shards": {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"linspace": {"start": 50, "stop": 150, "num": 400}},
            "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 100}},
            "paths": {"values": [100]},
        },
        "shards": {"count": 1000},
    },
    "option_pricing, 1,200 dear points (paths 200,000), 12 shards": {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"linspace": {"start": 80, "stop": 140, "num": 600}},
            "option": {"values": ["call", "put"]},
            "paths": {"values": [200_000]},
        },
        "shards": {"count": 12},
    },
    "option_pricing, 4,000 mixed points (paths 100..100,000), 40 shards": {
        "simulation": "option_pricing",
        "parameters": {
            "paths": {"values": [100, 1000, 10_000, 100_000]},
            "strike": {"linspace": {"start": 50, "stop": 150, "num": 1000}},
        },
        "shards": {"count": 40},
    },
    "monte_carlo_pi, 20,000 cheap points (samples 1..20,000), 500 shards": {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 1, "stop": 20_001, "step": 1}}},
        "shards": {"count": 500},
    },
    "monte_carlo_pi, 200 dear points (samples 1e6..), 20 shards": {
        "simulation": "monte_carlo_pi",
        "parameters": {
            "samples": {"range": {"start": 1_000_000, "stop": 1_400_000, "step": 2_000}}
        },
        "shards": {"count": 20},
    },
    "monte_carlo_pi, 5,000 mixed points (samples 10..1e5), 50 shards": {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 10, "stop": 100_010, "step": 20}}},
        "shards": {"count": 50},
    },
}


def cpu_seconds(pid: int, include_self: bool = False) -> float:
    """utime + stime of the living descendants of ``pid`` (the stage's worker processes; not
    the server itself, whose threads answer the API and dispatch, unless ``include_self``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            if p != pid or include_self:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # a process that ended meanwhile
    return total


def machine_ms() -> float:
    """This machine's speed now: the fastest of three timings of a fixed pure-Python loop, in
    ms of CPU. Taken before each estimate, between it and its run, and after the run, so a
    case's figures can be read against the speed the machine had while they were measured
    (this VM's cores change speed by up to 2x in phases of seconds)."""

    timings = []
    for _ in range(3):
        started, total = time.process_time(), 0
        for i in range(200_000):
            total += i * i
        timings.append(time.process_time() - started)
    return round(min(timings) * 1000, 1)


def settle(pid: int, most_s: float = 60) -> None:
    """Wait until the stage (``pid`` and its descendants) is idle: under 10 ms of CPU in half a
    second, or ``most_s`` have passed. A user runs ``sweep estimate`` on a quiet machine; the
    stage's warm pool importing NumPy and pyarrow at start-up (about 2 s of CPU here, past the
    1 s this bench once slept) ran beside the first estimate and made it 1.3x the next two."""
    deadline = time.monotonic() + most_s
    before = cpu_seconds(pid, include_self=True)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid, include_self=True)
        if now - before < 0.01:
            return
        before = now


def raise_priority(pids: list[int]) -> bool:
    """nice -10 for every thread of ``pids`` (a thread's niceness is its own on Linux; threads
    and processes started later inherit their creator's) and for their sessions' autogroups
    (with ``sched_autogroup``, CPU is first shared between sessions, whatever the niceness
    within them: the stage runs in a session of its own); False where it is not allowed."""
    try:
        for pid in pids:
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.setpriority(os.PRIO_PROCESS, int(task.name), PRIORITY)
            group = Path(f"/proc/{pid}/autogroup")
            if group.exists():
                group.write_text(str(PRIORITY))
    except (PermissionError, FileNotFoundError, ProcessLookupError):
        return False
    return True


def family(pid: int) -> list[int]:
    """``pid`` and its living descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def billed_seconds(cost: dict[str, Any], function: str) -> float:
    """Billed seconds per invocation of ``function`` in a run's ``cost`` (its GB-s over its
    memory and invocations)."""
    used = cost["by_function"][function]
    memory = function_sizes("local")[function].memory_mb
    return float(used["lambda_gb_s"] * 1024 / memory / used["invocations"])


def measured(client: Client, pid: int, body: dict[str, Any]) -> dict[str, float]:
    """One run of ``body``: its billed worker seconds per invocation and compactor seconds
    (from its cost), and the stage's worker CPU seconds per shard over the run."""
    cpu = cpu_seconds(pid)
    run = client.submit(body, wait=True, timeout=900, poll=0.2)
    cpu = cpu_seconds(pid) - cpu
    status = run.status()
    assert status["complete"] and not status["failed_shards"], status
    # The compaction runs in the same pool process once status finds the run complete: wait for
    # its record, so its CPU is not counted in the next run's (nor its queueing in its shards).
    deadline = time.monotonic() + 120
    while "compactor" not in status["cost"]["by_function"] and time.monotonic() < deadline:
        time.sleep(0.2)
        status = run.status()
    return {
        "worker_s": billed_seconds(status["cost"], "worker"),
        "worker_cpu_s": cpu / status["shard_count"],
        "compactor_s": billed_seconds(status["cost"], "compactor"),
    }


def case_report(
    name: str,
    estimates: list[dict[str, Any]],
    runs: list[dict[str, float]],
    speeds: list[list[float]],
) -> dict[str, Any]:
    worker = statistics.median(r["worker_s"] for r in runs)
    worker_cpu = statistics.median(r["worker_cpu_s"] for r in runs)
    compactor = statistics.median(r["compactor_s"] for r in runs)
    pairs = list(zip(estimates, runs, strict=True))
    return {
        "case": name,
        "estimated_s_per_shard": [e["worker_seconds_per_shard"] for e in estimates],
        "measured_s_per_shard": [round(r["worker_s"], 4) for r in runs],
        "measured_cpu_s_per_shard": [round(r["worker_cpu_s"], 4) for r in runs],
        # each estimate over the median billed (and CPU) seconds of the case's runs
        "ratios": [round(e["worker_seconds_per_shard"] / worker, 3) for e in estimates],
        "ratios_cpu": [round(e["worker_seconds_per_shard"] / worker_cpu, 3) for e in estimates],
        # each estimate over the seconds of the run submitted right after it
        "ratios_own_run": [
            round(e["worker_seconds_per_shard"] / r["worker_s"], 3) for e, r in pairs
        ],
        "estimated_compactor_s": [e["compactor_seconds"] for e in estimates],
        "measured_compactor_s": [round(r["compactor_s"], 4) for r in runs],
        "compactor_ratios": [round(e["compactor_seconds"] / compactor, 3) for e in estimates],
        "ratio_of_medians": round(
            statistics.median(e["worker_seconds_per_shard"] for e in estimates) / worker, 3
        ),
        "load_average": [round(os.getloadavg()[0], 2)],
        # machine_ms before each estimate, between it and its run, and after the run
        "machine_ms": speeds,
    }


def estimated(body: dict[str, Any], data: Path) -> dict[str, Any]:
    """``sweep estimate`` of ``body`` in a process of its own, its figures as JSON."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(body, f)
        f.flush()
        command = [sys.executable, "-m", "sweeps.cli", "estimate", f.name, "--json"]
        done = subprocess.run(
            [*command, "--root", str(data)], capture_output=True, text=True, check=True
        )
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def within(ratios: list[float]) -> bool:
    return all(0.7 <= r <= 1.3 for r in ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs and estimates per case")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    results: list[dict[str, Any]] = []
    settings = {"SWEEP_LOCAL_PROCESSES": "1", "SWEEP_LOCAL_RECONCILER": "false"}
    load_start = [round(x, 2) for x in os.getloadavg()]
    raised = True
    for number, (name, body) in enumerate(CASES.items()):
        # A stage of its own per case: its worker process has run only this request's shards,
        # as a Lambda environment serving this run has.
        with (
            tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp,
            local_stage(Path(tmp) / "data", Path(tmp) / "server.log", settings=settings) as stage,
        ):
            base, server = stage
            client = Client(base)
            settle(server.pid)  # the warm pool's first import, off the first estimate's clock
            raised = raise_priority([os.getpid(), *family(server.pid)]) and raised
            estimates, runs = [], []
            speeds: list[list[float]] = []
            for k in range(args.runs):
                # A seed of its own per run: each run's reuse index is merged into a family of
                # its own, as the estimate's scratch run's is (a family's earlier points are
                # merged again with each run's, which the estimate does not model).
                request = body | {"seed": 5 + 100 * number + k}
                settle(server.pid)
                speed = [machine_ms()]
                estimates.append(estimated(request, Path(tmp) / "data"))
                speed.append(machine_ms())
                runs.append(measured(client, server.pid, request))
                speeds.append([*speed, machine_ms()])
            results.append(case_report(name, estimates, runs, speeds))
    report = {
        "results": results,
        "runs": args.runs,
        "priority_raised": raised,
        "within_30_percent": within([r for x in results for r in x["ratios"]]),
        "cpu_within_30_percent": within([r for x in results for r in x["ratios_cpu"]]),
        "compactor_within_30_percent": within([r for x in results for r in x["compactor_ratios"]]),
        "medians_within_30_percent": within([x["ratio_of_medians"] for x in results]),
        # the last 1, 5 and 15 minutes, at the start and at the end
        "load_average": [load_start, [round(x, 2) for x in os.getloadavg()]],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for r in results:
        print(
            f"{r['case']}\n  worker: estimated {r['estimated_s_per_shard']} s, billed "
            f"{r['measured_s_per_shard']} s (ratios to the median {r['ratios']}, to its own run "
            f"{r['ratios_own_run']}), CPU {r['measured_cpu_s_per_shard']} s (ratios "
            f"{r['ratios_cpu']}; median over median {r['ratio_of_medians']})\n  compactor: "
            f"estimated {r['estimated_compactor_s']} s, billed "
            f"{r['measured_compactor_s']} s (ratios {r['compactor_ratios']}); load "
            f"{r['load_average'][0]}; machine ms (estimate, run, after) {r['machine_ms']}"
        )
    print(
        f"every estimate within +-30 % of the median of the case's runs: worker billed "
        f"{report['within_30_percent']}, worker CPU {report['cpu_within_30_percent']}, "
        f"each case's median estimate {report['medians_within_30_percent']}, "
        f"compactor {report['compactor_within_30_percent']}; priority raised {raised}; load "
        f"average {report['load_average']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
