"""Compaction's invariants: a query sees every point once before, during and after it (DuckDB
over the local data root, and what a Glue partition points at on moto's S3 and Glue); a redrive
after it makes the new results visible; it is idempotent and safe to run twice at once; a
delivery arriving after it writes nothing; its invocations are charged to the run.

Runs go through the deployed code paths in-process (``tests.support.inline``); the clock is
passed in, so no test waits out the grace period.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from chalicelib.analytics import glue_schema
from chalicelib.analytics.catalog import Catalog, CatalogError, GlueCatalog, NoCatalog
from chalicelib.config import Settings
from chalicelib.execution.compaction import compact, compact_event, locations
from chalicelib.execution.failure_codes import FailureCode
from chalicelib.execution.failure_recorder import record_destination
from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing
from chalicelib.execution.worker import InjectedCrash, run_task
from chalicelib.fanout.dispatcher import run_event
from chalicelib.fanout.invoking import Function, InvokeError, compactor_trigger, encode
from chalicelib.fanout.reconcile import reconcile
from chalicelib.model import ids
from chalicelib.model.events import INITIAL, DispatchJob
from chalicelib.runs.cancel import cancel
from chalicelib.runs.redrive import redrive
from chalicelib.runs.status import status
from chalicelib.storage import compaction, layout, summary
from chalicelib.storage.stores import LocalStore, ObjectStore, S3Store, StorageError
from sweeps.engines.local import Listings, LocalEngine, table_files
from tests.support import destination_record, failed_codes
from tests.support.inline import Inline, QueueInvoker

SHARDS = 24
POINTS = 240
GRACE = 3600
DATABASE = "sweeps_test"
NO_COMPACTOR = compactor_trigger(None)  # these tests run the compactor themselves


def sweep(fail: list[int] | None = None, shards: int = SHARDS) -> dict[str, Any]:
    return {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 10, "stop": 10 + POINTS, "step": 1}}},
        "shards": {"count": shards},
        "fail_shards": fail or [],
    }


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "stage": "dev",
        "allow_fault_injection": True,  # as the dev stage's config sets it
        "dispatch_backoff_ms": 1,
        "compaction_target_mb": 1,
        "compaction_grace_s": GRACE,
    }
    return Settings(**(base | overrides))


class Clock:
    def __init__(self) -> None:
        self.t = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def complete_run(inline: Inline, body: dict[str, Any]) -> str:
    run_id = inline.submit(body)
    inline.drain()
    assert summary.run_progress(
        inline.store, run_id, body["shards"]["count"], NO_COMPACTOR
    ).complete
    return run_id


def counts(root: Path, run_id: str) -> dict[str, Any]:
    """What a user's queries see, through DuckDB over the data root."""
    engine = LocalEngine(root)
    points = engine.execute(
        f"SELECT count(*) AS n, count(DISTINCT point_index) AS d FROM results "
        f"WHERE run_id = '{run_id}'"
    ).rows[0]
    outcomes = engine.execute(
        f"SELECT status, count(*) AS n FROM outcomes WHERE run_id = '{run_id}' "
        "GROUP BY status ORDER BY status"
    ).rows
    return {"points": points["n"], "distinct": points["d"], "outcomes": outcomes}


def usage_rows(root: Path, run_id: str) -> list[tuple[Any, ...]]:
    """The run's usage rows as the local engine reads them, sorted (a multiset)."""
    rows = (
        LocalEngine(root)
        .execute(
            "SELECT function_name, what, memory_mb, duration_ms, s3_reads, s3_writes, bound "
            f"FROM usage WHERE run_id = '{run_id}'"
        )
        .rows
    )
    return sorted(tuple(r.values()) for r in rows)


def usage_listed(store: ObjectStore, run_id: str) -> list[tuple[Any, ...]]:
    """One row per usage record in the store (each record's row is its key), sorted."""
    return sorted(
        (u.function, u.what, u.memory_mb, u.duration_ms, u.s3_reads, u.s3_writes, u.bound)
        for obj in store.list(layout.usage_prefix(run_id))
        if (u := layout.parse_usage(obj.key)) is not None
    )


def assert_usage_once(store: LocalStore, run_id: str) -> None:
    """Every usage record is one row of the table, none twice, none missed."""
    listed = usage_listed(store, run_id)
    assert listed and usage_rows(store.root, run_id) == listed


@pytest.fixture
def inline(local_store: LocalStore) -> Inline:
    return Inline(local_store, settings())


def test_duckdb_sees_every_point_once_before_during_and_after(inline: Inline) -> None:
    store = inline.store
    assert isinstance(store, LocalStore)
    run_id = complete_run(inline, sweep(fail=[5]))
    before = counts(store.root, run_id)
    assert before["points"] == before["distinct"] == POINTS - POINTS // SHARDS
    assert_usage_once(store, run_id)

    # During: a compactor that wrote its parts but has not committed (it died, or is slow).
    real_commit = compaction.commit
    seen_during: list[dict[str, Any]] = []

    def commit_after_a_look(gen: compaction.Generation) -> bool:
        seen_during.append(counts(store.root, run_id))
        assert_usage_once(store, run_id)
        return real_commit(store, gen)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compaction, "commit", lambda _store, gen: commit_after_a_look(gen))
        # compact_event: the compactor's own usage record lands after its commit, unabsorbed
        answer = compact_event({"run_id": run_id}, store, inline.settings, NoCatalog())
        assert answer["status"] == "compacted"
    clock = Clock()  # the generation was pointed at (real time) by now
    assert seen_during == [before]
    assert_usage_once(store, run_id)
    usage_files = [f for f in table_files(store.root, "usage") if "/compacted/" not in f]
    assert [layout.parse_usage(f).function for f in usage_files] == ["compactor"]  # type: ignore[union-attr]

    gen = compaction.latest(store, run_id)
    assert gen is not None and gen.number == 1
    # After: the per-shard files are still there (grace), and DuckDB reads the parts only.
    assert counts(store.root, run_id) == before
    files = table_files(store.root, "results")
    assert [f for f in files if "/shard-" in f] == []
    assert len(files) == 1 and files[0].endswith(gen.parts["results"][0])
    assert store.exists(layout.results(run_id, 0))
    # Row groups in point_index order.
    part = pq.read_table(store.root / gen.parts["results"][0])
    assert part["point_index"].to_pylist() == sorted(part["point_index"].to_pylist())

    clock.advance(GRACE + 1)
    assert compact(store, run_id, inline.settings, NoCatalog(), clock)["status"] == "cleaned"
    assert not store.exists(layout.results(run_id, 0))
    assert counts(store.root, run_id) == before
    assert_usage_once(store, run_id)  # usage records are kept: the cost lists them
    assert compact(store, run_id, inline.settings, NoCatalog(), clock)["status"] == "clean"


