"""The scale table: the same points in 100 / 1,000 / 10,000 / 100,000 shards on the local stage.

    .venv/bin/python -m bench.scale                          # every size (100,000 takes minutes)
    .venv/bin/python -m bench.scale --shards 100 1000 --json
    make bench-scale                                          # just this table

The work: 100,000 option_pricing points (strike x volatility, paths = 10, seed 1), issue 16's
workload. Per size, on a fresh ``chalice local --stage local`` (2 worker processes, a temp data
root):

- **POST**: the latency of ``POST /sweeps``;
- **complete**: from just before the POST until ``GET /sweeps/<id>`` first says complete,
  as ``sweeps.Client``'s ``Run.wait`` follows it with its defaults (``sweep submit --wait``
  and ``sweep wait`` do): every ``DEFAULT_POLL_S`` (0.5 s), or ``PACE`` (9) times as long as
  the last status read took (a running 100,000-shard run's takes a few tenths of a second of
  the stage's CPU). Until 2026-12-07 this bench polled every 0.2 s where a user's watch polls
  every 0.5 s (about a sixth of a core at 10,000 shards: a 35 ms read every 0.2 s), and the
  client paced at three times the read (a quarter of a core at 100,000 shards): more load
  than a user's watch now puts on the stage;
- **done**: from just before the POST until the run's last outcome file was written (its
  modification time): when the stage finished the run's work, without the up to one poll
  interval until a follower sees it complete;
- **per-shard overhead**: (done(n) - done(smallest n)) / (n - smallest n): the wall time each
  extra shard costs the stage for the same points (``per_shard_seen_ms``: the same from
  complete, as a follower saw it). Sizes up to 10,000 shards run ``--runs`` times (3), and
  the run with the median done is kept (``done_s_runs`` lists them all);
- **status, local**: ``GET /sweeps/<id>`` over HTTP, median of 5, once complete (from the
  summary) and **running** (the same run with its summary removed and its last shard's
  success outcome set aside: status lists everything and finds n - 1 shards done, as for a
  running run; before each call its outcomes and usage folders change, as shards landing
  change them, so the local store reads them again);
- **status, S3 model**: ``runs.status.status`` on ``S3LatencyStore`` (20 ms a request, pages of
  1,000 keys, <= 32 in flight) holding the run's keys (bookkeeping objects with their content,
  outcome and results files as empty objects: status reads no Parquet), complete and running;
- **query**: ``run_summary`` on the local engine (DuckDB over the data root), median of 3,
  once the run is compacted (the local stage compacts it as soon as status sees it complete);
- **files**: the run's files of the tables (outcomes and results: Parquet; usage: a JSON Lines
  record per invocation), per shard and per invocation, before compaction;
- **new file**: before each size's run, the CPU microseconds it takes to create one new file in
  a new folder beside its data root, on the same file system (median of 1,000;
  ``new_file_us``). A shard creates four (its success lock, results, outcome and usage record),
  so it is reported beside the per-shard figure to tell the file system's share from ours.
  ``make bench`` puts the data roots on a tmpfs (``bench.scratch``: 12-13 us a file). On this
  VM's disk (ext4 without a journal) that cost moved between 15 and 650 us with what had been
  deleted in the minutes before (``bench/scratch.py``), and so did the per-shard figure: on
  2026-12-07, 1.84 / 1.31 ms at 1,000 / 10,000 shards there (a new file 151 / 26 us) against
  0.94 / 1.06 ms on the tmpfs, minutes apart;
- **compaction**: the local stage compacts the run in the background once status finds it
  complete (``execution.compaction``); the bench waits for its generation record
  (``compaction_s``: from complete until it is committed; ``pool_peak_rss_mb``: then the
  largest peak RSS of the stage's pool processes, where the workers and the compactor ran),
  then times **every baseline query**
  (``sweeps.sql.all_queries``) on the local engine, median of 3, **before** (the generation
  record set aside, so the engine reads the per-shard files, which are kept through the grace
  period) and **after** compaction, and counts **files after** per table and partition
  against ``ceil(bytes / target)`` (the goal). A "before" query whose first run takes over
  ``ONCE_OVER_S`` is timed once, not three times (``query_before_timed_once`` names them: at
  100,000 shards each reads 200,000 files), so every size finishes in minutes. The per-shard
  files are kept through the bench (a long grace period) so "before" reads them all.
- **after compaction**: once every size has run (each size's data root is kept until then;
  the 100,000-shard one holds about 2 GB), every baseline query on every size, the sizes
  interleaved (``after_compaction``): ``AFTER_RUNS`` rounds, each running the query once on
  every size in turn, after one untimed run per size; median wall and CPU seconds (the bench
  process's, DuckDB's threads included). ``query_ratio_vs_first`` is each query's time over the
  first (smallest) size's, the same points: the goal is <= 1.3 at 10,000 shards.
  ``query_cpu_ratio_vs_first`` is the same in CPU seconds. Both sizes of a ratio run
  milliseconds apart, so a neighbour's load falls on both; on a loaded machine CPU time still
  moves (shared caches), and callgrind's instruction count is the steady measure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import requests

from bench.estimate_accuracy import family
from chalicelib.config import Settings
from chalicelib.model import ids
from chalicelib.runs.status import status
from chalicelib.storage import compaction, layout
from chalicelib.storage.stores import LocalStore
from scripts.local_stack import last_outcome_written, local_stage
from sweeps import Client
from sweeps.engines.local import LocalEngine
from sweeps.sql import all_queries, placeholders, resolve
from sweeps.views import PER_SIMULATION_QUERIES
from tests.support.store_models import MemoryStore, S3LatencyStore

# A bound on the wait for compaction, from the run's completion (not its POST: on a busy
# machine a 100,000-shard run alone can take longer): the bench fails rather than hang.
COMPACTION_WAIT_S = 1800

POINTS_PER_AXIS = (1000, 100)  # strike x volatility = 100,000 points

# Sizes up to this many shards run ``--runs`` times, the run with the median ``done_s`` kept:
# each takes seconds, and one run of 1,000 shards moved by 0.4 s from the next (2026-12-07),
# 0.4 ms in the per-shard figure. The 100,000-shard size (two minutes) runs once.
MAX_REPEATED = 10_000


def body(shards: int) -> dict[str, Any]:
    return {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"linspace": {"start": 50, "stop": 150, "num": POINTS_PER_AXIS[0]}},
            "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": POINTS_PER_AXIS[1]}},
            "paths": {"values": [10]},
        },
        "shards": {"count": shards},
        "seed": 1,
    }


# A query slower than this is timed once, not three times: before compaction, at 100,000
# shards, one query reads 200,000 files and takes a minute or more (the output says which).
ONCE_OVER_S = 5.0


# Timed runs of each query per size after compaction (``after_compaction``): tens of ms each,
# so a median of 3, each size timed minutes apart, moved by a third between sizes (1,000
# shards once came out at 0.75x of 100 for a query that reads 10x the rows).
AFTER_RUNS = 15


def median_of(times: int, fn: Any, once_over_s: float | None = None, before: Any = None) -> float:
    return timed(times, fn, once_over_s, before)[0]


def timed(
    times: int, fn: Any, once_over_s: float | None = None, before: Any = None
) -> tuple[float, int]:
    """The median of ``times`` runs of ``fn`` (``before`` run untimed ahead of each), and how
    many runs it took: one only when the first run took longer than ``once_over_s``."""
    samples = []
    for _ in range(times):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
        if once_over_s is not None and samples[0] > once_over_s:
            break
    return statistics.median(samples), len(samples)


def touch(folders: list[Path]) -> None:
    """A change in each folder (a temp file made and removed), as a shard landing makes."""
    for folder in folders:
        tmp = folder / ".tmp-touch"
        tmp.write_bytes(b"")
        tmp.unlink()


def s3_model(data: Path, run_id: str) -> S3LatencyStore:
    """The run's keys in the S3 cost model: small objects with content, Parquet empty."""
    model = S3LatencyStore(latency_s=0)
    for path in data.rglob("*"):
        if path.is_file() and not path.name.startswith(".tmp-"):
            key = path.relative_to(data).as_posix()
            if run_id in key or key.startswith("runs/_index/"):
                small = not key.endswith(".parquet")
                model.put(key, path.read_bytes() if small else b"")
    model.latency_s = 0.020
    return model


