"""The compactor's time against S3's request costs, per shard and extrapolated to 100,000 shards.

    .venv/bin/python -m bench.compaction_s3                      # 500 one at a time; 1,000, 5,000
    .venv/bin/python -m bench.compaction_s3 --shards 2000 --json

``bench.scale`` times compaction on the local stage, where a read costs microseconds; on S3 each
request is a round trip, and the compactor reads every per-shard file of a run (results and
outcomes; the reuse merge reads the results again) and deletes the replaced results files once
the grace period is over. Its function has 900 s.

Per size: a complete run of that many one-point shards (option_pricing, paths 10, as
``bench.scale``) made by the real code in-process (``tests.support.inline``: dispatcher tree,
workers, real Parquet) in memory, copied into ``S3LatencyStore`` (20 ms a request, listings in
pages of 1,000 keys, at most ``--in-flight`` requests at once: the client's connection pool,
32 in ``aws.s3``), then the compactor's two invocations through ``PacedStore`` (what a deployed
stage wraps S3 in, ``chalicelib.wiring``: a wrapper that dropped the batched delete would show
here as one request a key), each timed in wall-clock seconds with its requests counted:

- **compaction**: ``compact`` finds the run complete, writes and commits the generation, merges
  the run into its reuse family and points the catalog (``NoCatalog``);
- **clean-up**: ``compact`` once the grace period is over: deletes what the generation replaced.

Also the growth of this process's peak RSS over both (``ru_maxrss``: the in-memory store is
already held, so the growth is what the compaction holds at its peak).

``--one-at-a-time`` sizes run with one request in flight (a store with no parallelism): what
reading ahead saves. Before this bench's change (measured once with it on the commit before,
1,000 shards, 32 in flight): the compactor read one file at a time whatever the store, the merge
read the per-shard results a second time, and the clean-up deleted one key a request: 86.9 ms a
shard, 8,693 s at 100,000 shards. The figure to compare with 900 s is ``per_100k_s``: the
seconds per shard times 100,000.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from chalicelib.analytics.catalog import NoCatalog
from chalicelib.config import Settings
from chalicelib.execution.compaction import compact
from chalicelib.fanout.invoking import compactor_trigger
from chalicelib.logs import logger
from chalicelib.storage import summary
from chalicelib.storage.pacing import PacedStore
from tests.support.inline import Inline
from tests.support.store_models import MemoryStore, S3LatencyStore

GRACE_S = 3600
TIMEOUT_S = 900  # the compactor function's (.chalice/config.json)


def body(shards: int) -> dict[str, Any]:
    return {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"linspace": {"start": 50, "stop": 150, "num": shards}},
            "paths": {"values": [10]},
        },
        "shards": {"count": shards},
        "seed": 1,
    }


def built(shards: int) -> tuple[MemoryStore, str]:
    store = MemoryStore()
    inline = Inline(store, Settings(stage="dev", dispatch_backoff_ms=1))
    run_id = inline.submit(body(shards))
    inline.drain()
    assert summary.run_progress(store, run_id, shards, compactor_trigger(None)).complete
    return store, run_id


def _at(moment: datetime) -> datetime:
    return moment


def one(shards: int, in_flight: int) -> dict[str, Any]:
    source, run_id = built(shards)
    store = S3LatencyStore(latency_s=0, in_flight=in_flight)
    for key, data in source.objects.items():
        MemoryStore.put(store, key, data)  # not a modelled request
    store.latency_s = 0.020
    deployed = PacedStore(store)  # as a deployed stage wraps S3 (chalicelib.wiring)
    settings = Settings(stage="dev", compaction_grace_s=GRACE_S)
    now = datetime.now(UTC)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row: dict[str, Any] = {"shards": shards, "in_flight": in_flight}
    for name, at, expected in (
        ("compaction", now, "compacted"),
        ("clean_up", now + timedelta(seconds=GRACE_S + 1), "cleaned"),
    ):
        before, started = store.requests, time.perf_counter()
        done = compact(deployed, run_id, settings, NoCatalog(), partial(_at, at))
        seconds = time.perf_counter() - started
        assert done["status"] == expected, done
        row[f"{name}_s"] = round(seconds, 2)
        row[f"{name}_requests"] = store.requests - before
    total = row["compaction_s"] + row["clean_up_s"]
    row["per_shard_ms"] = round(total * 1000 / shards, 3)
    row["per_100k_s"] = round(total / shards * 100_000)
    row["peak_rss_growth_mb"] = round(
        (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024, 1
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--one-at-a-time", type=int, nargs="*", default=[500])
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")  # not a line per shard
    began = time.monotonic()
    rows = [one(n, 1) for n in args.one_at_a_time]
    rows += [one(n, args.in_flight) for n in args.shards]
    report = {
        "results": rows,
        "timeout_s": TIMEOUT_S,
        "command": " ".join(
            [
                ".venv/bin/python -m bench.compaction_s3 --shards",
                *map(str, args.shards),
                "--one-at-a-time",
                *map(str, args.one_at_a_time),
            ]
        ),
        "took_s": round(time.monotonic() - began, 1),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    for r in rows:
        print(
            f"{r['shards']:,} shards, {r['in_flight']} in flight: compaction {r['compaction_s']} s "
            f"({r['compaction_requests']:,} requests), clean-up {r['clean_up_s']} s "
            f"({r['clean_up_requests']:,} requests); {r['per_shard_ms']} ms a shard, "
            f"{r['per_100k_s']:,} s at 100,000 shards (timeout {TIMEOUT_S}); peak RSS "
            f"+{r['peak_rss_growth_mb']} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
