"""Reuse: a run with ``"reuse": true`` copies the points earlier runs of the stage computed.

A point is identified by its stream key (stream v2, ``simulations.streams``): the 16-byte digest
of (simulation, version, seed, effective parameters, replicate). Equal keys mean equal inputs
to the same function version, so equal metrics, bit for bit.

- **Index** (written where a shard completes): every succeeded shard writes the keys and
  metrics of the points it evaluated to ``reuse/<family>/run_id=<run>/shard-<k>.parquet``,
  ``family`` being a digest of (simulation, version, seed). Only a family's files are ever
  read, so reuse never crosses simulations, versions or seeds, and a stage's store is its own,
  so it never crosses stages.
- **Merged index** (written where a complete run is compacted: ``merge_run``): the run's
  per-shard files folded into ``reuse/<family>/merged/gen-<n>.parquet``, each distinct point of
  the family once (its oldest source), committed by a conditional create, then the run's files
  deleted. Its size is the family's distinct points, whatever the number of runs that
  computed them.
- **Plan** (once per run, in the root dispatcher before any worker is invoked; the 202 does
  not wait for it): the run's points' keys are matched against the family's history
  (``history``: the latest merged generation, then the files of runs not merged yet) in one
  Arrow ``index_in``, and each shard gets the list of points it copies
  (``runs/<run>/reuse/shard-<k>.parquet``) and ``runs/<run>/reuse/plan.json`` their counts.
  Entries whose source shard has no results any more (a deleted run) are skipped, so a source
  that is gone only means evaluating; a failed source shard never wrote any.
- **Worker**: reads its own shard's plan (two GETs) and never scans history; reused points are
  copied with their ``source_run_id``, the simulation function is not called for them.

The plan reads the family's history once per run, never per shard: with its runs merged, one
listing and one file whose size grows with the family's distinct points, not with its number
of runs (``bench.reuse_planning``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chalicelib.logs import logger
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import SweepRequest
from chalicelib.model.sharding import shard_bounds
from chalicelib.simulations import streams
from chalicelib.simulations.declarations import PointStreams, Simulation
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import compaction, layout, manifests
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.tables import REUSE_INDEX, REUSE_MERGED, REUSE_PLAN, to_parquet

if TYPE_CHECKING:  # not imported: sweep estimate imports this module from the wheel, which
    from chalicelib.analytics.catalog import Catalog  # ships no analytics package


def family(simulation: str, version: str, seed: int) -> str:
    """The reuse index's folder name for one (simulation, version, seed)."""
    return streams.digest(streams.prefix_text(simulation, version, seed)).hex()


def write_index(
    store: ObjectStore,
    fam: str,
    run_id: str,
    shard_id: int,
    keys: bytes,
    indices: np.ndarray,
    metrics: np.ndarray,
) -> None:
    """The points a shard evaluated: ``keys`` their 16-byte stream keys end to end, in point
    order (one buffer, laid out as Arrow's fixed-size binary already is: no object a point),
    ``metrics`` one row each."""
    key_type = REUSE_INDEX.field("key").type
    if len(keys) != key_type.byte_width * len(indices):
        raise ValueError(f"{len(keys)} bytes of keys for {len(indices)} points")
    table = pa.table(
        {
            "key": pa.FixedSizeBinaryArray.from_buffers(
                key_type, len(indices), [None, pa.py_buffer(keys)]
            ),
            "point_index": pa.array(indices, pa.int64()),
            "metrics": _lists(metrics),
        },
        schema=REUSE_INDEX,
    )
    store.put(layout.reuse_index(fam, run_id, shard_id), to_parquet(table, dictionary=False))


def _lists(metrics: np.ndarray) -> pa.Array:
    rows, width = metrics.shape
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(metrics.reshape(-1), pa.float64()))


@dataclass(frozen=True)
class ShardPlan:
    """The points one shard copies: point index -> (source run, metrics in declared order)."""

    points: dict[int, tuple[str, list[float]]]

    def __len__(self) -> int:
        return len(self.points)