def query_times(
    data: Path, run_id: str, shards: int, once_over_s: float | None = None
) -> tuple[dict[str, float], dict[str, int]]:
    """Every baseline query over the run on a fresh local engine, median of 3 each (once for
    a query slower than ``once_over_s``); and how many times each was run."""
    engine = LocalEngine(data)
    pool: dict[str, object] = {"shard_count": shards, "metric": "price"}
    times, runs = {}, {}
    for name in all_queries():
        if name in PER_SIMULATION_QUERIES:
            text = engine.generated_text(name, run_id) or ""
        else:
            text = resolve(name)
        params = {k: v for k, v in pool.items() if k in placeholders(text)}
        run = run_id if "run_id" in placeholders(text) or name in PER_SIMULATION_QUERIES else None
        took, runs[name] = timed(
            3, lambda n=name, r=run, p=params: engine.run(n, run_id=r, **p), once_over_s
        )
        times[name] = round(took, 4)
    return times, runs


def compaction_figures(data: Path, run_id: str, shards: int) -> dict[str, Any]:
    """Query times before and after the run's compaction, and its files per partition."""
    store = LocalStore(data)
    gen = compaction.latest(store, run_id)
    assert gen is not None, "the run was not compacted"
    records = data / layout.compaction_records_prefix(run_id)
    aside = records.with_name("compaction-aside")
    records.rename(aside)  # the engine now reads the per-shard files, as before compaction
    try:
        before, runs = query_times(data, run_id, shards, ONCE_OVER_S)
    finally:
        aside.rename(records)
    target = Settings.from_env().compaction_target_mb * 1024 * 1024
    files = {
        partition: {
            "files": len(keys),
            "bytes": gen.part_bytes[partition],
            "bound": max(1, math.ceil(gen.part_bytes[partition] / target)),
        }
        for partition, keys in gen.parts.items()
    }
    timed_once = sorted(q for q, n in runs.items() if n == 1)
    return {"before": before, "before_timed_once": timed_once, "files_after": files}


