"""Reuse: a run with ``"reuse": true`` copies the points earlier runs of the stage computed.

A point is identified by its stream key (stream v2, ``simulations.streams``): the 16-byte digest
of (simulation, version, seed, effective parameters, replicate). Equal keys mean equal inputs
to the same function version, so equal metrics, bit for bit.

- **Pending runs**: the root dispatcher of each job of a run (its first dispatch, a redrive)
  marks the run pending in its family, ``reuse/<family>/pending/run_id=<run>/<job>`` (one
  empty object a job, never one a shard), before any worker is invoked. A pending run's
  evaluated points are its results rows with no ``source_run_id``; each one's key follows
  from its index and the run's request, so workers write nothing for reuse. Only a family's
  objects are ever read, so reuse never crosses simulations, versions or seeds, and a stage's
  store is its own, so it never crosses stages.
- **Merged index** (written where a complete run is compacted: ``merge_run``): a pending
  run's evaluated points folded into ``reuse/merged/family=<family>/gen-<n>.parquet``, each
  distinct point of the family once (its oldest source), committed by a conditional create,
  then the markers it folded deleted. Its size is the family's distinct points, whatever the
  number of runs that computed them.
- **Plan** (once per run, in the root dispatcher before any worker is invoked; the 202 does
  not wait for it): the run's points' keys are made and matched a row group at a time against
  the family's history (``history``: the latest merged generation, then the results of runs
  still pending; its keys sorted once, ``Lookup``), and each shard gets the list of points it
  copies (``runs/<run>/reuse/shard-<k>.parquet``, written once its last point is matched) and
  ``runs/<run>/reuse/plan.json`` their counts. Planning holds the history and one shard's
  copies, never a key per point of the run; a delivery that finds an earlier one's planning
  started and not finished (killed) writes an empty plan, so dispatch never waits on it.
  Entries whose source shard has no results any more (a deleted run) are skipped, so a source
  that is gone only means evaluating; a failed source shard never wrote any.
- **Worker**: reads its own shard's plan (two GETs: the shard's file streamed to scratch) and
  never scans history; it reads the file a row group at a time as it evaluates
  (``open_plan``), so its memory is flat in the shard's size. Reused points are copied with
  their ``source_run_id``, the simulation function is not called for them.

The plan reads the family's history once per run, never per shard: with its runs merged, one
listing and one file whose size grows with the family's distinct points, not with its number
of runs (``bench.reuse_planning``). A pending run costs a plan the read of its results and a
key a point (a few microseconds): runs are pending only until their compaction.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chalicelib.execution.columns import column_keys, keyed_points
from chalicelib.logs import logger
from chalicelib.model.errors import NotFound
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import SweepRequest
from chalicelib.model.sharding import shard_bounds
from chalicelib.simulations import streams
from chalicelib.simulations.batches import PointBatches
from chalicelib.simulations.declarations import Simulation, Value
from chalicelib.storage import compaction, layout, manifests
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.tables import (
    RESULTS,
    REUSE_MERGED,
    REUSE_PLAN,
    ROW_GROUP_POINTS,
    gathered,
    to_parquet,
)
from chalicelib.storage.together import read_ahead

if TYPE_CHECKING:  # not imported: sweep estimate imports this module from the wheel, which
    from chalicelib.analytics.catalog import Catalog  # ships no analytics package


def family(simulation: str, version: str, seed: int) -> str:
    """The reuse index's folder name for one (simulation, version, seed)."""
    return streams.digest(streams.prefix_text(simulation, version, seed)).hex()


def mark_pending(store: ObjectStore, run: Manifest, job: str) -> None:
    """Before a job's workers are invoked: its run's evaluated points are for plans to read
    from its results until ``merge_run`` folds them in (idempotent: a create). The family is
    the one of the version the run was accepted under (its manifest's), whatever is deployed
    now: a shard of another version is refused by the worker, never filed under this one."""
    request = run.request
    fam = family(request.simulation, run.simulation_version, request.seed)
    store.create(layout.reuse_pending(fam, run.run_id, job), b"")


