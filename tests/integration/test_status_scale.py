"""Status at scale: key-range listings hold every key once, a complete run's status comes from its
summary in constant work, a redrive makes that summary stale, and status still equals what
the Parquet says, shard by shard.

Runs go through the deployed code paths in-process (``tests.support.inline``) on stores with S3's
semantics (``tests.support.store_models``).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from typing import Any

import pyarrow.parquet as pq
import pytest

from chalicelib.config import Settings
from chalicelib.fanout.invoking import Function, InvokeError
from chalicelib.fanout.reconcile import reconcile
from chalicelib.model.errors import Conflict
from chalicelib.model.events import run_task_payload
from chalicelib.runs.cancel import cancel
from chalicelib.runs.cost import usage_boundaries
from chalicelib.runs.listing import list_runs
from chalicelib.runs.redrive import redrive
from chalicelib.runs.status import status
from chalicelib.storage import key_ranges, layout, summary
from chalicelib.storage.manifests import load
from chalicelib.storage.stores import ObjectStore
from tests.support.inline import Inline, QueueInvoker
from tests.support.store_models import MemoryStore, S3LatencyStore


def sweep(shards: int, fail: list[int] | None = None) -> dict[str, object]:
    return {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 10, "stop": 10 + shards, "step": 1}}},
        "shards": {"count": shards},
        "fail_shards": fail or [],
    }


def on_disk(store: ObjectStore, run_id: str, shards: int) -> dict[int, str]:
    """Each shard's state from the outcome Parquet alone (a success wins, else the latest
    failure's final flag)."""
    succeeded: set[int] = set()
    latest: dict[int, int] = {}
    for obj in store.list(layout.outcomes_prefix(run_id)):
        key = layout.parse_outcome(obj.key)
        assert key is not None
        row = pq.read_table(io.BytesIO(store.get(obj.key))).to_pylist()[0]
        assert row["shard_id"] == key.shard_id
        if key.status == "succeeded":
            assert key.shard_id not in succeeded
            succeeded.add(key.shard_id)
        else:
            latest[key.shard_id] = max(latest.get(key.shard_id, 0), row["attempt"])
    return {
        k: "succeeded" if k in succeeded else "failed" if k in latest else "pending"
        for k in range(shards)
    }


def agrees(answer: dict[str, object], disk: dict[int, str]) -> None:
    failed = sorted(k for k, s in disk.items() if s == "failed")
    counts = {
        s: sum(1 for v in disk.values() if v == s) for s in ("succeeded", "failed", "pending")
    }
    assert answer["shards"] == counts
    assert answer["failed_shards"] == failed


def test_key_ranges_hold_every_key_exactly_once() -> None:
    rng = random.Random(5)
    store = S3LatencyStore(latency_s=0, page=7)
    keys = sorted(
        {f"p/status={rng.choice('ab')}/shard-{rng.randrange(5000):06d}" for _ in range(900)}
    )
    for key in keys:
        store.put(key, b"")
    store.put("q/outside", b"")
    for trial in range(20):
        cuts = key_ranges.shard_boundaries("p/status=a/", 5000, rng.randrange(1, 900))
        cuts += rng.sample(keys, trial) + ["p/", "p/zzz", "elsewhere", keys[0]] * (trial % 2)
        assert key_ranges.list_keys(store, "p/", cuts) == keys


def test_a_folder_of_a_page_or_less_is_one_request_whatever_its_boundaries() -> None:
    """A running run's failures and retry markers, nearly always none: one LIST each, not
    one a slice; a larger folder, its first page, then the slices past it."""
    store = S3LatencyStore(latency_s=0)
    for k in range(3500):
        MemoryStore.put(store, f"big/shard-{k:06d}", b"")  # not a modelled request
    for k in range(key_ranges.PAGE - 1):  # a full page might be followed by more: not taken
        MemoryStore.put(store, f"page/shard-{k:06d}", b"")
    cases = [("empty/", 100_000, 0, 1), ("page/", 100_000, 999, 1), ("big/", 3500, 3500, 4)]
    for prefix, shards, keys, requests in cases:
        before = store.requests
        listed = key_ranges.list_keys(store, prefix, key_ranges.shard_boundaries(prefix, shards))
        assert len(listed) == keys and listed == sorted(listed), prefix
        # big: its first page, then the three slices past shard 999, a page each
        assert store.requests - before == requests, prefix


def test_the_slices_past_the_first_page_are_listed_at_once() -> None:
    """A running run's outcomes past its first page are listed as key ranges in parallel (on
    S3 each page is a round trip): the three slices of 3,500 shards are in flight together."""
    store = S3LatencyStore(latency_s=0.05)
    for k in range(3500):
        MemoryStore.put(store, f"big/shard-{k:06d}", b"")  # not a modelled request
    listed = key_ranges.list_keys(store, "big/", key_ranges.shard_boundaries("big/", 3500))
    assert len(listed) == 3500
    assert store.most_in_flight == 3