def peak_rss_mb(pids: list[int]) -> float:
    """The largest peak RSS (``VmHWM``) among ``pids``: the stage's pool processes, where its
    workers and its compactor run."""
    peaks = [0]
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        peaks += [int(line.split()[1]) for line in lines if line.startswith("VmHWM:")]
    return round(max(peaks) / 1024, 1)


def one(shards: int, tmp: Path) -> tuple[dict[str, Any], str]:
    """One size's row (all but its query times after compaction) and its run id; the data
    root ``tmp/data`` is left for ``after_compaction``."""
    data = tmp / "data"
    # The per-shard files stay while the bench times queries over them ("before").
    settings = {"SWEEP_LOCAL_PROCESSES": "2", "SWEEP_COMPACTION_GRACE_S": "86400"}
    with local_stage(data, tmp / "server.log", settings=settings) as (base, server):
        session = requests.Session()
        started, started_at = time.perf_counter(), time.time()  # file times are on time.time
        answer = session.post(base + "/sweeps", json=body(shards), timeout=120)
        post_s = time.perf_counter() - started
        answer.raise_for_status()
        run_id = answer.json()["run_id"]
        url = f"{base}/sweeps/{run_id}"
        state = Client(base).run(run_id).wait()  # as ``sweep submit --wait`` follows it
        complete_s = time.perf_counter() - started
        assert state["shards"]["succeeded"] == shards, state
        done_s = last_outcome_written(data, run_id) - started_at
        record = data / layout.compaction_records_prefix(run_id)
        while not any(record.glob("gen-*.json")):
            if time.perf_counter() - started - complete_s > COMPACTION_WAIT_S:
                raise TimeoutError(f"run {run_id} not compacted in {COMPACTION_WAIT_S} s")
            time.sleep(0.1)
        compaction_s = time.perf_counter() - started - complete_s
        pool_peak_mb = peak_rss_mb(family(server.pid)[1:])
        status_done = median_of(5, lambda: session.get(url, timeout=120).json())
        summary = data / layout.summary(run_id)
        kept = summary.read_bytes()
        dt = ids.run_dt(run_id) or ""
        # A running run: the summary gone and the last shard's outcome set aside, so
        # status lists everything and finds one shard pending (n - 1 done).
        last = data / layout.outcome(run_id, "succeeded", dt, shards - 1, 1)
        aside = last.with_name(".tmp-aside")
        summary.unlink()
        last.rename(aside)
        # Workers landing between polls change these folders: the local store reads
        # a changed folder again (it keeps a folder's entries only while unchanged).
        changing = [last.parent, data / layout.usage_prefix(run_id)]
        try:
            status_running = median_of(
                5, lambda: session.get(url, timeout=120).json(), before=lambda: touch(changing)
            )
        finally:
            aside.rename(last)
            summary.write_bytes(kept)
    model = s3_model(data, run_id)
    s3_done = median_of(3, lambda: status(model, run_id))
    # Not modelled requests (free): the running run's shape, as above.
    MemoryStore.delete(model, layout.summary(run_id))
    last_key = layout.outcome(run_id, "succeeded", dt, shards - 1, 1)
    MemoryStore.delete(model, last_key)
    s3_running = median_of(3, lambda: status(model, run_id))
    engine = LocalEngine(data)
    query_s = median_of(3, lambda: engine.run("run_summary", run_id=run_id))
    files = sum(
        1 for p in data.glob(f"*/run_id={run_id}/**/*") if p.suffix in (".parquet", ".json")
    )
    compacted = compaction_figures(data, run_id, shards)
    row = {
        "shards": shards,
        "post_ms": round(post_s * 1000, 1),
        "complete_s": round(complete_s, 2),
        "done_s": round(done_s, 3),
        "status_local_complete_ms": round(status_done * 1000, 1),
        "status_local_running_ms": round(status_running * 1000, 1),
        "status_s3_complete_ms": round(s3_done * 1000, 1),
        "status_s3_running_ms": round(s3_running * 1000, 1),
        "query_run_summary_s": round(query_s, 3),
        "files": files,
        "compaction_s": round(compaction_s, 2),
        "pool_peak_rss_mb": pool_peak_mb,
        "query_before_s": compacted["before"],
        "query_before_timed_once": compacted["before_timed_once"],
        "files_after": compacted["files_after"],
    }
    return row, run_id