def _pending(store: ObjectStore, fam: str) -> dict[str, list[str]]:
    """The family's pending runs: run id -> its markers."""
    runs: dict[str, list[str]] = {}
    for obj in store.list(layout.reuse_pending_prefix(fam)):
        if (run_id := layout.parse_reuse_pending(obj.key)) is not None:
            runs.setdefault(run_id, []).append(obj.key)
    return runs


def evaluated(
    store: ObjectStore,
    run_id: str,
    with_params: bool = True,
    generation: compaction.Generation | None = None,
    fam: str | None = None,
) -> pa.Table | None:
    """The points run ``run_id`` evaluated itself (results rows with no ``source_run_id``) and
    not merged yet, as rows of the merged index (``tables.REUSE_MERGED``; ``params`` empty
    unless ``with_params``), read from its per-shard results files (read ahead): a pending run
    keeps them, since its compaction deletes what it replaced only once the run is merged
    (``pending``), and after a merge only a redrive's new shards have files of their own.
    Given the run's compaction ``generation`` (the compactor's merge, right after writing it),
    the rows of the shards it holds come from its few parts instead, one at a time (a part
    can be large). None when there is nothing to read, the run is gone (no manifest), its
    simulation is not registered here or has another version now (``_run_simulation``), or,
    given ``fam``, the run is not of that family (a source marked in the wrong one)."""
    found = _run_simulation(store, run_id)
    if found is None or (fam is not None and found.family != fam):
        return None
    request, sim = found.request, found.sim
    # The per-shard files the generation did not absorb, of succeeded shards only (the
    # readers' rule: a shard whose success outcome never landed can leave one behind).
    keys = compaction.unabsorbed(
        compaction.RESULTS,
        generation,
        (obj.key for obj in store.list(layout.results_prefix(run_id))),
        succeeded=compaction.succeeded_shards(store, run_id),
    )
    parts = generation.parts.get(compaction.RESULTS, ()) if generation is not None else ()
    read = _held(store)
    files = itertools.chain(map(read, parts), read_ahead(store, keys, read, READ_AHEAD_FILES))
    found_rows = (_evaluated_rows(data) for data in files if data is not None)
    rows = gathered(found_rows, EVALUATED_SCHEMA)
    if rows.num_rows == 0:
        return None
    return _index_rows(rows, run_id, sim, request, with_params)


def _held(store: ObjectStore) -> Callable[[str], bytes | None]:
    """A reader answering None for an object deleted under it (a merged run's file, after its
    grace period)."""

    def read(key: str) -> bytes | None:
        try:
            return store.get(key)
        except KeyError:
            return None

    return read


def _evaluated_rows(data: bytes) -> pa.Table:
    table = pq.read_table(io.BytesIO(data), columns=EVALUATED_COLUMNS)
    return table.filter(pc.is_null(table["source_run_id"]))


def pending(store: ObjectStore, run_id: str) -> bool:
    """Whether the run has evaluated points not merged yet: its compaction then keeps the
    per-shard results a plan reads them from (``evaluated``)."""
    found = _run_simulation(store, run_id)
    if found is None:
        return False
    return any(True for _ in store.list(layout.reuse_pending_prefix(found.family, run_id)))


@dataclass(frozen=True)
class _Keyable:
    """A stored run whose points can be keyed here: its request, its simulation as registered
    (at the version the run was accepted under) and its family."""

    request: SweepRequest
    sim: Simulation
    family: str


def _run_simulation(store: ObjectStore, run_id: str) -> _Keyable | None:
    """The run as ``_Keyable``; None when the run is gone (no manifest), or its simulation is
    not registered here or is at another version than the run's manifest records (a version
    bumped since; ``Manifest.simulation_as_accepted``): its points' keys are of that version,
    which this deployment's declaration cannot make, and reuse never crosses versions."""
    try:
        run = manifests.load(store, run_id)
    except NotFound:
        return None
    sim = run.simulation_as_accepted()
    if sim is None:
        return None
    request = run.request
    return _Keyable(request, sim, family(sim.name, run.simulation_version, request.seed))


EVALUATED_COLUMNS = ["shard_id", "point_index", "metrics", "source_run_id"]
# Per-shard results files ``evaluated`` reads at once: a dispatcher planning a reuse reads them
# (in 1,024 MB), and a shard of 10^6 points leaves a file of tens of MB.
READ_AHEAD_FILES = 8
EVALUATED_SCHEMA = pa.schema([RESULTS.field(name) for name in EVALUATED_COLUMNS])


