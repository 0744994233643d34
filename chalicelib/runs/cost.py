"""A run's cost from what it did: its usage records (``execution.usage``), priced once.

Each worker and dispatcher record is one invocation billed as its duration rounded up to 1 ms
times its function's memory, plus its S3 requests (reads and writes at their own prices); a
shard Lambda gave up on is billed once per try at the timeout (``charged``). API calls and
reconciler passes serve every run and are charged to none. One listing, no Parquet: it is part
of status. ``athena/run_cost.sql`` computes the same from the table ``usage``.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.pricing import PRICES, gb_seconds, usd
from chalicelib.storage import key_ranges, layout
from chalicelib.storage.stores import ObjectStore

# How a worker's record says a try ended in an unhandled error (its own ``finally``), and how
# the failure recorder's says Lambda made a try of a shard it gave up on.
CRASH_TRY_ENDS = ("raised", "crashed")


def charged(entries: list[layout.Usage]) -> list[layout.Usage]:
    """The invocations to bill, one per try.

    A shard Lambda gave up on is seen twice: the failure recorder leaves one ``crashed``
    record per try Lambda reports (duration unknown: the timeout, ``bound``), and each try that
    got as far as the worker's ``finally`` (an unhandled error does; a timeout or an
    out-of-memory kill does not) left its own ``raised`` record. Both describe the same tries,
    so such a shard is billed ``max(raised, crashed)`` tries, each at the timeout and flagged,
    with the S3 requests the raised tries counted. That is right whichever way a try died,
    and whether or not Lambda's retries share a request id. A ``raised`` try of a shard with
    no ``crashed`` record (a retry then succeeded) keeps its measured duration."""
    groups: dict[tuple[str, int], list[layout.Usage]] = defaultdict(list)
    out: list[layout.Usage] = []
    for e in entries:
        shard = layout.what_shard(e.what)
        if shard is None or shard[1] not in CRASH_TRY_ENDS:
            out.append(e)
        else:
            groups[(e.function, shard[0])].append(e)
    for group in groups.values():
        raised = [e for e in group if not e.bound]
        bound = [e for e in group if e.bound]
        if not bound:
            out.extend(raised)
            continue
        tries = max(len(raised), len(bound))
        reads = sum(e.s3_reads for e in raised)
        writes = sum(e.s3_writes for e in raised)
        out.append(replace(bound[0], s3_reads=reads, s3_writes=writes))
        out.extend(replace(bound[0], s3_reads=0, s3_writes=0) for _ in range(tries - 1))
    return out


@dataclass(frozen=True)
class FunctionUsage:
    """One function's billed use in a run: its invocations, their memory x billed duration
    (MB x ms, each duration rounded up to 1 ms: whole numbers, summed exactly as run_cost.sql
    does), its S3 reads and writes, and how many invocations are a timeout's upper bound."""

    invocations: int = 0
    mb_ms: int = 0
    s3_reads: int = 0
    s3_writes: int = 0
    bounded: int = 0

    def plus(self, kind: layout.UsageKind, n: int = 1) -> FunctionUsage:
        """This use and ``n`` invocations of one kind (function, memory_mb, duration_ms,
        s3_reads, s3_writes, bound) more."""
        _, memory_mb, duration_ms, reads, writes, bound = kind
        return FunctionUsage(
            self.invocations + n,
            self.mb_ms + math.ceil(duration_ms) * memory_mb * n,
            self.s3_reads + reads * n,
            self.s3_writes + writes * n,
            self.bounded + bound * n,
        )


def usage_by_function(
    store: ObjectStore, run_id: str, shard_count: int = 0
) -> dict[str, FunctionUsage]:
    """Each function's billed use in the run, from one listing of its usage records: in key
    ranges at once where the store gains from it (``shard_count``: where the boundaries go,
    ``usage_boundaries``). Also what ``sweep estimate`` reads of the invocations it runs."""
    prefix = layout.usage_prefix(run_id)
    keys = key_ranges.list_keys(store, prefix, usage_boundaries(prefix, shard_count))
    # A record of a try that may have crashed goes through ``charged``; the rest (nearly all)
    # are summed by kind.
    kinds, tries = layout.usage_counts(keys, CRASH_TRY_ENDS)
    out: dict[str, FunctionUsage] = {}
    for kind, n in kinds.items():
        out[kind[0]] = out.get(kind[0], FunctionUsage()).plus(kind, n)
    for e in charged(tries):
        out[e.function] = out.get(e.function, FunctionUsage()).plus(e.kind)
    return out


def run_cost(store: ObjectStore, run_id: str, shard_count: int = 0) -> dict[str, Any]:
    """The run's cost from one listing of its usage records (``usage_by_function``)."""
    sums = usage_by_function(store, run_id, shard_count)
    gb_s = gb_seconds(sum(f.mb_ms for f in sums.values()), 1)
    invocations = sum(f.invocations for f in sums.values())
    reads = sum(f.s3_reads for f in sums.values())
    writes = sum(f.s3_writes for f in sums.values())
    return {
        "usd": round(usd(gb_s, invocations, reads, writes), 9),
        "lambda_gb_s": round(gb_s, 6),
        "invocations": invocations,
        "s3_requests": reads + writes,
        "prices": f"{PRICES.id} ({PRICES.region}, {PRICES.date})",
        # Crashed attempts are charged their function's timeout: the total is then an upper
        # bound, and says so.
        "upper_bound": any(f.bounded for f in sums.values()),
        "by_function": {
            fn: {
                "invocations": f.invocations,
                "lambda_gb_s": round(gb_seconds(f.mb_ms, 1), 6),
                "s3_requests": f.s3_reads + f.s3_writes,
                "bounded": f.bounded,
            }
            for fn, f in sorted(sums.items())
        },
    }


def usage_boundaries(prefix: str, shard_count: int) -> list[str]:
    """Boundaries that split a run's usage records into slices of about
    ``key_ranges.SHARDS_PER_RANGE`` workers' records. A worker's record sorts by its shard id
    in decimal text (``worker~shard-<id>-…``, not zero-padded), so the boundaries are every
    ``SHARDS_PER_RANGE``-th id in that order; like any boundaries they only balance the
    listing."""
    return [f"{prefix}worker~shard-{text}-" for text in _decimal_cuts(shard_count)]


@functools.lru_cache(maxsize=8)
def _decimal_cuts(count: int) -> tuple[str, ...]:
    every = key_ranges.SHARDS_PER_RANGE
    if count <= every:
        return ()
    return tuple(sorted(map(str, range(count)))[every::every])


def compactor_records(store: ObjectStore, run_id: str) -> int:
    """How many compactor invocations the run has records of: the one function that runs after
    a run is complete (``execution.compaction``). One listing: a handful of keys, whatever the
    shard count."""
    return sum(1 for _ in store.list(layout.function_usage_prefix(run_id, "compactor")))


def is_current(cost: dict[str, Any], compactor_found: int) -> bool:
    """Whether a complete run's cached cost still counts every compactor invocation
    (``compactor_records``)."""
    known = cost.get("by_function", {}).get("compactor", {}).get("invocations", 0)
    return bool(known == compactor_found)