def load_plan(store: ObjectStore, run_id: str, shard_id: int) -> ShardPlan:
    """A shard's plan; empty when the run's plan is absent (planning failed: evaluate all)."""
    try:
        summary = json.loads(store.get(layout.reuse_plan(run_id)))
    except KeyError:
        return ShardPlan({})
    if not summary["shards"].get(str(shard_id)):
        return ShardPlan({})
    table = pq.read_table(io.BytesIO(store.get(layout.reuse_shard_plan(run_id, shard_id))))
    rows = zip(
        table["point_index"].to_pylist(),
        table["source_run_id"].to_pylist(),
        table["metrics"].to_pylist(),
        strict=True,
    )
    return ShardPlan({index: (source, values) for index, source, values in rows})


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
    the number of runs that computed them) and the per-shard index files of runs not merged
    yet (running, or complete and not yet compacted), oldest run first. Rows whose source
    shard has no results any more (a deleted run) are left out, checked once per source run
    (its compaction record, and its results listing only if a shard is not in it)."""
    by_run: dict[str, list[tuple[int, str]]] = {}
    for obj in store.list(layout.reuse_family(fam)):
        if (parsed := layout.parse_reuse_index(obj.key)) is not None and parsed[0] != run_id:
            by_run.setdefault(parsed[0], []).append((parsed[1], obj.key))
    keys: list[pa.Array] = []
    metrics: list[pa.Array] = []
    origins: list[pa.Array] = []
    alive = _Sources(store)
    table = _latest_merged(store, fam)
    if table is not None:
        table = _living(table, alive, run_id)
        keys.append(table["key"].combine_chunks())
        metrics.append(table["metrics"].combine_chunks())
        origins.append(table["source_run_id"].combine_chunks())
    for source in sorted(by_run):  # oldest run first: it wins a key several runs computed
        for shard_id, key in by_run[source]:
            if not alive(source)(shard_id):
                continue
            table = pq.read_table(io.BytesIO(store.get(key)), columns=["key", "metrics"])
            keys.append(table["key"].combine_chunks())
            metrics.append(table["metrics"].combine_chunks())
            origins.append(pa.array([source] * table.num_rows, pa.string()))
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
    shard copies. A plan already written (a redelivered dispatcher event) stands."""
    try:
        done = json.loads(store.get(layout.reuse_plan(run.run_id)))
        return {int(k): v for k, v in done["shards"].items()}
    except KeyError:
        pass
    request = run.request
    sim = REGISTRY[request.simulation]
    past = history(store, family(sim.name, sim.version, request.seed), run.run_id)
    counts: dict[int, int] = {}
    if len(past):
        found = matches(past, _keys(sim, request))
        for shard_id in range(request.shard_count):
            start, end = shard_bounds(request.total_points, request.shards, shard_id)
            hits = found.slice(start, end - start)
            mask = hits.is_valid()
            if not pc.any(mask).as_py():
                continue
            positions = pc.filter(hits, mask)
            table = pa.table(
                {
                    "point_index": pc.filter(pa.array(np.arange(start, end)), mask),
                    "source_run_id": past.origins.take(positions),
                    "metrics": past.metrics.take(positions),
                },
                schema=REUSE_PLAN,
            )
            store.put(layout.reuse_shard_plan(run.run_id, shard_id), to_parquet(table))
            counts[shard_id] = table.num_rows
    summary = {"shards": {str(k): v for k, v in counts.items()}, "reused": sum(counts.values())}
    store.create(layout.reuse_plan(run.run_id), json.dumps(summary).encode())
    logger.info(
        "reuse planned",
        extra={"run_id": run.run_id, "reused": summary["reused"], "history": len(past)},
    )
    return counts


def matches(past: History, keys: Sequence[bytes]) -> pa.Array:
    """For each of ``keys`` (a request's points, in index order), its row in ``past``, or null
    when no earlier run computed it: what the plan copies, and what ``sweep estimate`` counts."""
    return pc.index_in(pa.array(keys, pa.binary(16)), value_set=past.keys)