def _index_rows(
    rows: pa.Table, run_id: str, sim: Simulation, request: SweepRequest, with_params: bool
) -> pa.Table:
    """Results rows as rows of the merged index: each point's stream key, effective
    parameters (stream-key text) and replicate from its index and the run's request, and its
    metrics in declared order (the results map's values are written in that order). Points
    are decoded as the worker decodes them, a run of consecutive indices at a time
    (``iter_points`` with the defaults and float names: effective parameters straight away),
    not one ``point(i)`` each, which cost several times the key itself."""
    keys: list[bytes] = []
    params: list[list[tuple[str, str]]] = []
    replicates: list[int] = []
    indices = rows["point_index"].to_numpy()
    starts = [0, *(np.flatnonzero(np.diff(indices) != 1) + 1).tolist(), len(indices)]
    batches = PointBatches(sim, request.seed)
    for a, b in itertools.pairwise(starts):
        lo, hi = int(indices[a]), int(indices[b - 1]) + 1
        for values, replicate, key in _keyed_points(batches, request, lo, hi):
            keys.append(key)
            replicates.append(replicate)
            params.append(
                [(name, streams.canonical(v)) for name, v in sorted(values.items())]
                if with_params
                else []
            )
    maps = rows["metrics"].combine_chunks()
    n = rows.num_rows
    return pa.table(
        {
            "key": pa.array(keys, pa.binary(16)),
            "source_run_id": pa.array([run_id] * n, pa.string()),
            "shard_id": rows["shard_id"].combine_chunks(),
            "metrics": pa.ListArray.from_arrays(maps.offsets, maps.items),
            "params": pa.array(params, pa.map_(pa.string(), pa.string())),
            "replicate": pa.array(replicates, pa.int32()),
        },
        schema=REUSE_MERGED,
    )


@dataclass(frozen=True)
class CopiedGroup:
    """The points one row group of a shard copies (``ShardPlan.group``), as arrays: no Python
    object a point."""

    positions: np.ndarray  # the copied points' offsets in the group, ascending
    metrics: np.ndarray  # their metrics one after another, each point's in declared order
    sources: pa.Array  # each row of the group's source run, null for a point evaluated here


class ShardPlan:
    """The points one shard copies, read in step with the worker's row groups: the plan's
    file (``runs/<run>/reuse/shard-<k>.parquet``, rows in point order) is fetched to a
    scratch file, never into memory whole, and read a batch at a time, so a worker holds one
    row group's copies whatever the shard's size (``bench.worker_memory``). ``len`` is the
    number of points the shard copies. Made by ``open_plan``."""

    def __init__(self, path: Path | None = None) -> None:
        self._file = (
            None
            if path is None
            else pq.ParquetFile(path, buffer_size=PLAN_READ_BUFFER, pre_buffer=False)
        )
        self._count = 0 if self._file is None else self._file.metadata.num_rows
        self._batches = (
            iter(()) if self._file is None else self._file.iter_batches(ROW_GROUP_POINTS)
        )
        self._next: pa.RecordBatch | None = None

    def __len__(self) -> int:
        return self._count

    def group(self, lo: int, hi: int) -> CopiedGroup | None:
        """The copies among points ``[lo, hi)``, the worker's next row group (groups are
        asked in order; rows before ``lo`` are passed over); None when it copies none."""
        taken: list[pa.RecordBatch] = []
        while self._count:
            batch = self._next if self._next is not None else next(self._batches, None)
            if batch is None:
                break
            indices = batch.column("point_index").to_numpy()
            first, end = np.searchsorted(indices, [lo, hi]).tolist()
            if end > first:
                taken.append(batch.slice(first, end - first))
            if end < batch.num_rows:
                self._next = batch.slice(end)
                break
            self._next = None
        if not taken:
            return None
        rows = pa.Table.from_batches(taken).combine_chunks()
        positions = rows["point_index"].to_numpy() - lo
        at = np.full(hi - lo, -1, dtype=np.int64)
        at[positions] = np.arange(len(positions))
        sources = rows["source_run_id"].chunk(0).take(pa.array(at, mask=at < 0))
        metrics = rows["metrics"].chunk(0).flatten().to_numpy(zero_copy_only=False)
        return CopiedGroup(positions, metrics, sources)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# The plan file's read buffer: its pages are read this much at a time, not a column chunk