def test_files_per_partition_are_at_most_bytes_over_target(local_store: LocalStore) -> None:
    inline = Inline(local_store, settings())
    body = sweep(shards=40)
    body["parameters"] = {"samples": {"range": {"start": 10, "stop": 40_010, "step": 1}}}
    run_id = complete_run(inline, body)
    # A tiny target: the parts must still number at most ceil(bytes / target).
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("chalicelib.execution.compaction.ROW_GROUP_ROWS", 1000)
        target = Settings(compaction_target_mb=1)
        compact(local_store, run_id, target, NoCatalog())
    gen = compaction.latest(local_store, run_id)
    assert gen is not None
    for partition, keys in gen.parts.items():
        size = sum((local_store.root / k).stat().st_size for k in keys)
        assert size == gen.part_bytes[partition]
        assert len(keys) <= max(1, math.ceil(size / (1024 * 1024))), (partition, len(keys), size)
    engine = LocalEngine(local_store.root)
    assert engine.execute("SELECT count(*) AS n FROM results").rows[0]["n"] == 40_000


def test_usage_parts_are_gzipped_json_lines_split_at_the_target(local_store: LocalStore) -> None:
    """The usage partition's parts (JSON Lines, gzipped) start anew once one reaches the target
    compressed, so they number at most ceil(bytes / target); their lines read back whole and in
    order."""
    from chalicelib.execution import compaction as compactor
    from chalicelib.storage.tables import usage_lines
    from tests.support.usage_files import read_usage

    entries = [
        layout.Usage("worker", layout.shard_what(k, "succeeded"), 1769, 3 + k % 7, 4, k % 13)
        for k in range(5000)
    ]
    text = usage_lines(entries)
    folder = layout.compacted_folder("usage", RUN_ID_FOR_PARTS, 1, "ab" * 8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compactor, "LINES_CHUNK", 100)
        keys, total = compactor._write_lines(local_store, folder, text, 4096)
    sizes = [(local_store.root / k).stat().st_size for k in keys]
    assert len(keys) > 1 and sum(sizes) == total
    assert len(keys) <= math.ceil(total / 4096)
    assert all(size >= 4096 for size in sizes[:-1])
    assert [layout.parse_compacted_part(k) for k in keys] == [(1, "ab" * 8)] * len(keys)
    rows = [r for k in keys for r in read_usage(local_store.get(k)).to_pylist()]
    assert rows == read_usage(text).to_pylist()
    assert compactor._write_lines(local_store, folder, b"", 4096) == ((), 0)


RUN_ID_FOR_PARTS = "20260316T080000000Z-00aa11bb22cc"


def test_a_usage_part_from_when_usage_was_parquet_is_not_read(local_store: LocalStore) -> None:
    """A data root compacted before the usage table was JSON: its generation names a Parquet
    usage part, which the local engine leaves out (DuckDB's JSON reader would fail every query
    on it); every other table still reads the generation."""
    inline = Inline(local_store, settings())
    run_id = complete_run(inline, sweep())
    compact(local_store, run_id, settings(), NoCatalog())
    seen = counts(local_store.root, run_id)
    assert seen["points"] > 0 and usage_rows(local_store.root, run_id)
    record = local_store.root / layout.compaction_record(run_id, 1)
    gen = json.loads(record.read_bytes())
    (part,) = gen["parts"]["usage"]
    old = part.removesuffix(".json.gz") + ".parquet"
    (local_store.root / part).unlink()
    (local_store.root / old).write_bytes(b"PAR1 written before usage was JSON")
    gen["parts"]["usage"] = [old]
    record.write_bytes(json.dumps(gen).encode())
    assert usage_rows(local_store.root, run_id) == []  # every record was in that generation
    assert counts(local_store.root, run_id) == seen


class RacingStore(LocalStore):
    """Two compactors reach their commit together (a barrier before the record's create)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.barrier = threading.Barrier(2, timeout=30)

    def create(self, key: str, data: bytes) -> bool:
        if layout.parse_compaction_record(key) is not None:
            self.barrier.wait()
        return super().create(key, data)


def test_two_compactors_at_once_commit_one_generation(tmp_path: Path) -> None:
    store = RacingStore(tmp_path / "data")
    inline = Inline(store, settings())
    run_id = complete_run(inline, sweep(fail=[2]))
    before = counts(store.root, run_id)
    answers: list[dict[str, Any]] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(compact(store, run_id, inline.settings, NoCatalog()))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(a["status"] for a in answers) == ["compacted", "raced"]
    records = list(store.list(layout.compaction_records_prefix(run_id)))
    assert [layout.parse_compaction_record(r.key) for r in records].count(1) == 1
    # The loser's parts are gone: one generation folder per partition remains.
    gen = compaction.latest(store, run_id)
    assert gen is not None
    leftover = [o.key for o in store.list(layout.COMPACTED) if gen.token not in o.key]
    assert leftover == []
    lists = [
        o.key
        for o in store.list(layout.compaction_records_prefix(run_id))
        if layout.parse_compaction_usage_absorbed(o.key) is not None
    ]
    assert lists == [layout.compaction_usage_absorbed(run_id, 1, gen.token)]
    assert counts(store.root, run_id) == before
    assert_usage_once(store, run_id)
    # Idempotent: once more changes nothing.
    store.barrier = threading.Barrier(1)
    assert compact(store, run_id, inline.settings, NoCatalog())["status"] == "compacted"
    assert compaction.latest(store, run_id) == gen


# -- Late deliveries: a shard whose state is decided is never run again -----------------------
# Lambda may deliver an event hours late, or twice. Each test below decides a shard one way (a
# success, a final failure from the worker, the dispatcher, the failure recorder or a cancel),
# lets the run complete and be compacted, then delivers the shard's event again: nothing is
# written (every key of the store, usage records included, byte for byte), and status still
# equals what the local engine reads of the Parquet, shard by shard, and its cost.


def snapshot(store: LocalStore) -> dict[str, bytes]:
    """Every object of the store, by key."""
    return snapshot_of(store, "")


def snapshot_of(store: LocalStore, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``, by key."""
    return {o.key: store.get(o.key) for o in store.list(prefix)}


