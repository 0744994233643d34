"""100,000 shards, the default limit: the dispatcher tree hands out each shard exactly once with
its plan's bounds, status counts them from key-range listings, the reconciler re-dispatches
the few whose events were dropped, and the complete run's status comes from its summary.

The API, dispatcher and reconciler are the deployed code (``tests.support.inline``) on a store with
S3's semantics and pages (``S3LatencyStore`` without latency). Workers are replaced by what a
success leaves behind in the keys status reads (the shard's success lock and outcome, written
through the layout): 100,000 real worker runs would take minutes, and what is under test here
is everything around them (tests/integration/test_worker.py covers the worker).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.config import Settings
from chalicelib.fanout.reconcile import reconcile
from chalicelib.model.sharding import ShardSpec, shard_bounds
from chalicelib.runs.listing import list_runs
from chalicelib.runs.status import status
from chalicelib.storage import layout
from tests.support.inline import Inline
from tests.support.store_models import S3LatencyStore

SHARDS = 100_000
POINTS = 250_000
DROPPED = {0, 4_242, 50_000, 99_999}


def test_a_hundred_thousand_shard_run_dispatches_completes_and_reports() -> None:
    settings = Settings(stage="dev", dispatch_backoff_ms=1, stall_timeout_s=600)
    assert settings.max_shards == SHARDS  # the default accepts it
    store = S3LatencyStore(latency_s=0)
    inline = Inline(store, settings)
    seen: dict[int, tuple[int, int]] = {}
    dropping = True

    def worker(payload: dict[str, Any]) -> None:
        shard = payload["shard_id"]
        if dropping and shard in DROPPED:
            return  # Lambda lost the event
        assert shard not in seen or not dropping  # handed out once by the tree
        seen[shard] = (payload["start"], payload["end"])
        store.create(layout.success_lock(payload["run_id"], shard), b'{"attempt": 1}')
        key = layout.outcome(payload["run_id"], "succeeded", payload["dt"], shard, 1)
        store.create(key, b"")

    inline.worker = worker
    run_id = inline.submit(
        {
            "simulation": "monte_carlo_pi",
            "parameters": {"samples": {"range": {"start": 1, "stop": POINTS + 1, "step": 1}}},
            "shards": {"count": SHARDS},
        }
    )
    inline.drain()
    assert inline.invoker.sent["dispatcher"] == 1 + 10 + 100  # a 3-level tree
    assert len(seen) == SHARDS - len(DROPPED)
    spec = ShardSpec("count", SHARDS)
    assert all(seen[k] == shard_bounds(POINTS, spec, k) for k in seen)

    running = status(store, run_id)
    assert running["dispatch"] == {"dispatched": SHARDS, "failed": 0}
    assert running["shards"] == {"succeeded": SHARDS - 4, "failed": 0, "pending": 4}
    assert running["points_succeeded"] == POINTS - sum(
        e - s for s, e in (shard_bounds(POINTS, spec, k) for k in DROPPED)
    )

    t = datetime(2026, 12, 1, tzinfo=UTC)
    assert reconcile(store, inline.invoker, settings, lambda: t) == {"progressing": 1}
    later = t + timedelta(seconds=601)
    dropping = False
    assert reconcile(store, inline.invoker, settings, lambda: later) == {"redriven": 1}
    inline.drain()
    assert set(seen) == set(range(SHARDS))
    # Complete: its compaction is asked for, and the run stays watched until that is done (the
    # stand-in files here are not Parquet, so the compactor's event is not run).
    assert reconcile(store, inline.invoker, settings, lambda: later) == {"compacting": 1}
    assert list(inline.invoker.queue) == [("compactor", {"run_id": run_id})]
    inline.invoker.queue.clear()
    assert store.exists(layout.open_run(run_id))

    first = status(store, run_id)  # from the reconciler's summary, adding the run's cost to it
    before = store.requests
    done = status(store, run_id)
    assert done == first
    # manifest, summary, redrive lists, cancel, the registered marker (queryable may still
    # change by itself, so it is read, not kept), and the compactor's usage records (the kept
    # cost must count them), and the compaction's abandoned record; issued at once.
    assert store.requests - before <= 7
    assert done["complete"] and done["shards"]["succeeded"] == SHARDS
    assert done["points_succeeded"] == POINTS and done["auto_redrives"] == 1
    assert list_runs(store, {})["runs"][0]["complete"]