# (up to the whole shard's) at once.
PLAN_READ_BUFFER = 1 << 20


@contextmanager
def open_plan(store: ObjectStore, run_id: str, shard_id: int) -> Iterator[ShardPlan]:
    """A shard's plan, read as the worker goes (``ShardPlan``); empty when the run's plan is
    absent (planning failed: evaluate all) or gives the shard nothing to copy."""
    try:
        summary = json.loads(store.get(layout.reuse_plan(run_id)))
    except KeyError:
        yield ShardPlan()
        return
    if not summary["shards"].get(str(shard_id)):
        yield ShardPlan()
        return
    fd, name = tempfile.mkstemp(dir=store.scratch(), prefix=".tmp-plan-", suffix=".parquet")
    os.close(fd)
    path = Path(name)
    try:
        store.get_file(layout.reuse_shard_plan(run_id, shard_id), path)
        plan_ = ShardPlan(path)
        try:
            yield plan_
        finally:
            plan_.close()
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class History:
    """A family's reusable points as the plan matches them: ``keys[i]`` was evaluated by run
    ``origins[i]`` with ``metrics[i]``. A key may appear twice; the first wins (``index_in``)."""

    keys: pa.Array
    metrics: pa.Array
    origins: pa.Array

    def __len__(self) -> int:
        return len(self.keys)


class _Present:
    """Which shards of a source run still hold their results: its latest compaction
    generation's (which absorbed their files), else a file of their own (listed once, only if
    a shard is not in the generation)."""

    def __init__(self, store: ObjectStore, source: str) -> None:
        self.store, self.source = store, source
        gen = compaction.latest(store, source)
        self.held = gen.results_shards if gen is not None else frozenset()
        self._files: set[str] | None = None

    def __call__(self, shard_id: int) -> bool:
        if shard_id in self.held:
            return True
        if self._files is None:
            self._files = {o.key for o in self.store.list(layout.results_prefix(self.source))}
        return layout.results(self.source, shard_id) in self._files


