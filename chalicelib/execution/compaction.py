"""The compactor: a complete run's per-shard files rewritten into a few large Parquet files.

Athena pays per file (aws-facts: 201 s at 100 rows a file against 2.8 s at 100,000 for the same
rows), and a 10,000-shard run leaves 20,000 small files. Once a run is complete its rows change
only through a redrive, so it is rewritten here into parts of about ``compaction_target_mb``
each (row groups in point_index order), committed as a generation (``storage.compaction``),
and the run's Glue partitions are pointed at the generation's folders (BatchUpdatePartition).

Every step is safe to repeat and to run twice at once: each compactor writes under its own
token, the generation is committed by one conditional create, the loser deletes only its own
uncommitted files, and pointing the catalog is idempotent. Nothing a reader may still use is
deleted: what a generation replaced goes only once the catalog has pointed at the generation
for ``compaction_grace_s`` (longer than Athena's longest query), on a later invocation that the
reconciler makes (``fanout.reconcile``).
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chalicelib.analytics.catalog import Catalog, CatalogError
from chalicelib.config import Settings
from chalicelib.execution import reuse, usage
from chalicelib.logs import logger
from chalicelib.model import ids
from chalicelib.storage import compaction, layout, summary
from chalicelib.storage.compaction import RESULTS, USAGE, Generation
from chalicelib.storage.stores import CountingStore, ObjectStore
from chalicelib.storage.tables import GATHER, OUTCOMES, gathered, usage_lines
from chalicelib.storage.tables import RESULTS as RESULTS_SCHEMA
from chalicelib.storage.together import read_ahead

# Rows per row group of a compacted results file: large enough that Athena reads few groups
# (each a few MB for option pricing), small enough that the compactor holds one at a time.
ROW_GROUP_ROWS = 131_072

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def compact_event(
    event: Any, store: ObjectStore, settings: Settings, catalog: Catalog
) -> dict[str, Any]:
    """The compactor function's handler body: ``{"run_id": …}`` from the summary's writer or
    the reconciler; the invocation is charged to the run (a usage record)."""
    run_id = event.get("run_id") if isinstance(event, dict) else None
    if not ids.is_run_id(run_id) or ids.run_dt(run_id) is None:
        logger.error("compaction event names no run", extra={"event": event})
        return {"status": "rejected"}
    counting = CountingStore(store)
    started_ns = time.monotonic_ns()
    ended = "raised"
    try:
        found = compact(counting, run_id, settings, catalog)
        ended = found["status"]
        return found
    finally:
        usage.record(counting, run_id, "compactor", f"compaction-{ended}", started_ns)


def compact(
    store: ObjectStore,
    run_id: str,
    settings: Settings,
    catalog: Catalog,
    now: Clock = _utcnow,
) -> dict[str, Any]:
    """Bring a complete run's compaction up to date: write and commit a generation if the latest
    one predates the run's last redrive (or there is none), point the catalog at it, and
    delete what it replaced once the grace period is over. Returns what it did."""
    progress = summary.read(store, run_id)
    if progress is None:
        return {"status": "incomplete"}  # compacted once complete (a redrive reopened it)
    dt = ids.run_dt(run_id)
    assert dt is not None  # checked by the caller
    latest = compaction.latest(store, run_id)
    if latest is None or latest.redrive_jobs != progress.redrive_jobs:
        made = _write_generation(store, run_id, dt, progress.redrive_jobs, latest, settings, now)
        if made is None:
            return {"status": "raced"}
        latest = made
    # Its reuse index into its family's merged one, read from the generation in hand.
    reuse.merge_run(store, run_id, catalog, generation=latest)
    pointed = compaction.pointed_at(store, run_id, latest.number)
    if pointed is None:
        try:
            newest = _point(store, catalog, latest, dt)
        except CatalogError:
            logger.exception("compacted run not pointed at; the reconciler retries")
            return {"status": "unpointed", "generation": latest.number}
        compaction.mark_pointed(store, run_id, newest.number, now())
        if newest.number != latest.number:  # a newer one was committed meanwhile: its turn
            return {"status": "compacted", "generation": newest.number}
        pointed = compaction.pointed_at(store, run_id, latest.number) or now()
    if compaction.cleaned(store, run_id, latest.number):
        return {"status": "clean", "generation": latest.number}
    if not compaction.cleanup_due(pointed, settings.compaction_grace_s, now()):
        return {"status": "compacted", "generation": latest.number}
    if reuse.pending(store, run_id):  # plans read its per-shard results until it is merged
        return {"status": "compacted", "generation": latest.number, "pending_merge": True}
    folders = locations(latest, dt)
    try:  # never delete what a partition still points at
        where = catalog.points_at(run_id, dt, folders)
        if not where:
            catalog.point_run(run_id, dt, folders)
    except CatalogError:
        logger.exception("compacted run's partitions not checked; the reconciler retries")
        return {"status": "unpointed", "generation": latest.number}
    if not where:  # moved back by a compactor that pointed late: the grace starts again
        logger.warning("compacted run pointed at again", extra={"run_id": run_id})
        compaction.mark_pointed(store, run_id, latest.number, now(), again=True)
        return {"status": "repointed", "generation": latest.number}
    replaced = compaction.replaced_keys(store, latest)
    store.delete_many(replaced)
    store.put(layout.compaction_cleaned(run_id, latest.number), b"")
    return {"status": "cleaned", "generation": latest.number, "deleted": len(replaced)}


def _point(store: ObjectStore, catalog: Catalog, gen: Generation, dt: str) -> Generation:
    """Point the catalog at ``gen``, then at whatever generation is newest once that call has
    landed: a compactor that read the generations before a newer one was committed points
    late, and may land after the newer one's pointing. Read after each call, a newer
    generation is seen here whenever its own pointing could have come first. Returns the
    generation pointed at last. Glue has no conditional update: the last call wins."""
    while True:
        catalog.point_run(gen.run_id, dt, locations(gen, dt))
        newer = compaction.latest(store, gen.run_id)
        if newer is None or newer.number <= gen.number:
            return gen
        gen = newer


def locations(gen: Generation, dt: str) -> dict[str, str]:
    return _folders(gen.run_id, gen.number, gen.token, dt)


def _folders(run_id: str, number: int, token: str, dt: str) -> dict[str, str]:
    """Each partition's folder in one generation (``Catalog.point_run``'s argument)."""
    return {
        RESULTS: layout.compacted_folder("results", run_id, number, token),
        **{
            f"outcomes/{status}": layout.compacted_folder(
                "outcomes", run_id, number, token, status, dt
            )
            for status in compaction.STATUSES
        },
        USAGE: layout.compacted_folder("usage", run_id, number, token),
    }


def _write_generation(
    store: ObjectStore,
    run_id: str,
    dt: str,
    redrive_jobs: tuple[str, ...],
    previous: Generation | None,
    settings: Settings,
    now: Clock,
) -> Generation | None:
    """Write the next generation's parts and commit it; None if another compactor committed
    that number first (this one's parts are then deleted: nobody reads them)."""
    number = previous.number + 1 if previous else 1
    token = uuid.uuid4().hex[:16]
    outcome_keys = [
        key
        for obj in store.list(layout.outcomes_prefix(run_id))
        if (key := layout.parse_outcome(obj.key)) is not None
    ]
    succeeded = {k.shard_id for k in outcome_keys if k.status == "succeeded"}
    failed: dict[int, int] = dict(previous.failed) if previous else {}
    for k in outcome_keys:
        if k.status == "failed":
            failed[k.shard_id] = max(k.attempt, failed.get(k.shard_id, 0))
    held = previous.results_shards if previous else frozenset()
    absorbed = sorted(
        shard
        for obj in store.list(layout.results_prefix(run_id))
        if (shard := compaction.shard_of_results(obj.key)) is not None
        and shard in succeeded
        and shard not in held
    )
    target = settings.compaction_target_mb * 1024 * 1024
    folders = _folders(run_id, number, token, dt)
    parts: dict[str, tuple[str, ...]] = {}
    sizes: dict[str, int] = {}
    previous_parts = previous.parts if previous else {}
    results = _results_tables(store, run_id, previous_parts.get(RESULTS, ()), absorbed)
    parts[RESULTS], sizes[RESULTS] = _write_parts(
        store, folders[RESULTS], RESULTS_SCHEMA, results, target
    )
    for status in compaction.STATUSES:
        name = f"outcomes/{status}"
        fresh = [
            layout.outcome(run_id, k.status, k.dt, k.shard_id, k.attempt)
            for k in outcome_keys
            if k.status == status and (previous is None or not previous.holds_outcome(k))
        ]
        table = _outcomes_table(store, [*previous_parts.get(name, ()), *fresh])
        parts[name], sizes[name] = _write_parts(
            store, folders[name], OUTCOMES, iter([table]), target
        )
    usage_names = _write_usage(store, run_id, previous, folders[USAGE], target, parts, sizes)
    compaction.write_absorbed_usage(store, run_id, number, token, usage_names)
    gen = Generation(
        run_id,
        number,
        token,
        now(),
        redrive_jobs,
        held | frozenset(absorbed),
        frozenset(succeeded),
        failed,
        parts,
        sizes,
        frozenset(absorbed),
        len(usage_names),
    )
    if not compaction.commit(store, gen):
        for part in (k for keys in parts.values() for k in keys):
            store.delete(part)
        store.delete(layout.compaction_usage_absorbed(run_id, number, token))
        return None
    logger.info(
        "run compacted",
        extra={"run_id": run_id, "generation": number, "absorbed": len(absorbed), **sizes},
    )
    return gen


def _write_usage(
    store: ObjectStore,
    run_id: str,
    previous: Generation | None,
    folder: str,
    target: int,
    parts: dict[str, tuple[str, ...]],
    sizes: dict[str, int],
) -> set[str]:
    """The usage partition: the rows of every record the previous generation held and of those
    it did not. A record's row is all in its key (``layout.Usage``), and a generation names the
    records it holds, so the records are listed, never read, and neither are the previous
    generation's parts: one listing whatever the run's size. Returns the names of every record
    the part holds."""
    held = compaction.absorbed_usage(store, previous)
    prefix = layout.usage_prefix(run_id)
    fresh = {
        name
        for obj in store.list(prefix)
        if layout.parse_usage(obj.key) is not None
        and (name := obj.key.rsplit("/", 1)[-1]) not in held
    }
    names = held | fresh
    entries = [layout.parse_usage(prefix + name) for name in sorted(names)]
    rows = sorted((e for e in entries if e is not None), key=lambda e: (e.function, e.what))
    parts[USAGE], sizes[USAGE] = _write_lines(store, folder, usage_lines(rows), target)
    return set(names)


# Lines gzipped at a time into a usage part (a few MB of text), so a part's size is known as
# it grows and a new part starts once one reaches the target.
LINES_CHUNK = 65_536


def _write_lines(
    store: ObjectStore, folder: str, text: bytes, target_bytes: int
) -> tuple[tuple[str, ...], int]:
    """JSON Lines into gzipped parts under ``folder``, as ``_write_parts`` does Parquet: a new
    part once one reaches ``target_bytes`` (compressed), so a partition of B bytes has at most
    ceil(B / target) parts. No part for no lines."""
    keys: list[str] = []
    total = 0
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines):
        fd, name = tempfile.mkstemp(dir=store.scratch(), prefix=".tmp-part-", suffix=".json.gz")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
                while start < len(lines) and raw.tell() < target_bytes:
                    out.write(b"".join(lines[start : start + LINES_CHUNK]))
                    start += LINES_CHUNK
                    out.flush()
            key = layout.compacted_part(folder, len(keys), ".json.gz")
            total += path.stat().st_size
            store.create_file(key, path)
            keys.append(key)
        finally:
            path.unlink(missing_ok=True)
    return tuple(keys), total