def test_the_s3_model_charges_a_listing_its_pages_only() -> None:
    """A page a request, of up to 1,000 keys; a listing that starts after a key (StartAfter,
    a key range) costs the pages it returns, as on S3, not the keys before its start. A range
    that ends inside the prefix learns so from the page after its last key (S3 lists to the
    prefix's end), so a range of exactly one page costs two."""
    store = S3LatencyStore(latency_s=0)
    for k in range(5000):
        MemoryStore.put(store, f"p/{k:05d}", b"")  # not a modelled request
        MemoryStore.put(store, f"a/{k:05d}", b"")
    for after, until, pages, count in [
        (None, None, 5, 5000),
        ("p/03999", None, 1, 1000),
        ("p/00499", "p/01499", 2, 1000),
        ("p/00499", "p/01498", 1, 999),
        ("p/04999", None, 1, 0),
        ("p/", "p/02000", 3, 2001),
    ]:
        before = store.requests
        listed = [o.key for o in store.list_range("p/", after, until)]
        assert store.requests - before == pages and len(listed) == count, (after, until)
        assert listed == sorted(listed) and all(k.startswith("p/") for k in listed)


def test_a_complete_run_reads_its_summary_in_constant_work() -> None:
    requests = {}
    for shards in (50, 2500):
        store = S3LatencyStore(latency_s=0)
        inline = Inline(store)
        run_id = inline.submit(sweep(shards, fail=[3]))
        inline.drain()
        listed = status(store, run_id)  # finds the run complete from listings, stores summary
        assert listed["complete"] and store.exists(layout.summary(run_id))
        agrees(listed, on_disk(store, run_id, shards))
        before = store.requests
        assert status(store, run_id) == listed  # now from the summary
        requests[shards] = store.requests - before
    # manifest, summary, redrive lists, cancel, and the registered marker (queryable may still
    # change by itself, so it is read, not kept); cost is kept with the summary, checked
    # against one listing of the compactor's usage records (it runs after completion), and
    # the compaction's abandoned record: all issued at once (storage.together).
    assert requests[50] == requests[2500] <= 7


def test_a_redrive_makes_the_summary_stale_and_the_rerun_visible() -> None:
    store = MemoryStore()
    inline = Inline(store)
    run_id = inline.submit(sweep(30, fail=[4, 9]))
    inline.drain()
    first = status(store, run_id)
    assert first["complete"] and first["failed_shards"] == [4, 9]
    assert summary.read(store, run_id) is not None

    # A redrive list that lands after a summary was made hides nothing: the summary names
    # the redrive lists it was made after.
    redrive(inline.settings, store, inline.invoker, run_id, include_pending=False)
    assert store.exists(layout.summary(run_id)) and summary.read(store, run_id) is None
    running = status(store, run_id)
    assert not running["complete"] and running["shards"]["pending"] == 2
    agrees(
        running, on_disk(store, run_id, 30) | {4: "pending", 9: "pending"}
    )  # redriven shards are pending until a new attempt lands
    inline.drain()
    again = status(store, run_id)
    assert again["complete"] and again["failed_shards"] == [4, 9]  # injected: fail again
    assert again["redrives"] == {"redrive-1": {"dispatched": 2, "failed": 0}}
    assert summary.read(store, run_id) is not None
    agrees(again, on_disk(store, run_id, 30))


def test_the_run_listing_shares_the_summary() -> None:
    store = S3LatencyStore(latency_s=0)
    inline = Inline(store)
    done = inline.submit(sweep(20))
    inline.drain()
    running = inline.submit(sweep(20))
    runs = {r["run_id"]: r for r in list_runs(store, {})["runs"]}
    assert runs[done]["complete"] and not runs[running]["complete"]
    assert store.exists(layout.summary(done)) and not store.exists(layout.summary(running))


def copy_of(store: MemoryStore, into: MemoryStore) -> MemoryStore:
    for key, data in store.objects.items():
        MemoryStore.put(into, key, data)  # not a modelled request
    return into