def engine_agrees(store: LocalStore, run_id: str) -> dict[str, Any]:
    """Status, checked against the Parquet through the local engine: each shard's final status
    (the view ``shard_status``), the points (``results``) and the cost (``run_cost.sql`` over
    ``usage``). Returns status."""
    answer = status(store, run_id)
    engine = LocalEngine(store.root)
    rows = engine.execute(
        f"SELECT shard_id, final_status FROM shard_status WHERE run_id = '{run_id}'"
    ).rows
    states = {r["shard_id"]: r["final_status"] for r in rows}
    assert sorted(states) == list(range(answer["shard_count"]))
    assert answer["complete"] and answer["shards"] == {
        s: sum(v == s for v in states.values()) for s in ("succeeded", "failed", "pending")
    }
    assert answer["failed_shards"] == sorted(k for k, v in states.items() if v == "failed")
    seen = counts(store.root, run_id)
    assert answer["points_succeeded"] == seen["points"] == seen["distinct"]
    total = {r["function_name"]: r for r in engine.run("run_cost", run_id=run_id).rows}["total"]
    assert total["invocations"] == answer["cost"]["invocations"]
    assert total["usd"] == pytest.approx(answer["cost"]["usd"], abs=1e-9)
    return answer


def compacted_and_cleaned(store: LocalStore, inline: Inline, run_id: str) -> None:
    clock = Clock()
    assert compact(store, run_id, inline.settings, NoCatalog(), clock)["status"] == "compacted"
    clock.advance(GRACE + 1)
    assert compact(store, run_id, inline.settings, NoCatalog(), clock)["status"] == "cleaned"


def delivered_late(
    store: LocalStore, inline: Inline, run_id: str, payload: dict[str, Any], compacted: bool
) -> dict[str, Any]:
    """The run, complete (its status read: the summary and its cost stored) and, if
    ``compacted``, compacted and cleaned, gets ``payload`` delivered again: asserts it wrote
    nothing and changed no answer; returns the worker's."""
    before = engine_agrees(store, run_id)
    if compacted:
        compacted_and_cleaned(store, inline, run_id)
        before = engine_agrees(store, run_id)
    files = snapshot(store)
    answer = run_task(payload, None, store, 1000)
    assert snapshot(store) == files  # no outcome, no results, no usage record
    assert engine_agrees(store, run_id) == before
    return answer


class Keeping:
    """A worker that keeps each payload delivered, then runs it as Lambda would."""

    def __init__(self, inline: Inline) -> None:
        self.inline = inline
        self.delivered: dict[int, dict[str, Any]] = {}

    def __call__(self, payload: dict[str, Any]) -> Any:
        self.delivered.setdefault(payload["shard_id"], payload)
        return self.inline.run_worker(payload)


@pytest.mark.parametrize("compacted", [False, True], ids=["complete", "compacted"])
@pytest.mark.parametrize(
    ("fail", "answer"), [([], "duplicate"), ([3], "closed")], ids=["succeeded", "failed"]
)
def test_a_delivery_of_a_decided_shard_after_completion_writes_nothing(
    local_store: LocalStore, compacted: bool, fail: list[int], answer: str
) -> None:
    inline = Inline(local_store, settings())
    inline.worker = keep = Keeping(inline)
    run_id = complete_run(inline, sweep(fail=fail))
    # Hours later, Lambda delivers shard 3's event again.
    late = delivered_late(local_store, inline, run_id, keep.delivered[3], compacted)
    assert late["status"] == answer
    assert status(local_store, run_id)["failed_shards"] == fail


class ReachesLambdaButFails(QueueInvoker):
    """The worker's Invoke for ``shard`` fails (a timeout, say) after Lambda accepted the event:
    the dispatcher records DISPATCH_FAILED, and the event is ``held`` for a late delivery. Only
    the first invoke of the shard fails (a redrive's goes through)."""

    def __init__(self, shard: int) -> None:
        super().__init__()
        self.shard = shard
        self.held: list[dict[str, Any]] = []

    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        if function == "worker" and payload["shard_id"] == self.shard and not self.held:
            self.held.append(json.loads(encode(payload)))
            raise InvokeError("Read timeout on endpoint URL", retryable=False)
        super().invoke(function, payload)


@pytest.mark.parametrize("compacted", [False, True], ids=["complete", "compacted"])
def test_a_dispatch_failed_shard_delivered_late_writes_nothing(
    local_store: LocalStore, compacted: bool
) -> None:
    inline = Inline(local_store, settings())
    inline.invoker = invoker = ReachesLambdaButFails(4)
    run_id = complete_run(inline, sweep())
    assert failed_codes(local_store, run_id) == {4: ["DISPATCH_FAILED"]}
    late = delivered_late(local_store, inline, run_id, invoker.held[0], compacted)
    assert late["status"] == "closed"
    answer = status(local_store, run_id)
    assert answer["failed_shards"] == [4] and answer["dispatch"] == {"dispatched": 23, "failed": 1}
    # The leaf delivered again finds the run complete: it hands nothing out, writes nothing.
    files = snapshot(local_store)
    invoker.held.clear()
    leaf = DispatchJob(run_id, INITIAL, 0, SHARDS).to_payload()
    assert run_event(leaf, local_store, invoker, inline.settings, NoCatalog())["complete"]
    assert inline.drain() == 0 and not invoker.held
    assert snapshot(local_store) == files


def test_a_leaf_delivered_again_while_its_run_runs_records_no_second_dispatch_failure(
    local_store: LocalStore,
) -> None:
    """Shard 4's Invoke fails (DISPATCH_FAILED) and shard 9's event is held, so the run is still
    running when the leaf is delivered again: it hands its shards out again (each refused, 9
    held again), its Invoke of shard 4 failing once more (the event reaching Lambda once more:
    refused), and records no second DISPATCH_FAILED."""
    inline = Inline(local_store, settings())
    inline.invoker = invoker = ReachesLambdaButFails(4)
    held: list[dict[str, Any]] = []

    def hold_nine(payload: dict[str, Any]) -> Any:
        if payload["shard_id"] == 9:
            return held.append(payload)
        return inline.run_worker(payload)

    inline.worker = hold_nine
    run_id = inline.submit(sweep())
    inline.drain()
    assert failed_codes(local_store, run_id) == {4: ["DISPATCH_FAILED"]}
    assert not status(local_store, run_id)["complete"]
    outcomes = snapshot_of(local_store, "outcomes/")
    invoker.held.clear()
    leaf = DispatchJob(run_id, INITIAL, 0, SHARDS).to_payload()
    assert "complete" not in run_event(leaf, local_store, invoker, inline.settings, NoCatalog())
    assert inline.drain() == SHARDS - 1 and len(invoker.held) == 1 and len(held) == 2
    assert run_task(invoker.held[0], None, local_store, 1000)["status"] == "closed"
    assert snapshot_of(local_store, "outcomes/") == outcomes