def _read(store: ObjectStore, key: str) -> pq.ParquetFile:
    return _parquet(store.get(key))


def _parquet(data: bytes) -> pq.ParquetFile:
    return pq.ParquetFile(io.BytesIO(data))


def _row_groups(data: bytes) -> Iterator[pa.Table]:
    f = _parquet(data)
    for group in range(f.num_row_groups):
        yield f.read_row_group(group)


def _results_tables(
    store: ObjectStore, run_id: str, previous: tuple[str, ...], absorbed: list[int]
) -> Iterator[pa.Table]:
    """The previous generation's row groups and the absorbed shards' files, merged in shard
    (hence point_index) order: a redriven shard's rows go where its index range belongs, so a
    row group of the previous generation that spans it is split around it. The absorbed
    shards' files are read ahead, several at once where the store gains from it."""
    files = read_ahead(store, [layout.results(run_id, shard) for shard in absorbed], store.get)
    fresh = zip(absorbed, files, strict=True)
    pending = next(fresh, None)
    for key in previous:
        f = _read(store, key)
        for group in range(f.num_row_groups):
            table = f.read_row_group(group)
            shards = table["shard_id"]
            last = pc.max(shards).as_py()
            while pending is not None and pending[0] <= last:
                before = pc.less(shards, pending[0])
                head = table.filter(before)
                if head.num_rows:
                    yield head
                table = table.filter(pc.invert(before))
                shards = table["shard_id"]
                yield from _row_groups(pending[1])
                pending = next(fresh, None)
            if table.num_rows:
                yield table
    while pending is not None:
        yield from _row_groups(pending[1])
        pending = next(fresh, None)