class _Sources:
    """``_Present`` of each source run, made once."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._made: dict[str, _Present] = {}

    def __call__(self, source: str) -> _Present:
        if source not in self._made:
            self._made[source] = _Present(self.store, source)
        return self._made[source]


def history(store: ObjectStore, fam: str, run_id: str) -> History:
    """What a plan of run ``run_id`` can copy: the family's latest merged index (every point
    of its merged runs once, read whole: its size is the family's distinct points, whatever
    the number of runs that computed them), then what the runs still pending (running, or
    complete and not compacted yet) evaluated, read from their results, oldest run first.
    Merged rows whose source shard has no results any more (a deleted run) are left out,
    checked once per source run (its compaction record, and its results listing only if a
    shard is not in it); a pending run that is gone has no results to read.

    The pending runs are listed before the index is read: a merge commits its run into a new
    index and only then deletes the run's markers, so whenever a merge lands, the run is in
    the listing or in the index read after it (or both: the oldest row wins). Read the other
    way round, a run merged between the two reads was in neither, and every point it
    evaluated was computed again."""
    keys: list[pa.Array] = []
    metrics: list[pa.Array] = []
    origins: list[pa.Array] = []
    pending = sorted(_pending(store, fam))  # oldest run first: it wins a key
    table = _latest_merged(store, fam)
    if table is not None:
        table = _living(table, _Sources(store), run_id)
        keys.append(table["key"].combine_chunks())
        metrics.append(table["metrics"].combine_chunks())
        origins.append(table["source_run_id"].combine_chunks())
    for source in pending:
        if source == run_id or (rows := evaluated(store, source, False, fam=fam)) is None:
            continue
        keys.append(rows["key"].combine_chunks())
        metrics.append(rows["metrics"].combine_chunks())
        origins.append(rows["source_run_id"].combine_chunks())
    if not keys:
        empty = REUSE_MERGED.empty_table()
        return History(empty["key"], empty["metrics"], empty["source_run_id"])
    return History(pa.concat_arrays(keys), pa.concat_arrays(metrics), pa.concat_arrays(origins))


def _living(table: pa.Table, alive: _Sources, run_id: str = "") -> pa.Table:
    """The rows of a merged index whose source shard still has its results (not ``run_id``'s):
    checked once per (source run, shard), in Arrow and NumPy, never row by row."""
    sources = table["source_run_id"]
    shards = table["shard_id"].to_numpy()
    keep = np.zeros(table.num_rows, dtype=bool)
    for source in pc.unique(sources).to_pylist():
        if source == run_id:
            continue
        rows = pc.equal(sources, source).to_numpy()
        present = alive(source)
        held = [k for k in np.unique(shards[rows]).tolist() if present(k)]
        keep |= rows & np.isin(shards, held)
    return table.filter(pa.array(keep))


PLANNED = ["key", "source_run_id", "shard_id", "metrics"]  # the merged columns a plan reads


def _merged_numbers(store: ObjectStore, fam: str) -> list[int]:
    return [
        n
        for o in store.list(layout.reuse_merged_prefix(fam))
        if (n := layout.parse_reuse_merged(o.key)) is not None
    ]


def _latest_merged(store: ObjectStore, fam: str, tries: int = 3) -> pa.Table | None:
    """The family's latest merged generation, or None if none was made. Its predecessor is
    deleted once a newer one is committed, so a generation that vanishes between the listing
    and the read means listing again."""
    for _ in range(tries):
        numbers = _merged_numbers(store, fam)
        if not numbers:
            return None
        try:
            data = store.get(layout.reuse_merged(fam, max(numbers)))
        except KeyError:
            continue
        # Not its parameters: they are for queries (the table reuse), the plan matches keys.
        return pq.read_table(io.BytesIO(data), columns=PLANNED, schema=REUSE_MERGED)
    raise KeyError(f"merged reuse index of {fam} kept changing under the read")


def plan(store: ObjectStore, run: Manifest) -> dict[int, int]:
    """Write the run's reuse plan once (see the module docstring); returns the count each
    shard copies. A plan already written (a redelivered dispatcher event) stands.

    A marker (``layout.reuse_planning``) is made first: a delivery that finds it and no plan
    follows one that died planning (killed out of memory or time: no exception to catch), so
    it writes an empty plan (every point evaluated) rather than die the same way again, and
    the run is dispatched whatever happened to its planning. A run accepted under another
    version of its simulation than the one registered gets an empty plan too: its shards are
    refused (``SIMULATION_VERSION_CHANGED``), and reuse never crosses versions."""
    written = _written(store, run.run_id)
    if written is not None:
        return written
    request = run.request
    sim = run.simulation_as_accepted()
    counts: dict[int, int] = {}
    # Bytes of this delivery's own: a create that finds its own bytes counts as made (a
    # retried request), so an empty marker would look made to every delivery.
    if not store.create(layout.reuse_planning(run.run_id), os.urandom(16).hex().encode()):
        logger.warning(
            "an earlier reuse planning of the run did not finish; evaluating every point",
            extra={"run_id": run.run_id},
        )
    elif sim is not None:
        fam = family(sim.name, run.simulation_version, request.seed)
        past = history(store, fam, run.run_id)
        if len(past):
            counts = _plan_shards(store, run, sim, past)
    summary = {"shards": {str(k): v for k, v in counts.items()}, "reused": sum(counts.values())}
    if not store.create(layout.reuse_plan(run.run_id), json.dumps(summary).encode()):
        return _written(store, run.run_id) or {}  # another delivery's plan stands
    logger.info("reuse planned", extra={"run_id": run.run_id, "reused": summary["reused"]})
    return counts


def _written(store: ObjectStore, run_id: str) -> dict[int, int] | None:
    """The counts of the run's plan, if written."""
    try:
        done = json.loads(store.get(layout.reuse_plan(run_id)))
    except KeyError:
        return None
    return {int(k): v for k, v in done["shards"].items()}


def _plan_shards(
    store: ObjectStore, run: Manifest, sim: Simulation, past: History
) -> dict[int, int]:
    """Match the run's points against ``past`` a row group of keys at a time (``Lookup``),
    writing each shard's plan file once its last point is matched: memory is the history's
    and one shard's copies, never a key per point of the run (10^7 points held as Python keys
    took over the dispatcher's 1,024 MB)."""
    request = run.request
    total, spec = request.total_points, request.shards
    counts: dict[int, int] = {}
    shard_id, end = 0, shard_bounds(total, spec, 0)[1]
    indices: list[np.ndarray] = []
    rows: list[np.ndarray] = []

    def flush() -> None:
        if not indices:
            return
        at = pa.array(np.concatenate(rows))
        table = pa.table(
            {
                "point_index": pa.array(np.concatenate(indices)),
                "source_run_id": past.origins.take(at),
                "metrics": past.metrics.take(at),
            },
            schema=REUSE_PLAN,
        )
        store.put(layout.reuse_shard_plan(run.run_id, shard_id), to_parquet(table))
        counts[shard_id] = table.num_rows
        indices.clear()
        rows.clear()

    for lo, found in _matched(past, sim, request):
        hi = lo + len(found)
        hits = np.flatnonzero(found >= 0)
        point = hits + lo
        while True:  # hand the group's hits to the shards they fall in, in order
            cut = int(np.searchsorted(point, end))
            if cut:
                indices.append(point[:cut])
                rows.append(found[hits[:cut]])
                point, hits = point[cut:], hits[cut:]
            if end > hi:
                break
            flush()
            shard_id += 1
            if shard_id == request.shard_count:
                break
            end = shard_bounds(total, spec, shard_id)[1]
    flush()
    return counts


class Lookup:
    """``past``'s keys (16 bytes each) sorted once by their two 64-bit halves, then asked a
    group of keys at a time: each key's first row in ``past`` (what ``pc.index_in`` answers),
    or -1. Arrow's ``index_in`` hashes its whole value set on every call, so asking it group
    by group cost the history's size per group; sorted, a group costs its own size (times a
    binary search). Equal keys keep their first row only (a stable sort)."""

    def __init__(self, keys: pa.Array) -> None:
        halves = _halves(keys)
        order = np.lexsort((halves[:, 1], halves[:, 0]))  # stable: equal keys in row order
        ordered = halves[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
        self._rows = order[first]
        self._high = np.ascontiguousarray(ordered[first, 0])
        self._low = np.ascontiguousarray(ordered[first, 1])

    def __call__(self, keys: pa.Array) -> np.ndarray:
        asked = _halves(keys)
        found = np.full(len(asked), -1, dtype=np.int64)
        left = np.searchsorted(self._high, asked[:, 0], "left")
        right = np.searchsorted(self._high, asked[:, 0], "right")
        one = np.flatnonzero(right - left == 1)
        hit = one[self._low[left[one]] == asked[one, 1]]
        found[hit] = self._rows[left[hit]]
        # Distinct keys sharing their first 8 bytes (about one pair in 10^9 at 10^5 keys):
        # their few runs are searched one by one.
        for i in np.flatnonzero(right - left > 1).tolist():
            low = self._low[left[i] : right[i]]
            match = np.flatnonzero(low == asked[i, 1])
            if len(match):
                found[i] = self._rows[left[i] + match[0]]
        return found


def _halves(keys: pa.Array) -> np.ndarray:
    """16-byte keys as rows of two unsigned 64-bit integers (their bytes, as stored)."""
    if len(keys) == 0:
        return np.empty((0, 2), dtype=np.uint64)
    data = keys.buffers()[1]
    assert data is not None and keys.null_count == 0
    raw = np.frombuffer(data, dtype=np.uint64, count=2 * len(keys), offset=keys.offset * 16)
    return raw.reshape(-1, 2)


def reusable(past: History, sim: Simulation, request: SweepRequest) -> int:
    """How many of the request's points ``past`` holds: what a plan of it copies (the same
    keys, the same matching, a row group at a time), as ``sweep estimate`` counts them."""
    return sum(int(np.count_nonzero(found >= 0)) for _, found in _matched(past, sim, request))


def _matched(
    past: History, sim: Simulation, request: SweepRequest
) -> Iterator[tuple[int, np.ndarray]]:
    """The request's points a row group at a time, as (first index, each point's row in
    ``past`` or -1): the one matching the plan writes and the estimate counts."""
    lookup = Lookup(past.keys)
    batches = PointBatches(sim, request.seed)
    total = request.total_points
    for lo in range(0, total, ROW_GROUP_POINTS):
        yield lo, lookup(_group_keys(batches, request, lo, min(total, lo + ROW_GROUP_POINTS)))


def merge_run(
    store: ObjectStore,
    run_id: str,
    catalog: Catalog,
    attempts: int = 5,
    generation: compaction.Generation | None = None,
) -> int:
    """Fold what a pending run evaluated (``evaluated``: its results) into its family's merged
    index (called where the run is compacted, so once it is complete), then delete the markers
    folded: planning then reads one file of the family's distinct points instead of the
    results of every earlier run. A new generation is committed by a conditional create, so
    two runs of a family merged at once never lose each other's points (the loser merges again
    on top); then the previous one is deleted (a plan reading it lists again), so the
    family's partition of the table ``reuse`` (registered with ``catalog``) holds one
    generation. A marker made after the listing (a redrive's) is left for the redrive's own
    compaction. ``generation``: the run's latest compaction generation, when the caller (the
    compactor) has it in hand; else it is read. Best effort: a run not merged stays pending,
    and plans read its results; returns the points merged."""
    try:
        return _merge(store, run_id, catalog, attempts, generation)
    except Exception:
        logger.exception("reuse index not merged; plans read its results", extra={"run_id": run_id})
        return 0


def _merge(
    store: ObjectStore,
    run_id: str,
    catalog: Catalog,
    attempts: int,
    generation: compaction.Generation | None,
) -> int:
    found = _run_simulation(store, run_id)
    if found is None:
        return 0
    fam = found.family
    markers = [o.key for o in store.list(layout.reuse_pending_prefix(fam, run_id))]
    if not markers:
        return 0  # merged already
    own = evaluated(store, run_id, generation=generation or compaction.latest(store, run_id))
    for _ in range(attempts):
        numbers = _merged_numbers(store, fam)
        latest = max(numbers, default=0)
        parts = [] if own is None else [own]
        if latest:  # less the points of runs gone since: this run's copies may take their place
            table = pq.read_table(
                io.BytesIO(store.get(layout.reuse_merged(fam, latest))), schema=REUSE_MERGED
            )
            parts.insert(0, _living(table, _Sources(store)))
        if not parts:
            break  # nothing evaluated and nothing merged before: no generation to make
        merged = _distinct(pa.concat_tables(parts))
        data = to_parquet(merged, dictionary=["source_run_id"])
        if store.create(layout.reuse_merged(fam, latest + 1), data):
            catalog.register_family(fam)
            for number in numbers:
                store.delete(layout.reuse_merged(fam, number))
            break
    else:
        return 0  # raced every time: the next compaction of the run merges it
    for key in markers:
        store.delete(key)
    return 0 if own is None else own.num_rows


def _distinct(table: pa.Table) -> pa.Table:
    """Each key once: the row of the oldest run that evaluated it (run ids sort by time)."""
    ordered = table.sort_by([("key", "ascending"), ("source_run_id", "ascending")])
    keys = ordered["key"].combine_chunks()
    if len(keys) < 2:
        return ordered
    first = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    return ordered.filter(pa.concat_arrays([pa.array([True]), first]))


def _group_keys(batches: PointBatches, request: SweepRequest, lo: int, hi: int) -> pa.Array:
    """The stream keys of points ``[lo, hi)`` (at most a row group), as the worker makes them."""
    return pa.array(column_keys(batches, request.space, lo, hi), pa.binary(16))


def _keyed_points(
    batches: PointBatches, request: SweepRequest, lo: int, hi: int
) -> Iterator[tuple[dict[str, Value], int, bytes]]:
    """Points ``[lo, hi)`` of the request as the worker decodes them (``iter_points`` with the
    defaults and float names: effective parameters straight away), each with its replicate and
    stream key, the keys made a row group at a time as the worker makes them."""
    space = request.space
    for start in range(lo, hi, ROW_GROUP_POINTS):
        end = min(hi, start + ROW_GROUP_POINTS)
        group, keys = keyed_points(batches, space, start, end)
        for (_, values, replicate), key in zip(group, keys, strict=True):
            yield values, replicate, key