@pytest.mark.parametrize("compacted", [False, True], ids=["complete", "compacted"])
def test_a_dispatch_job_delivered_after_completion_does_nothing(
    local_store: LocalStore, compacted: bool
) -> None:
    """A reusing run, complete (its summary stored) and, if ``compacted``, compacted (its points
    merged into its family's reuse index) and cleaned: its root job delivered again, hours
    later, registers, plans, marks pending and hands out nothing and writes nothing (before,
    it invoked all 24 workers, each refused, and marked the run pending in its family again
    after its merge, for every later plan to read)."""
    inline = Inline(local_store, settings())
    run_id = complete_run(inline, sweep() | {"reuse": True})
    if compacted:
        compacted_and_cleaned(local_store, inline, run_id)
    files = snapshot(local_store)
    root = DispatchJob(run_id, INITIAL, 0, SHARDS).to_payload()
    answer = run_event(root, local_store, inline.invoker, inline.settings, NoCatalog())
    assert answer == {"run_id": run_id, "job": INITIAL, "lo": 0, "hi": SHARDS, "complete": True}
    assert inline.drain() == 0
    assert snapshot(local_store) == files


def test_a_duplicate_after_retries_exhausted_writes_nothing(local_store: LocalStore) -> None:
    """Shard 2 crashes on each of Lambda's three tries, the failure recorder writes its final
    RETRIES_EXHAUSTED; then the event, and the OnFailure record, come once more."""
    inline = Inline(local_store, settings())
    tries: list[dict[str, Any]] = []

    def lambda_retries(payload: dict[str, Any]) -> Any:
        if payload["shard_id"] != 2:
            return inline.run_worker(payload)
        tries.append(payload)
        for _ in range(3):
            with pytest.raises(InjectedCrash):
                inline.run_worker(payload)
        crash = {"errorType": "InjectedCrash", "errorMessage": "shard 2 is in crash_shards"}
        return record_destination(destination_record(payload, response=crash), local_store)

    inline.worker = lambda_retries
    run_id = complete_run(inline, sweep() | {"crash_shards": [2]})
    assert failed_codes(local_store, run_id) == {2: ["RETRIES_EXHAUSTED"]}
    late = delivered_late(local_store, inline, run_id, tries[0], compacted=True)
    assert late["status"] == "closed"
    files = snapshot(local_store)
    crash = {"errorType": "InjectedCrash", "errorMessage": "again"}
    again = record_destination(destination_record(tries[0], response=crash), local_store)
    assert again["status"] == "already_closed" and snapshot(local_store) == files


def test_a_delivery_after_a_cancelled_run_completed_writes_nothing(
    local_store: LocalStore,
) -> None:
    """Shards 19-23 are held back; the run is cancelled; the deliveries of 20-23 then record
    CANCELLED (the worker's check before it evaluates). Their leaf delivered again while 19 is
    still out finds the run cancelled and hands nothing out: it records no second CANCELLED.
    19's delivery completes the run. A late duplicate of one of them writes nothing (before,
    it recorded a second CANCELLED attempt), nor does the leaf delivered once more."""
    inline = Inline(local_store, settings())
    held: list[dict[str, Any]] = []

    def hold_the_last_five(payload: dict[str, Any]) -> Any:
        if payload["shard_id"] >= 19:
            return held.append(payload)
        return inline.run_worker(payload)

    inline.worker = hold_the_last_five
    run_id = inline.submit(sweep())
    inline.drain()
    cancel(local_store, run_id)
    assert [run_task(p, None, local_store, 1000)["status"] for p in held[1:]] == ["failed"] * 4
    assert failed_codes(local_store, run_id) == {k: ["CANCELLED"] for k in range(20, 24)}
    outcomes = snapshot_of(local_store, "outcomes/")
    leaf = DispatchJob(run_id, INITIAL, 20, 24).to_payload()
    assert (
        run_event(leaf, local_store, inline.invoker, inline.settings, NoCatalog())["cancelled"] == 4
    )
    assert snapshot_of(local_store, "outcomes/") == outcomes
    assert run_task(held[0], None, local_store, 1000)["status"] == "failed"
    late = delivered_late(local_store, inline, run_id, held[2], compacted=True)
    assert late["status"] == "closed"
    answer = status(local_store, run_id)
    assert answer["cancelled"] and answer["failed_shards"] == [19, 20, 21, 22, 23]
    files = snapshot(local_store)
    assert run_event(leaf, local_store, inline.invoker, inline.settings, NoCatalog())["complete"]
    assert snapshot(local_store) == files


@pytest.mark.parametrize("compacted", [False, True], ids=["complete", "compacted"])
def test_a_redrive_of_a_failed_shard_still_runs_and_the_late_event_then_writes_nothing(
    local_store: LocalStore, compacted: bool
) -> None:
    """Shard 4 closed DISPATCH_FAILED; the run completes (and is compacted). A redrive reopens
    the shard: its delivery runs, and the result is visible to status and the local engine.
    The initial event, delivered after that, finds the success and writes nothing."""
    inline = Inline(local_store, settings())
    inline.invoker = invoker = ReachesLambdaButFails(4)
    run_id = complete_run(inline, sweep())
    assert engine_agrees(local_store, run_id)["failed_shards"] == [4]
    if compacted:
        compacted_and_cleaned(local_store, inline, run_id)
    assert redrive(inline.settings, local_store, invoker, run_id, False)["redriven"] == [4]
    assert status(local_store, run_id)["shards"]["pending"] == 1  # the summary is stale
    assert inline.drain() == 1
    answer = engine_agrees(local_store, run_id)
    assert answer["failed_shards"] == [] and answer["points_succeeded"] == POINTS
    assert answer["shards"]["succeeded"] == SHARDS
    assert failed_codes(local_store, run_id) == {4: ["DISPATCH_FAILED"]}
    late = delivered_late(local_store, inline, run_id, invoker.held[0], compacted)
    assert late["status"] == "duplicate"


