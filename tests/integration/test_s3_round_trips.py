"""S3's round trips, where a 100,000-shard run pays them: the compactor reads a run's
per-shard files several at once (in order, a bounded number in flight) and deletes the files it
replaced 1,000 keys a request, so a 100,000-shard run's compaction fits its function's timeout
(bench.compaction_s3 gives the times); a worker asks its questions before any work in
one round trip; the requests counted for a run's cost stay exact when made from threads.

Reads and deletes go through the real S3 store on moto (DeleteObjects) and through
``S3LatencyStore``, which charges a round trip per request and records how many were in
flight together.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq

from chalicelib.analytics.catalog import NoCatalog
from chalicelib.config import Settings
from chalicelib.execution.compaction import compact
from chalicelib.execution.worker import run_task
from chalicelib.fanout.invoking import compactor_trigger
from chalicelib.storage import compaction, layout, summary
from chalicelib.storage.stores import CountingStore, LocalStore, S3Store
from chalicelib.storage.together import read_ahead
from tests.support.inline import Inline
from tests.support.store_models import MemoryStore, S3LatencyStore

SHARDS = 40
POINTS = 120


def test_read_ahead_keeps_the_order_and_bounds_the_reads_in_flight() -> None:
    store = S3LatencyStore(latency_s=0.005, in_flight=4)
    keys = [f"k/{i:03d}" for i in range(60)]
    for i, key in enumerate(reversed(keys)):  # stored in another order than read
        MemoryStore.put(store, key, str(len(keys) - 1 - i).encode())
    got = list(read_ahead(store, keys, store.get))
    assert got == [str(i).encode() for i in range(60)]
    assert 2 <= store.most_in_flight <= 4


def test_read_ahead_on_a_folder_reads_each_when_it_is_taken(local_store: LocalStore) -> None:
    for i in range(5):
        local_store.put(f"k/{i}", b"x")
    read: list[str] = []

    def reader(key: str) -> bytes:
        read.append(key)
        return local_store.get(key)

    files = read_ahead(local_store, [f"k/{i}" for i in range(5)], reader)
    assert next(files) == b"x"
    assert read == ["k/0"]


def test_read_ahead_stops_reading_when_the_caller_stops() -> None:
    store = S3LatencyStore(latency_s=0.002, in_flight=4)
    keys = [f"k/{i:03d}" for i in range(200)]
    for key in keys:
        MemoryStore.put(store, key, b"x")
    files = read_ahead(store, keys, store.get)
    for _ in range(3):
        next(files)
    files.close()
    assert store.requests <= 3 + 4 + 4  # taken, in flight, and at most one more round


def test_requests_made_from_threads_are_each_counted() -> None:
    inner = S3LatencyStore(latency_s=0.0005, in_flight=16)
    keys = [f"k/{i:04d}" for i in range(2000)]
    for key in keys:
        MemoryStore.put(inner, key, b"x")
    counting = CountingStore(inner)
    assert counting.request_parallelism == 16
    assert sum(1 for _ in read_ahead(counting, keys, counting.get)) == 2000
    assert counting.reads == 2000 == inner.requests


def test_s3_deletes_many_keys_1000_a_request(s3_store: S3Store, s3_client: Any) -> None:
    doomed = [f"d/{i:05d}" for i in range(2500)]
    for key in doomed:
        s3_client.put_object(Bucket=s3_store.bucket, Key=s3_store.prefix + key, Body=b"")
    s3_store.put("kept/one", b"1")
    calls: list[int] = []
    s3_client.meta.events.register(
        "before-call.s3.DeleteObjects",
        lambda params, **_: calls.append(len(params["body"])),
    )
    s3_store.delete_many([*doomed, "d/absent"])  # an absent key is no error
    assert len(calls) == 3
    assert [o.key for o in s3_store.list("")] == ["kept/one"]


def test_a_compaction_on_s3_reads_together_and_cleans_up_in_batches() -> None:
    """A complete run copied into the S3 model: the compaction reads its files with several
    requests in flight and its parts hold every point once; the clean-up deletes the per-shard
    results files it replaced in a few requests, not one each."""
    built = MemoryStore()
    inline = Inline(built, Settings(stage="dev", dispatch_backoff_ms=1))
    run_id = inline.submit(
        {
            "simulation": "monte_carlo_pi",
            "parameters": {"samples": {"range": {"start": 10, "stop": 10 + POINTS, "step": 1}}},
            "shards": {"count": SHARDS},
        }
    )
    inline.drain()
    assert summary.run_progress(built, run_id, SHARDS, compactor_trigger(None)).complete
    store = S3LatencyStore(latency_s=0.002, in_flight=8)
    for key, data in built.objects.items():
        MemoryStore.put(store, key, data)
    settings = Settings(stage="dev", compaction_grace_s=3600)
    now = datetime.now(UTC)

    assert compact(store, run_id, settings, NoCatalog(), lambda: now)["status"] == "compacted"
    assert store.most_in_flight > 1
    gen = compaction.latest(store, run_id)
    assert gen is not None
    rows = [
        pq.read_table(io.BytesIO(store.get(key))).column("point_index").to_pylist()
        for key in gen.parts[compaction.RESULTS]
    ]
    assert sorted(i for part in rows for i in part) == list(range(POINTS))

    replaced = compaction.replaced_keys(store, gen)
    assert len(replaced) >= SHARDS
    before = store.requests
    later = now + timedelta(seconds=3601)
    assert compact(store, run_id, settings, NoCatalog(), lambda: later)["status"] == "cleaned"
    assert store.requests - before < 20  # listings and bookkeeping; one DeleteObjects a 1,000
    assert not any(MemoryStore.exists(store, key) for key in replaced)
    left = [o.key for o in store.list(layout.results_prefix(run_id))]
    assert not any(compaction.shard_of_results(key) is not None for key in left)


def test_a_worker_asks_its_three_questions_at_once_on_s3() -> None:
    """Succeeded already? closed? cancelled? On S3 one round trip, not three; the shard then
    succeeds as it would, and a second delivery still writes nothing."""
    built = MemoryStore()
    inline = Inline(built, Settings(stage="dev", dispatch_backoff_ms=1))
    tasks: list[dict[str, Any]] = []
    inline.worker = tasks.append
    run_id = inline.submit(
        {
            "simulation": "monte_carlo_pi",
            "parameters": {"samples": {"values": [10, 20]}},
            "shards": {"count": 2},
        }
    )
    inline.drain()
    store = S3LatencyStore(latency_s=0.01, in_flight=32)
    for key, data in built.objects.items():
        MemoryStore.put(store, key, data)
    assert run_task(tasks[0], None, store, 0)["status"] == "succeeded"
    assert store.most_in_flight >= 3
    written = len(store.objects)
    assert run_task(tasks[0], None, store, 0)["status"] == "duplicate"
    assert len(store.objects) == written + 1  # only the duplicate's usage record
    assert MemoryStore.exists(store, layout.results(run_id, 0))
