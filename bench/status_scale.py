"""Status of one large run, complete and running, without running its workers: CPU and wall time.

    .venv/bin/python -m bench.status_scale --shards 100000 --root /tmp/status-100k
    .venv/bin/python -m bench.status_scale --shards 100000 --root /tmp/status-100k --profile

``bench.scale`` measures status on a real run, but a 100,000-shard run takes a quarter of an
hour; this builds the run's keys once (``--root``: kept, and reused when it already holds a
run) and times ``runs.status.status`` on them as often as wanted:

- the run is submitted and dispatched by the deployed code (``tests.support.inline``: the real
  manifest, dispatcher tree and dispatch records); its first ``REAL`` shards are run by the real
  worker, and every other shard leaves what the real worker leaves where status looks: its
  success lock (the real worker's content), its success outcome and results files (empty:
  status reads no Parquet) and its usage record (the real worker's record's fields with the
  shard's id, an empty file);
- **complete**: the run's summary in place (status writes it on the first read);
- **running**: the summary removed and the last shard's success outcome set aside, as
  ``bench.scale`` does: status lists everything and finds one shard pending. Before each
  call the outcomes and usage folders change (a temp file made and removed), as workers
  landing between polls change them: the local store reads them again (it keeps a folder's
  entries only while the folder is unchanged);
- each on the local folder (``LocalStore``, in-process: the work behind ``GET /sweeps/<id>``
  on the local stage, without the HTTP) and on ``S3LatencyStore`` (20 ms a request, pages of
  1,000 keys, <= 32 in flight) holding the same keys; median of ``--times`` calls, wall and
  process CPU time. ``--profile`` prints the top of a cProfile of each local case.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.config import Settings
from chalicelib.logs import logger
from chalicelib.model import ids
from chalicelib.runs.status import status
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore
from tests.support.inline import Inline
from tests.support.store_models import MemoryStore, S3LatencyStore

REAL = 3  # shards run by the real worker; their records are the others' model


def body(shards: int) -> dict[str, Any]:
    return {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 10, "stop": 10 + shards, "step": 1}}},
        "shards": {"count": shards},
        "seed": 1,
    }


def build(root: Path, shards: int) -> str:
    """A complete run of ``shards`` shards under ``root`` (see the module docstring)."""
    logger.setLevel("WARNING")  # not a line per shard
    store = LocalStore(root)
    inline = Inline(store, Settings(stage="dev", dispatch_backoff_ms=1))
    model: dict[str, Any] = {}

    def worker(payload: dict[str, Any]) -> None:
        run_id, shard, dt = payload["run_id"], payload["shard_id"], payload["dt"]
        if shard < REAL:
            inline.run_worker(payload)
            if not model:
                lock = store.get(layout.success_lock(run_id, shard))
                prefix = layout.function_usage_prefix(run_id, "worker")
                found = [layout.parse_usage(o.key) for o in store.list(prefix)]
                model["lock"], model["usage"] = lock, next(u for u in found if u is not None)
            return
        store.create(layout.success_lock(run_id, shard), model["lock"])
        store.create(layout.outcome(run_id, "succeeded", dt, shard, 1), b"")
        store.create(layout.results(run_id, shard), b"")
        usage = model["usage"]
        what = layout.shard_what(shard, layout.what_shard(usage.what)[1])  # type: ignore[index]
        entry = layout.Usage(
            usage.function,
            what,
            usage.memory_mb,
            usage.duration_ms,
            usage.s3_reads,
            usage.s3_writes,
            usage.bound,
        )
        store.put(layout.usage_record(run_id, entry, f"{shard:012x}"), b"")

    inline.worker = worker
    run_id = inline.submit(body(shards))
    inline.drain()
    answer = status(store, run_id)  # writes the summary
    assert answer["complete"] and answer["shards"]["succeeded"] == shards, answer["shards"]
    # Closed, as the reconciler closes a complete run once compacted (not run here: the
    # stand-in files are not Parquet), so a local stage started on the root leaves it alone.
    store.delete(layout.open_run(run_id))
    return run_id


def existing(root: Path) -> str | None:
    store = LocalStore(root)
    found = [
        parsed for o in store.list(layout.RUN_INDEX) if (parsed := layout.parse_run_index(o.key))
    ]
    return found[0].run_id if found else None


def timed(
    times: int, fn: Callable[[], object], before: Callable[[], object] = lambda: None
) -> dict[str, float]:
    """Median wall and process CPU time of ``fn``, ``before`` run (untimed) ahead of each."""
    walls, cpus = [], []
    for _ in range(times):
        before()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return {
        "wall_ms": round(statistics.median(walls) * 1000, 1),
        "cpu_ms": round(statistics.median(cpus) * 1000, 1),
    }


def s3_model(root: Path) -> S3LatencyStore:
    model = S3LatencyStore(latency_s=0)
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.startswith(".tmp-"):
                path = os.path.join(dirpath, name)
                key = os.path.relpath(path, root).replace(os.sep, "/")
                data = b"" if name.endswith(".parquet") else Path(path).read_bytes()
                MemoryStore.put(model, key, data)  # not a modelled request
    model.latency_s = 0.020
    return model


def touch(folders: list[Path]) -> None:
    """A change in each folder, as a worker landing between two polls of a running run
    makes (a temp file made and removed): the local store reads such a folder again."""
    for folder in folders:
        tmp = folder / ".tmp-touch"
        tmp.write_bytes(b"")
        tmp.unlink()


def profiled(fn: Callable[[], object], top: int) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=100_000)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--times", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-s3", action="store_true")
    args = parser.parse_args(argv)
    run_id = existing(args.root)
    if run_id is None:
        started = time.perf_counter()
        run_id = build(args.root, args.shards)
        print(f"built {run_id} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    local = LocalStore(args.root)
    shards = int(json.loads(local.get(layout.summary(run_id)))["shard_count"])
    dt = ids.run_dt(run_id) or ""
    summary_path = args.root / layout.summary(run_id)
    last = args.root / layout.outcome(run_id, "succeeded", dt, shards - 1, 1)
    aside = last.with_name(".tmp-aside")
    out: dict[str, Any] = {"shards": shards, "load_1min": [round(os.getloadavg()[0], 2)]}
    complete = status(local, run_id)
    out["local_complete"] = timed(args.times, lambda: status(local, run_id))
    if args.profile:
        profiled(lambda: status(local, run_id), 25)
    kept = summary_path.read_bytes()
    summary_path.unlink()
    last.rename(aside)
    try:
        running = status(local, run_id)
        assert not running["complete"] and running["shards"]["pending"] == 1
        changing = [last.parent, args.root / layout.usage_prefix(run_id)]
        out["local_running"] = timed(
            args.times, lambda: status(local, run_id), lambda: touch(changing)
        )
        if args.profile:
            touch(changing)
            profiled(lambda: status(local, run_id), 40)
        if not args.no_s3:
            model = s3_model(args.root)
            assert status(model, run_id) == running
            out["s3_running"] = timed(args.times, lambda: status(model, run_id))
    finally:
        aside.rename(last)
        summary_path.write_bytes(kept)
    if not args.no_s3:
        model = s3_model(args.root)
        assert status(model, run_id) == complete
        out["s3_complete"] = timed(args.times, lambda: status(model, run_id))
    out["load_1min"].append(round(os.getloadavg()[0], 2))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