def fail_finally(store: ObjectStore, run_id: str, payload: dict[str, Any]) -> None:
    """Shard's delivery lost, then a final failure recorded (what the reconciler's LOST is)."""
    ref = ShardRef.from_payload(payload)
    assert ref is not None
    t = datetime.now(UTC)
    OutcomeWriter(store).record_failure(ref, FailureCode.LOST, "lost", Timing(t, t), "")


def test_a_redrive_after_compaction_makes_the_new_results_visible(
    local_store: LocalStore,
) -> None:
    inline = Inline(local_store, settings())

    def lose_shard_4(payload: dict[str, Any]) -> Any:
        if payload["shard_id"] == 4 and not inline.store.exists(
            layout.redrive_list(payload["run_id"], layout.manual_redrive_job(1))
        ):
            return fail_finally(inline.store, payload["run_id"], payload)
        return inline.run_worker(payload)

    inline.worker = lose_shard_4
    run_id = complete_run(inline, sweep())
    clock = Clock()
    compact(local_store, run_id, inline.settings, NoCatalog(), clock)
    clock.advance(GRACE + 1)
    compact(local_store, run_id, inline.settings, NoCatalog(), clock)  # cleaned
    assert counts(local_store.root, run_id)["points"] == POINTS - POINTS // SHARDS

    redrive(inline.settings, local_store, inline.invoker, run_id, False)
    inline.drain()
    # At once on the local engine: the redriven shard's file is one the generation lacks.
    after = counts(local_store.root, run_id)
    assert after["points"] == after["distinct"] == POINTS
    assert compact(local_store, run_id, inline.settings, NoCatalog(), clock)["status"] == (
        "incomplete"
    )  # no summary yet for the redriven run
    assert status(local_store, run_id)["complete"]
    answer = compact(local_store, run_id, inline.settings, NoCatalog(), clock)
    gen = compaction.latest(local_store, run_id)
    assert answer["status"] == "compacted" and gen is not None and gen.number == 2
    assert 4 in gen.results_shards and gen.absorbed == frozenset({4})
    assert counts(local_store.root, run_id) == after
    part = pq.read_table(local_store.root / gen.parts["results"][0])
    assert part["point_index"].to_pylist() == list(range(POINTS))
    # Generation 2's usage part: generation 1's rows, and the records since (the redrive's).
    assert_usage_once(local_store, run_id)
    assert [f for f in table_files(local_store.root, "usage") if "/compacted/" not in f] == []
    assert gen.usage_records == len(usage_listed(local_store, run_id))


def test_compaction_is_charged_to_the_run_and_status_cost_follows(
    local_store: LocalStore,
) -> None:
    inline = Inline(local_store, settings())
    run_id = complete_run(inline, sweep())
    first = status(local_store, run_id)["cost"]  # cached in the summary now
    assert "compactor" not in first["by_function"]
    compact_event({"run_id": run_id}, local_store, inline.settings, NoCatalog())
    cost = status(local_store, run_id)["cost"]
    assert cost["by_function"]["compactor"]["invocations"] == 1
    assert cost["invocations"] == first["invocations"] + 1
    assert cost["lambda_gb_s"] > first["lambda_gb_s"]


def test_status_hands_a_complete_run_to_the_compactor_and_the_reconciler_retries(
    local_store: LocalStore,
) -> None:
    inline = Inline(local_store, settings(compaction_retry_s=0))
    run_id = inline.submit(sweep())
    inline.drain()
    status(local_store, run_id, invoker=inline.invoker)  # the summary's writer
    assert inline.invoker.sent["compactor"] == 1
    inline.invoker.queue.clear()  # the event is lost
    clock = Clock()
    assert reconcile(local_store, inline.invoker, inline.settings, clock) == {"compacting": 1}
    inline.drain()
    assert compaction.latest(local_store, run_id) is not None
    assert reconcile(local_store, inline.invoker, inline.settings, clock) == {"compacted": 1}
    clock.advance(GRACE + 1)
    assert reconcile(local_store, inline.invoker, inline.settings, clock) == {"compacting": 1}
    (function, event), *_ = inline.invoker.queue
    assert (function, event) == ("compactor", {"run_id": run_id})
    inline.invoker.queue.clear()  # run on the test's clock, past the grace period
    assert compact(local_store, run_id, inline.settings, NoCatalog(), clock)["status"] == "cleaned"
    assert reconcile(local_store, inline.invoker, inline.settings, clock) == {"complete": 1}
    assert not local_store.exists(layout.open_run(run_id))


# -- Athena: what a Glue partition points at, on moto's S3 and Glue -------------------------


@pytest.fixture
def glue() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("glue", region_name="us-east-1")
        client.create_database(DatabaseInput={"Name": DATABASE})
        yield client


