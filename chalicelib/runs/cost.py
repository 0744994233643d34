"""A run's cost from what it did: its usage records (``execution.usage``), priced once.

Each worker, dispatcher and crashed-worker record is one invocation billed as its duration
rounded up to 1 ms times its function's memory, plus its S3 requests; API calls and reconciler
passes serve every run and are charged to none. One listing, no Parquet: it is part of status.
"""

from __future__ import annotations

from typing import Any

from chalicelib.pricing import PRICES, gb_seconds, usd
from chalicelib.storage import layout
from chalicelib.storage.stores import ObjectStore


def run_cost(store: ObjectStore, run_id: str) -> dict[str, Any]:
    entries = [
        entry
        for obj in store.list(layout.usage_prefix(run_id))
        if (entry := layout.parse_usage(obj.key)) is not None
    ]
    by_function: dict[str, dict[str, Any]] = {}
    for e in entries:
        f = by_function.setdefault(
            e.function, {"invocations": 0, "lambda_gb_s": 0.0, "s3_requests": 0, "bounded": 0}
        )
        f["invocations"] += 1
        f["lambda_gb_s"] += gb_seconds(e.duration_ms, e.memory_mb)
        f["s3_requests"] += e.s3_reads + e.s3_writes
        f["bounded"] += e.bound
    gb_s = sum(f["lambda_gb_s"] for f in by_function.values())
    reads = sum(e.s3_reads for e in entries)
    writes = sum(e.s3_writes for e in entries)
    return {
        "usd": round(usd(gb_s, len(entries), reads, writes), 9),
        "lambda_gb_s": round(gb_s, 6),
        "invocations": len(entries),
        "s3_requests": reads + writes,
        "prices": f"{PRICES.id} ({PRICES.region}, {PRICES.date})",
        # Crashed attempts are charged their function's timeout: the total is then an upper
        # bound, and says so.
        "upper_bound": any(e.bound for e in entries),
        "by_function": {
            fn: f | {"lambda_gb_s": round(f["lambda_gb_s"], 6)}
            for fn, f in sorted(by_function.items())
        },
    }


def is_current(store: ObjectStore, run_id: str, cost: dict[str, Any]) -> bool:
    """Whether a complete run's cached cost still counts every compactor invocation: the one
    function that runs after a run is complete (``execution.compaction``). One listing of that
    function's records: a handful of keys, whatever the shard count."""
    known = cost.get("by_function", {}).get("compactor", {}).get("invocations", 0)
    found = sum(1 for _ in store.list(layout.function_usage_prefix(run_id, "compactor")))
    return bool(known == found)