def test_status_through_the_s3_model_equals_the_sequential_listing() -> None:
    """Status issues its independent reads at once, and lists usage records in key ranges
    (``runs.cost.usage_boundaries``) on a store that gains from it: the answer is the one the
    sequential reads give, field by field (cost, points, queryable included), running and
    complete, past the 1,000 shards where the ranges start."""
    shards = 2100
    store = MemoryStore()
    inline = Inline(store)
    run_id = inline.submit(sweep(shards, fail=[3, 1500]))
    inline.drain()
    lost = [7, 1001, 2099]  # these shards' outcomes are lost: the run is running
    for key in [o.key for o in store.list(layout.outcomes_prefix(run_id))]:
        parsed = layout.parse_outcome(key)
        if parsed is not None and parsed.shard_id in lost:
            store.delete(key)
    model = copy_of(store, S3LatencyStore(latency_s=0.001))
    sequential = status(store, run_id)
    assert not sequential["complete"] and sequential["shards"]["pending"] == len(lost)
    assert status(model, run_id) == sequential
    assert usage_boundaries_split(model, run_id)
    agrees(sequential, on_disk(store, run_id, shards))

    # Complete: the lost shards' outcomes land; each store finds it complete and keeps a summary.
    for k in lost:
        inline.invoker.queue.append(("worker", run_task_payload(load(store, run_id), k)))
    inline.drain()
    model = copy_of(store, S3LatencyStore(latency_s=0.001))
    complete = status(store, run_id)
    assert complete["complete"] and complete["failed_shards"] == [3, 1500]
    assert status(model, run_id) == complete  # from the listings, then from the summary
    assert status(model, run_id) == complete
    assert complete["cost"]["invocations"] >= shards and complete["points_succeeded"] == (
        shards - 2
    )


def usage_boundaries_split(store: MemoryStore, run_id: str) -> bool:
    """The usage listing really is cut in several ranges, each holding some records."""
    prefix = layout.usage_prefix(run_id)
    cuts = usage_boundaries(prefix, 2100)
    keys = [o.key for o in MemoryStore.list(store, prefix)]
    return len(cuts) == 2 and all(any(k < c for k in keys) for c in cuts)


def test_every_summary_writer_asks_for_compaction() -> None:
    """Whoever first finds a run complete and writes its summary (status, the run listing,
    cancel, the reconciler) hands it to the compactor, once (``storage.summary.listed``)."""
    readers: dict[str, Callable[[ObjectStore, str, QueueInvoker], object]] = {
        "status": lambda s, r, i: status(s, r, invoker=i),
        "listing": lambda s, r, i: list_runs(s, {}, i),
        "cancel": cancel_or_conflict,
        "reconciler": lambda s, r, i: reconcile(s, i, Settings(stage="dev")),
    }
    for name, read in readers.items():
        store = MemoryStore()
        inline = Inline(store)
        run_id = inline.submit(sweep(12))
        inline.drain()
        assert not store.exists(layout.summary(run_id))
        read(store, run_id, inline.invoker)
        assert store.exists(layout.summary(run_id)), name
        assert list(inline.invoker.queue) == [("compactor", {"run_id": run_id})], name
        read(store, run_id, inline.invoker)  # the summary stands: nobody asks again
        assert inline.invoker.sent["compactor"] == 1, name


def cancel_or_conflict(store: ObjectStore, run_id: str, invoker: QueueInvoker) -> None:
    with pytest.raises(Conflict):  # a complete run cannot be cancelled
        cancel(store, run_id, invoker)


class PollBeforeRecord(MemoryStore):
    """Runs ``poll`` just before the first leaf's dispatch record is stored: a user's status
    poll landing after the leaf's last shard finished, before the leaf wrote its record."""

    poll: Callable[[], object] | None = None

    def put(self, key: str, data: bytes) -> None:
        if layout.parse_dispatch_record(key) is not None and self.poll is not None:
            poll, self.poll = self.poll, None
            poll()
        super().put(key, data)


def test_a_summary_written_before_a_leafs_record_reads_the_counts_again() -> None:
    """Every shard has its outcome (one refused by Invoke: DISPATCH_FAILED) before the leaf
    records what it handed over: the status found complete then must not freeze the dispatch
    counts it saw (none); once the record lands they are read again and stored final."""
    store = PollBeforeRecord()
    inline = Inline(store)
    handed = inline.invoker.invoke

    def invoke(function: Function, payload: dict[str, Any]) -> None:
        if function == "worker" and payload["shard_id"] == 9:
            raise InvokeError("refused", retryable=False)
        handed(function, payload)
        if function == "worker":  # the worker runs at once, before the leaf is done
            inline.worker(inline.invoker.queue.pop()[1])

    inline.invoker.invoke = invoke  # type: ignore[method-assign]
    run_id = inline.submit(sweep(10))
    early: list[dict[str, Any]] = []
    store.poll = lambda: early.append(status(store, run_id))
    inline.drain()
    assert early and early[0]["complete"] and early[0]["dispatch"] == {"dispatched": 0, "failed": 0}
    assert json.loads(store.get(layout.summary(run_id))).get("dispatch_final") is False
    answer = status(store, run_id)
    assert answer["dispatch"] == {"dispatched": 9, "failed": 1} and answer["failed_shards"] == [9]
    assert json.loads(store.get(layout.summary(run_id)))["dispatch_final"] is True