def athena_reads(store: S3Store, glue: Any, table: str) -> int:
    """Rows Athena would read from the table: every object under each partition's location,
    read as the partition's SerDe says (Parquet, or JSON Lines for usage, gunzipped by a
    ``.gz`` extension)."""
    from tests.support.usage_files import read_usage

    rows = 0
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=table)
    for page in pages:
        for p in page["Partitions"]:
            where = p["StorageDescriptor"]["Location"]
            serde = p["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
            prefix = where.removeprefix(f"s3://{store.bucket}/{store.prefix}")
            for obj in store.list(prefix):
                data = store.get(obj.key)
                if serde == glue_schema.STORAGE["json"]["SerDe"]:
                    assert obj.key.endswith(".gz") == (data[:2] == b"\x1f\x8b"), obj.key
                    rows += read_usage(data).num_rows
                else:
                    rows += pq.read_metadata(io.BytesIO(data)).num_rows
    return rows


class FailingCatalog(Catalog):
    def register_run(self, run_id: str, dt: str) -> int:
        return 0

    def point_run(self, run_id: str, dt: str, folders: dict[str, str]) -> None:
        raise CatalogError("Glue is down")

    def points_at(self, run_id: str, dt: str, folders: dict[str, str]) -> bool:
        raise CatalogError("Glue is down")


def glue_tables(store: S3Store, glue: Any) -> GlueCatalog:
    """The tables in Glue (moto) over the store's bucket, and the catalog that points them."""
    location = f"s3://{store.bucket}/{store.prefix}".rstrip("/")
    for table in glue_schema.TABLES:
        glue.create_table(
            DatabaseName=DATABASE,
            TableInput=glue_schema.table_input(table, f"{location}/{table}/"),
        )
    return GlueCatalog(DATABASE, location, lambda: glue)


def test_athena_partitions_never_lose_a_file_under_a_query(s3_store: S3Store, glue: Any) -> None:
    catalog = glue_tables(s3_store, glue)
    inline = Inline(s3_store, settings())
    run_id = inline.submit(sweep(fail=[1]))
    dt = ids.run_dt(run_id)
    assert dt is not None
    catalog.register_run(run_id, dt)
    inline.drain()
    assert summary.run_progress(s3_store, run_id, SHARDS, NO_COMPACTOR).complete
    before = {t: athena_reads(s3_store, glue, t) for t in ("results", "outcomes", "usage")}
    assert before["results"] == POINTS - POINTS // SHARDS
    assert before["usage"] == len(usage_listed(s3_store, run_id))

    clock = Clock()
    # Glue fails: the generation is committed but nothing the partitions point at is deleted,
    # however long past the grace period.
    assert compact(s3_store, run_id, inline.settings, FailingCatalog(), clock)["status"] == (
        "unpointed"
    )
    clock.advance(10 * GRACE)
    assert compact(s3_store, run_id, inline.settings, FailingCatalog(), clock)["status"] == (
        "unpointed"
    )
    assert {t: athena_reads(s3_store, glue, t) for t in before} == before

    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "compacted"
    gen = compaction.latest(s3_store, run_id)
    assert gen is not None
    (results,) = glue.get_partitions(DatabaseName=DATABASE, TableName="results")["Partitions"]
    assert results["StorageDescriptor"]["Location"].endswith(
        layout.compacted_folder("results", run_id, 1, gen.token)
    )
    (usage,) = glue.get_partitions(DatabaseName=DATABASE, TableName="usage")["Partitions"]
    assert usage["StorageDescriptor"]["Location"].endswith(
        layout.compacted_folder("usage", run_id, 1, gen.token)
    )
    assert {t: athena_reads(s3_store, glue, t) for t in before} == before
    # The old files stay for the grace period after the partitions moved, then go.
    clock.advance(GRACE - 1)
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "compacted"
    assert s3_store.exists(layout.results(run_id, 0))
    clock.advance(2)
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "cleaned"
    assert not s3_store.exists(layout.results(run_id, 0))
    assert {t: athena_reads(s3_store, glue, t) for t in before} == before


def test_a_compacted_source_run_is_still_reused(local_store: LocalStore) -> None:
    """Its per-shard results files are gone after the grace period; its generation holds them."""
    inline = Inline(local_store, settings())
    source = complete_run(inline, sweep())
    clock = Clock()
    compact(local_store, source, inline.settings, NoCatalog(), clock)
    clock.advance(GRACE + 1)
    assert compact(local_store, source, inline.settings, NoCatalog(), clock)["status"] == "cleaned"
    assert not any(local_store.list(layout.results_prefix(source)))
    again = complete_run(inline, sweep() | {"reuse": True})
    answer = status(local_store, again)
    assert answer["points_reused"] == POINTS and answer["points_evaluated"] == 0


def test_the_engine_keeps_listings_only_while_nothing_changes(local_store: LocalStore) -> None:
    """A kept listing (``Listings``) is dropped when a folder's mtime moves or the run gets a
    new generation: a query after either sees the change."""
    inline = Inline(local_store, settings())
    run_id = complete_run(inline, sweep())
    root = local_store.root
    listings = Listings()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Listings, "SETTLE_S", -1.0)  # keep every listing, however fresh
        first = table_files(root, "results", listings)
        assert table_files(root, "results", listings) == first and len(first) == SHARDS
        compact(local_store, run_id, inline.settings, NoCatalog())
        (part,) = table_files(root, "results", listings)  # a new generation: filtered again
        assert "/compacted/" in part
        extra = root / layout.results(run_id, SHARDS)  # a file the generation lacks
        extra.write_bytes((root / layout.results(run_id, 0)).read_bytes())
        touch(extra.parent)
        # Read only once its shard's success outcome is there (a worker writes it last).
        assert table_files(root, "results", listings) == [part]
        (first_success, *_) = local_store.list(layout.succeeded_prefix(run_id))
        parsed = layout.parse_outcome(first_success.key)
        assert parsed is not None
        success = root / layout.outcome(run_id, "succeeded", parsed.dt, SHARDS, 1)
        success.write_bytes((root / first_success.key).read_bytes())
        touch(success.parent)
        assert table_files(root, "results", listings) == [part, extra.as_posix()]


def touch(folder: Path) -> None:
    """Move a folder's mtime on, as a later write into it does."""
    os.utime(folder, ns=(folder.stat().st_atime_ns, folder.stat().st_mtime_ns + 10**9))


def test_a_crashed_compactors_parts_are_never_read_and_go_at_clean_up(
    local_store: LocalStore,
) -> None:
    inline = Inline(local_store, settings())
    run_id = complete_run(inline, sweep())
    before = counts(local_store.root, run_id)

    def crash(_store: ObjectStore, _gen: compaction.Generation) -> bool:
        raise RuntimeError("killed before its commit")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compaction, "commit", crash)
        with pytest.raises(RuntimeError):
            compact(local_store, run_id, inline.settings, NoCatalog())
    orphans = [o.key for o in local_store.list(layout.COMPACTED)]
    orphans += [
        o.key
        for o in local_store.list(layout.compaction_records_prefix(run_id))
        if layout.parse_compaction_usage_absorbed(o.key) is not None
    ]
    tables = {k.split("/")[1] for k in orphans if k.startswith(layout.COMPACTED)}
    assert tables == set(layout.COMPACTED_TABLES) and orphans[-1].endswith(".usage.gz")
    assert compaction.latest(local_store, run_id) is None
    assert counts(local_store.root, run_id) == before  # uncommitted parts are not read
    assert_usage_once(local_store, run_id)
    clock = Clock()
    compact(local_store, run_id, inline.settings, NoCatalog(), clock)
    assert counts(local_store.root, run_id) == before
    clock.advance(GRACE + 1)
    assert compact(local_store, run_id, inline.settings, NoCatalog(), clock)["status"] == "cleaned"
    assert not any(local_store.exists(k) for k in orphans)
    assert counts(local_store.root, run_id) == before