def merge_run(store: ObjectStore, run_id: str, catalog: Catalog, attempts: int = 5) -> int:
    """Fold a complete run's per-shard index files into its family's merged index (called
    where the run is compacted, so once it is complete), then delete them: planning then reads
    one file of the family's distinct points instead of a file per shard of every earlier run.
    A new generation is committed by a conditional create, so two runs of a family merged at
    once never lose each other's points (the loser merges again on top); then the previous
    one is deleted (a plan reading it lists again), so the family's partition of the table
    ``reuse`` (registered with ``catalog``) holds one generation. Best effort: files not
    merged are still read by plans; returns the points merged."""
    try:
        return _merge(store, run_id, catalog, attempts)
    except Exception:
        logger.exception("reuse index not merged; plans read its files", extra={"run_id": run_id})
        return 0


def _merge(store: ObjectStore, run_id: str, catalog: Catalog, attempts: int) -> int:
    request = manifests.load(store, run_id).request
    sim = REGISTRY.get(request.simulation)
    if sim is None:
        return 0
    fam = family(sim.name, sim.version, request.seed)
    prefix = f"{layout.reuse_family(fam)}run_id={run_id}/"
    for _ in range(attempts):
        files = [o.key for o in store.list(prefix)]
        if not files:
            return 0  # merged already (or the run evaluated nothing)
        numbers = _merged_numbers(store, fam)
        latest = max(numbers, default=0)
        parts = []
        if latest:  # less the points of runs gone since: this run's copies may take their place
            table = pq.read_table(
                io.BytesIO(store.get(layout.reuse_merged(fam, latest))), schema=REUSE_MERGED
            )
            parts.append(_living(table, _Sources(store)))
        parts += [_merged_rows(store, key, run_id, sim, request) for key in files]
        merged = _distinct(pa.concat_tables(parts))
        data = to_parquet(merged, dictionary=["source_run_id"])
        if store.create(layout.reuse_merged(fam, latest + 1), data):
            break
    else:
        return 0  # raced every time: the next compaction of the run merges it
    catalog.register_family(fam)
    for key in files:
        store.delete(key)
    for number in numbers:
        store.delete(layout.reuse_merged(fam, number))
    merged_points: int = merged.num_rows
    return merged_points


def _merged_rows(
    store: ObjectStore, key: str, run_id: str, sim: Simulation, request: SweepRequest
) -> pa.Table:
    """A per-shard index file as rows of the merged index: each point's effective parameters
    in their stream-key text, from its index (the run's space), computed here once per point
    rather than by the worker."""
    table = pq.read_table(io.BytesIO(store.get(key)))
    shard_id = layout.parse_reuse_index(key)[1]  # type: ignore[index]
    space, canonical = request.space, streams.canonical
    params, replicates = [], []
    for i in table["point_index"].to_pylist():
        effective = sim.effective_params(space.point(i))
        params.append([(name, canonical(value)) for name, value in sorted(effective.items())])
        replicates.append(space.replicate(i))
    n = table.num_rows
    return pa.table(
        {
            "key": table["key"],
            "source_run_id": pa.array([run_id] * n, pa.string()),
            "shard_id": pa.array([shard_id] * n, pa.int32()),
            "metrics": table["metrics"],
            "params": pa.array(params, pa.map_(pa.string(), pa.string())),
            "replicate": pa.array(replicates, pa.int32()),
        },
        schema=REUSE_MERGED,
    )


def _distinct(table: pa.Table) -> pa.Table:
    """Each key once: the row of the oldest run that evaluated it (run ids sort by time)."""
    ordered = table.sort_by([("key", "ascending"), ("source_run_id", "ascending")])
    keys = ordered["key"].combine_chunks()
    if len(keys) < 2:
        return ordered
    first = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    return ordered.filter(pa.concat_arrays([pa.array([True]), first]))


def _keys(sim: Simulation, request: SweepRequest) -> list[bytes]:
    """Every point's stream key, in index order."""
    point_streams = PointStreams(sim, request.seed)
    key, effective = point_streams.key, sim.effective_params
    space = request.space
    points = space.iter_points(0, request.total_points)
    return [key(effective(point), r) for _, point, r in points]


def source_column(plan_: ShardPlan, start: int, end: int) -> pa.Array | None:
    """Each row's ``source_run_id``: the source run of a copied point, null otherwise."""
    if not plan_.points:
        return None
    points: Mapping[int, tuple[str, list[float]]] = plan_.points
    return pa.array([points[i][0] if i in points else None for i in range(start, end)], pa.string())