def after_compaction(runs: list[tuple[Path, str, int]]) -> list[dict[str, dict[str, float]]]:
    """Every baseline query over each size's compacted run, the sizes interleaved: per query,
    ``AFTER_RUNS`` rounds that run it once on each size in turn (after one untimed run each:
    the engine then lists the run's files and binds its views, the first query's cost, not
    every query's). So a neighbour's load falls on every size alike, and a ratio between two
    sizes compares runs milliseconds apart. Per size: median wall and CPU seconds (this
    process's CPU, DuckDB's threads included) per query."""
    engines = [LocalEngine(data) for data, _, _ in runs]
    out: list[dict[str, dict[str, float]]] = [{"wall": {}, "cpu": {}} for _ in runs]
    for name in all_queries():
        calls = []
        for engine, (_, run_id, shards) in zip(engines, runs, strict=True):
            if name in PER_SIMULATION_QUERIES:
                text = engine.generated_text(name, run_id) or ""
            else:
                text = resolve(name)
            pool: dict[str, object] = {"shard_count": shards, "metric": "price"}
            params = {k: v for k, v in pool.items() if k in placeholders(text)}
            per_run = "run_id" in placeholders(text) or name in PER_SIMULATION_QUERIES
            calls.append(partial(engine.run, name, run_id=run_id if per_run else None, **params))
            calls[-1]()
        walls: list[list[float]] = [[] for _ in runs]
        cpus: list[list[float]] = [[] for _ in runs]
        for _ in range(AFTER_RUNS):
            for i, call in enumerate(calls):
                started, cpu = time.perf_counter(), time.process_time()
                call()
                walls[i].append(time.perf_counter() - started)
                cpus[i].append(time.process_time() - cpu)
        for i in range(len(runs)):
            out[i]["wall"][name] = round(statistics.median(walls[i]), 4)
            out[i]["cpu"][name] = round(statistics.median(cpus[i]), 4)
    return out