def test_a_compaction_that_fails_for_good_is_tried_a_bounded_number_of_times(
    local_store: LocalStore,
) -> None:
    """Each try is charged to the run: after ``compaction_max_tries`` asks the reconciler gives
    up, closes the run, and status says so; queries read the per-shard files, every point
    once. A redrive gives the run a new chance."""
    inline = Inline(local_store, settings(compaction_retry_s=0, compaction_max_tries=2))
    run_id = inline.submit(sweep(fail=[6]))
    inline.drain()
    clock = Clock()

    def too_large(*_args: Any) -> None:
        raise RuntimeError("the run does not fit in the compactor's timeout")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("chalicelib.execution.compaction._write_generation", too_large)
        status(local_store, run_id, invoker=inline.invoker)  # the summary writer's ask
        passes = []
        for _ in range(4):
            if inline.invoker.queue:
                with pytest.raises(RuntimeError):  # each try fails (and is charged)
                    inline.drain()
            passes.append(reconcile(local_store, inline.invoker, inline.settings, clock))
    assert passes == [{"compacting": 1}, {"compacting": 1}, {"complete": 1}, {}]
    assert inline.invoker.sent["compactor"] == 1 + 2  # the writer's ask, then two retries
    assert not local_store.exists(layout.open_run(run_id))
    answer = status(local_store, run_id)
    assert answer["complete"] and answer["compaction_abandoned"]
    assert answer["cost"]["by_function"]["compactor"]["invocations"] == 3
    seen = counts(local_store.root, run_id)
    assert seen["points"] == seen["distinct"] == POINTS - POINTS // SHARDS
    assert_usage_once(local_store, run_id)

    # A redrive: the run is complete again with new redrive jobs, and compacted this time.
    redrive(inline.settings, local_store, inline.invoker, run_id, False)
    inline.drain()
    assert not status(local_store, run_id, invoker=inline.invoker)["compaction_abandoned"]
    inline.drain()
    assert compaction.latest(local_store, run_id) is not None


