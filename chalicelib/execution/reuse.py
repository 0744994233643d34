"""Reuse: a run with ``"reuse": true`` copies the points earlier runs of the stage computed.

A point is identified by its stream key (stream v2, ``simulations.streams``): the 16-byte digest
of (simulation, version, seed, effective parameters, replicate). Equal keys mean equal inputs
to the same function version, so equal metrics, bit for bit.

- **Index** (written where a shard completes): every succeeded shard writes the keys and
  metrics of the points it evaluated to ``reuse/<family>/run_id=<run>/shard-<k>.parquet``,
  ``family`` being a digest of (simulation, version, seed). Only a family's files are ever
  read, so reuse never crosses simulations, versions or seeds, and a stage's store is its own,
  so it never crosses stages.
- **Plan** (once per run, in the root dispatcher before any worker is invoked; the 202 does
  not wait for it): the run's points' keys are matched against the family's index in one
  Arrow ``index_in``, and each shard gets the list of points it copies
  (``runs/<run>/reuse/shard-<k>.parquet``) and ``runs/<run>/reuse/plan.json`` their counts.
  Index entries whose source shard has no results file any more (a deleted run) are skipped,
  so a source that is gone only means evaluating; a failed source shard never wrote any.
- **Worker**: reads its own shard's plan (two GETs) and never scans history; reused points are
  copied with their ``source_run_id``, the simulation function is not called for them.

The plan reads the family's index once per run, not once per shard; its cost grows with the
family's history (benchmarked in docs/benchmarks.md), which compaction could bound by merging a
run's index files into one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

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
from chalicelib.storage import compaction, layout
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.tables import REUSE_INDEX, REUSE_PLAN, to_parquet


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


def _sources(store: ObjectStore, fam: str, run_id: str) -> Iterator[str]:
    """The family's index files whose shard still has its results: its file, or a row in the
    source run's latest compaction generation (which absorbed the file)."""
    by_run: dict[str, list[tuple[int, str]]] = {}
    for obj in store.list(layout.reuse_family(fam)):
        parsed = layout.parse_reuse_index(obj.key)
        if parsed is not None and parsed[0] != run_id:
            by_run.setdefault(parsed[0], []).append((parsed[1], obj.key))
    for source in sorted(by_run):  # oldest run first: it wins a key several runs computed
        present = {o.key for o in store.list(layout.results_prefix(source))}
        gen = compaction.latest(store, source)  # its results files may be gone into a generation
        held = gen.results_shards if gen is not None else frozenset()
        for shard_id, key in by_run[source]:
            if shard_id in held or layout.results(source, shard_id) in present:
                yield key


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
    fam = family(sim.name, sim.version, request.seed)
    tables, origins = [], []
    for key in _sources(store, fam, run.run_id):
        table = pq.read_table(io.BytesIO(store.get(key)), columns=["key", "metrics"])
        tables.append(table)
        origins += [layout.parse_reuse_index(key)[0]] * table.num_rows  # type: ignore[index]
    counts: dict[int, int] = {}
    if tables:
        history = pa.concat_tables(tables)
        wanted = pa.array(_keys(sim, request), pa.binary(16))
        found = pc.index_in(wanted, value_set=history["key"])
        origin = pa.array(origins, pa.string())
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
                    "source_run_id": origin.take(positions),
                    "metrics": history["metrics"].take(positions),
                },
                schema=REUSE_PLAN,
            )
            store.put(layout.reuse_shard_plan(run.run_id, shard_id), to_parquet(table))
            counts[shard_id] = table.num_rows
    summary = {"shards": {str(k): v for k, v in counts.items()}, "reused": sum(counts.values())}
    store.create(layout.reuse_plan(run.run_id), json.dumps(summary).encode())
    logger.info(
        "reuse planned",
        extra={"run_id": run.run_id, "reused": summary["reused"], "sources": len(set(origins))},
    )
    return counts


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