def _outcomes_table(store: ObjectStore, keys: list[str]) -> pa.Table:
    """One row per attempt (outcome files are one row each; a few MB at 100,000 shards), in
    (shard_id, attempt) order; the files read ahead, and gathered as they come."""
    files = read_ahead(store, keys, store.get)
    tables = (_parquet(data).read().cast(OUTCOMES) for data in files)
    table = gathered(tables, OUTCOMES)
    return table.sort_by([("shard_id", "ascending"), ("attempt", "ascending")])


def _write_parts(
    store: ObjectStore,
    folder: str,
    schema: pa.Schema,
    tables: Iterator[pa.Table],
    target_bytes: int,
) -> tuple[tuple[str, ...], int]:
    """Stream ``tables`` into part files under ``folder``, starting a new part once one reaches
    ``target_bytes``: every part but the last is at least the target, so a partition of B bytes
    has at most ceil(B / target) parts. Returns the part keys and their total size."""
    keys: list[str] = []
    total = 0
    buffer: list[pa.Table] = []
    rows = 0
    part: _Part | None = None

    def flush() -> None:
        nonlocal part, rows, total
        if not buffer:
            return
        if part is None:
            part = _Part(store, schema)
        part.write(pa.concat_tables(buffer).cast(schema))
        buffer.clear()
        rows = 0
        if part.size() >= target_bytes:
            total += part.finish(layout.compacted_part(folder, len(keys)))
            keys.append(layout.compacted_part(folder, len(keys)))
            part = None

    for table in tables:
        if table.num_rows == 0:
            continue
        buffer.append(table)
        rows += table.num_rows
        if rows >= ROW_GROUP_ROWS:
            flush()
        elif len(buffer) >= GATHER:  # many small tables (one-point shards): merged as they come
            buffer[:] = [gathered(buffer, schema)]
    flush()
    if part is not None:
        total += part.finish(layout.compacted_part(folder, len(keys)))
        keys.append(layout.compacted_part(folder, len(keys)))
    return tuple(keys), total


class _Part:
    """One part file on its way into the store: written to the store's scratch folder, then
    created from the file (linked locally, streamed to S3), so it is never held whole."""

    def __init__(self, store: ObjectStore, schema: pa.Schema) -> None:
        self.store = store
        fd, name = tempfile.mkstemp(dir=store.scratch(), prefix=".tmp-part-", suffix=".parquet")
        os.close(fd)
        self.path = Path(name)
        self.sink = pa.OSFile(name, "wb")
        self.writer = pq.ParquetWriter(
            self.sink,
            schema,
            compression="snappy",
            coerce_timestamps="ms",
            allow_truncated_timestamps=True,
        )

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table, row_group_size=table.num_rows)

    def size(self) -> int:
        return int(self.sink.tell())

    def finish(self, key: str) -> int:
        """Close, store under ``key`` (a conditional create: the key has this compactor's
        token, so only a retry of this very call can find it taken) and return the size."""
        self.writer.close()
        self.sink.close()
        try:
            size = self.path.stat().st_size
            self.store.create_file(key, self.path)
            return size
        finally:
            self.path.unlink(missing_ok=True)