def test_a_compaction_given_up_at_its_clean_up_is_not_reported_abandoned(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generation is committed and pointed; only deleting what it replaced keeps failing.
    The reconciler gives up after its tries and closes the run, but readers use the
    generation, so status does not say ``compaction_abandoned`` (which means: read from the
    per-shard files); the replaced files stay."""
    inline = Inline(
        local_store, settings(compaction_retry_s=0, compaction_max_tries=2, compaction_grace_s=0)
    )
    run_id = inline.submit(sweep(fail=[6]))
    inline.drain()

    def refused(keys: Any) -> None:
        raise StorageError("delete refused")

    monkeypatch.setattr(local_store, "delete_many", refused)
    clock = Clock()
    status(local_store, run_id, invoker=inline.invoker)  # the summary writer's ask
    passes = []
    for _ in range(6):
        with contextlib.suppress(StorageError):  # the clean-up's try fails (and is charged)
            inline.drain()
        passes.append(reconcile(local_store, inline.invoker, inline.settings, clock))
        clock.advance(1)
    assert {"complete": 1} in passes and passes[-1] == {}, passes
    abandoned = compaction.abandoned_for(local_store, run_id)
    assert abandoned is not None and abandoned.step == "clean"
    gen = compaction.latest(local_store, run_id)
    assert gen is not None and compaction.pointed_at(local_store, run_id, gen.number)
    answer = status(local_store, run_id)
    assert answer["complete"] and answer["compaction_abandoned"] is False
    seen = counts(local_store.root, run_id)
    assert seen["points"] == seen["distinct"] == POINTS - POINTS // SHARDS
    assert list(local_store.list(layout.results_prefix(run_id)))  # what it replaced stays


class SuccessOutcomeFails(LocalStore):
    """A folder store whose success outcome writes fail (S3 answering 500 to the PUT after
    the results PUT landed)."""

    def create(self, key: str, data: bytes) -> bool:
        if "status=succeeded" in key:
            raise StorageError(f"write {key}: InternalError")
        return super().create(key, data)


def test_a_shard_that_never_succeeded_leaves_no_rows_in_results_or_reuse(
    local_store: LocalStore,
) -> None:
    """Shard 1's results landed, its success outcome's write failed, and the run was cancelled
    before Lambda's retry, which recorded CANCELLED: the shard failed for good, its results
    file stays. Neither the results table (before and after compaction) nor a later run's
    reuse reads it: results hold the points of succeeded shards only (contract)."""
    settings = Settings(stage="local", backend="local", local_root=local_store.root)
    inline = Inline(local_store, settings)
    held: list[dict[str, Any]] = []

    def worker(payload: dict[str, Any]) -> Any:
        if payload["shard_id"] == 1 and not held:
            held.append(payload)
            with pytest.raises(StorageError):  # Lambda retries the event later
                run_task(payload, None, SuccessOutcomeFails(local_store.root), 0)
            return None
        return inline.run_worker(payload)

    inline.worker = worker
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [100, 200, 300, 400, 500, 600]}},
        "shards": {"count": 3},
    }
    run_id = inline.submit(body)
    inline.drain()
    assert local_store.exists(layout.results(run_id, 1))
    cancel(local_store, run_id)
    assert run_task(held[0], None, local_store, 0)["error_code"] == "CANCELLED"
    answer = status(local_store, run_id)
    assert answer["complete"] and answer["failed_shards"] == [1]

    def rows() -> list[tuple[int, int]]:
        query = f"SELECT shard_id, point_index FROM results WHERE run_id = '{run_id}' ORDER BY 2"
        found = LocalEngine(local_store.root).execute(query).rows
        return [(r["shard_id"], r["point_index"]) for r in found]

    assert rows() == [(0, 0), (0, 1), (2, 4), (2, 5)]
    compact_event({"run_id": run_id}, local_store, settings, NoCatalog())
    assert rows() == [(0, 0), (0, 1), (2, 4), (2, 5)]

    again = Inline(local_store, settings)
    reusing = again.submit(body | {"reuse": True})
    again.drain()
    assert status(local_store, reusing)["points_reused"] == 4
    query = f"SELECT point_index, source_run_id FROM results WHERE run_id = '{reusing}' ORDER BY 1"
    copied = LocalEngine(local_store.root).execute(query).rows
    assert [r["point_index"] for r in copied if r["source_run_id"] == run_id] == [0, 1, 4, 5]


@pytest.mark.parametrize(
    "event",
    [{}, None, {"run_id": 7}, {"run_id": "nope"}, {"run_id": "20260101/../../etc"}],
)
def test_a_compaction_event_naming_no_run_is_rejected(local_store: LocalStore, event: Any) -> None:
    """Answered, not raised: Lambda would retry a raise (twice, each charged)."""
    answer = compact_event(event, local_store, settings(), NoCatalog())
    assert answer == {"status": "rejected"}
    assert list(local_store.list("")) == []


def athena_points(store: S3Store, glue: Any) -> list[int]:
    """Every ``point_index`` Athena would read from the table results (its partitions'
    locations), duplicates kept."""
    found: list[int] = []
    pages = glue.get_paginator("get_partitions").paginate(
        DatabaseName=DATABASE, TableName="results"
    )
    for page in pages:
        for p in page["Partitions"]:
            where = p["StorageDescriptor"]["Location"]
            prefix = where.removeprefix(f"s3://{store.bucket}/{store.prefix}")
            for obj in store.list(prefix):
                table = pq.read_table(io.BytesIO(store.get(obj.key)), columns=["point_index"])
                found += table["point_index"].to_pylist()
    return found


def redriven_run(s3_store: S3Store, glue: Any) -> tuple[GlueCatalog, Inline, str, str]:
    """A run on S3 and Glue (moto) whose shard 4 failed for good until its first redrive."""
    catalog = glue_tables(s3_store, glue)
    inline = Inline(s3_store, settings())

    def lose_shard_4(payload: dict[str, Any]) -> Any:
        if payload["shard_id"] == 4 and not s3_store.exists(
            layout.redrive_list(payload["run_id"], layout.manual_redrive_job(1))
        ):
            return fail_finally(s3_store, payload["run_id"], payload)
        return inline.run_worker(payload)

    inline.worker = lose_shard_4
    run_id = inline.submit(sweep())
    dt = ids.run_dt(run_id)
    assert dt is not None
    catalog.register_run(run_id, dt)
    inline.drain()
    assert status(s3_store, run_id)["failed_shards"] == [4]
    return catalog, inline, run_id, dt


def test_on_athena_a_redrive_after_compaction_is_visible_once_compacted_again(
    s3_store: S3Store, glue: Any
) -> None:
    """On S3 and Glue (moto): a run compacted and cleaned, then a shard redriven. Athena keeps
    reading generation 1 (the redriven shard's new file is outside its location: documented)
    until status finds the run complete again and the compactor commits generation 2, which
    the partition then points at: every point once, none missing."""
    catalog, inline, run_id, _ = redriven_run(s3_store, glue)
    clock = Clock()
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "compacted"
    clock.advance(GRACE + 1)
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "cleaned"
    missing = set(range(POINTS)) - set(athena_points(s3_store, glue))
    assert len(missing) == POINTS // SHARDS  # shard 4's points

    redrive(inline.settings, s3_store, inline.invoker, run_id, False)
    inline.drain()
    assert sorted(athena_points(s3_store, glue)) == sorted(set(range(POINTS)) - missing)
    assert status(s3_store, run_id)["complete"]  # a new summary for the redriven run
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "compacted"
    gen = compaction.latest(s3_store, run_id)
    assert gen is not None and gen.number == 2
    (results,) = glue.get_partitions(DatabaseName=DATABASE, TableName="results")["Partitions"]
    assert results["StorageDescriptor"]["Location"].endswith(
        layout.compacted_folder("results", run_id, 2, gen.token)
    )
    assert sorted(athena_points(s3_store, glue)) == list(range(POINTS))


def results_generation(glue: Any) -> int:
    """The generation the results partition points at (its folder ``gen-NNNNNN-token/``)."""
    (p,) = glue.get_partitions(DatabaseName=DATABASE, TableName="results")["Partitions"]
    folder = p["StorageDescriptor"]["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert folder.startswith("gen-")
    return int(folder.split("-")[1])


def test_a_compactor_that_points_late_never_leaves_athena_on_deleted_files(
    s3_store: S3Store, glue: Any
) -> None:
    """Compactor X commits generation 1 and, before its BatchUpdatePartition lands, the
    shard is redriven and compactor Y commits generation 2 and points Glue at it; then X's
    call lands. Glue has no conditional update: X moved the partitions back to generation 1,
    which generation 2's clean-up then deleted (Athena read none of the 240 points)."""
    catalog, inline, run_id, _ = redriven_run(s3_store, glue)
    clock = Clock()

    class LateX(GlueCatalog):
        def point_run(self, rid: str, d: str, folders: dict[str, str]) -> None:
            if not hasattr(self, "overtaken"):
                self.overtaken = True
                redrive(inline.settings, s3_store, inline.invoker, run_id, False)
                inline.drain()
                assert status(s3_store, run_id)["complete"]
                y = compact(s3_store, run_id, inline.settings, catalog, clock)
                assert y == {"status": "compacted", "generation": 2}
            super().point_run(rid, d, folders)

    late = LateX(DATABASE, catalog.location, lambda: glue)
    x = compact(s3_store, run_id, inline.settings, late, clock)
    assert x == {"status": "compacted", "generation": 2}  # X saw generation 2 and pointed it
    assert results_generation(glue) == 2
    assert sorted(athena_points(s3_store, glue)) == list(range(POINTS))
    clock.advance(GRACE + 1)
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "cleaned"
    assert sorted(athena_points(s3_store, glue)) == list(range(POINTS))


def test_partitions_moved_back_are_pointed_again_before_anything_is_deleted(
    s3_store: S3Store, glue: Any
) -> None:
    """The late pointing of a compactor that died before it could look again: found at
    clean-up time, the partitions are pointed at the latest generation again and the grace
    period starts over; nothing is deleted under them."""
    catalog, inline, run_id, dt = redriven_run(s3_store, glue)
    clock = Clock()
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "compacted"
    first = compaction.latest(s3_store, run_id)
    assert first is not None
    redrive(inline.settings, s3_store, inline.invoker, run_id, False)
    inline.drain()
    assert status(s3_store, run_id)["complete"]
    assert compact(s3_store, run_id, inline.settings, catalog, clock) == {
        "status": "compacted",
        "generation": 2,
    }
    catalog.point_run(run_id, dt, locations(first, dt))  # the dead compactor's call
    assert results_generation(glue) == 1
    clock.advance(GRACE + 1)
    assert compact(s3_store, run_id, inline.settings, catalog, clock) == {
        "status": "repointed",
        "generation": 2,
    }
    assert results_generation(glue) == 2
    assert sorted(athena_points(s3_store, glue)) == list(range(POINTS))
    clock.advance(GRACE - 1)  # the grace runs from the pointing again
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "compacted"
    clock.advance(2)
    assert compact(s3_store, run_id, inline.settings, catalog, clock)["status"] == "cleaned"
    assert sorted(athena_points(s3_store, glue)) == list(range(POINTS))