def new_file_us(folder: Path, files: int = 1000) -> float:
    """CPU microseconds to create (and write a byte to) one new file in ``folder``: the
    file system's share of a shard's writes, which has nothing of ours in it."""
    probe = folder / ".tmp-new-file-probe"
    probe.mkdir(parents=True)
    took = []
    for i in range(files):
        started = time.process_time()
        fd = os.open(probe / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"x")
        os.close(fd)
        took.append(time.process_time() - started)
    shutil.rmtree(probe)
    return round(statistics.median(took) * 1e6, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[100, 1000, 10_000, 100_000])
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help=f"runs of each size up to {MAX_REPEATED:,} shards, the median kept (larger: one)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    began, load_before = time.monotonic(), os.getloadavg()[0]
    rows, runs = [], []
    with ExitStack() as kept:  # every size's data root, until its queries are timed
        for shards in args.shards:
            tries = []
            for _ in range(args.runs if shards <= MAX_REPEATED else 1):
                folder = tempfile.TemporaryDirectory(prefix="bench-scale-")
                tmp = Path(folder.name)
                new_file = new_file_us(tmp)
                row, run_id = one(shards, tmp)
                row["new_file_us"] = new_file
                tries.append((row, run_id, folder))
            tries.sort(key=lambda t: t[0]["done_s"])
            row, run_id, folder = tries[len(tries) // 2]  # the median run, by done_s
            for _, _, other in tries:
                if other is not folder:
                    other.cleanup()
            kept.enter_context(folder)
            row["done_s_runs"] = [t[0]["done_s"] for t in tries]
            rows.append(row)
            runs.append((Path(folder.name) / "data", run_id, shards))
            if not args.json:
                print(rows[-1], flush=True)
        for row, measured in zip(rows, after_compaction(runs), strict=True):
            row["query_after_s"], row["query_after_cpu_s"] = measured["wall"], measured["cpu"]
            if not args.json:
                print(row["shards"], measured, flush=True)
    base = rows[0]
    for row in rows[1:]:
        extra = row["shards"] - base["shards"]
        row["per_shard_ms"] = round((row["done_s"] - base["done_s"]) * 1000 / extra, 2)
        seen = (row["complete_s"] - base["complete_s"]) * 1000 / extra
        row["per_shard_seen_ms"] = round(seen, 2)
        for ratio, key in (
            ("query_ratio_vs_first", "query_after_s"),
            ("query_cpu_ratio_vs_first", "query_after_cpu_s"),
        ):
            row[ratio] = {q: round(t / max(base[key][q], 1e-9), 2) for q, t in row[key].items()}
    if args.json:
        command = " ".join(
            [".venv/bin/python", "-m", "bench.scale", "--shards", *map(str, args.shards)]
        )
        took = round(time.monotonic() - began, 1)
        load = [round(load_before, 1), round(os.getloadavg()[0], 1)]
        print(json.dumps({"rows": rows, "command": command, "took_s": took, "load_1min": load}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
