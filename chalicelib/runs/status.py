"""A run's status, derived from key listings alone: no Parquet is read on the API path.

The run folder is listed by its narrow sub-folders, not whole: it also holds a success lock
per shard, which status does not need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalicelib.model.events import INITIAL
from chalicelib.model.manifest import Manifest
from chalicelib.model.sharding import shard_bounds
from chalicelib.storage import layout, manifests
from chalicelib.storage.stores import ObjectStore


@dataclass
class ShardStates:
    """Each shard's state per the contract, derived from key listings only."""

    count: int
    succeeded: set[int] = field(default_factory=set)
    latest_failure: dict[int, int] = field(default_factory=dict)
    retrying: set[tuple[int, int]] = field(default_factory=set)
    redriven_after: dict[int, int] = field(default_factory=dict)

    def state(self, shard_id: int) -> str:
        if shard_id in self.succeeded:
            return "succeeded"
        latest = self.latest_failure.get(shard_id)
        if latest is None or (shard_id, latest) in self.retrying:
            return "pending"
        if latest <= self.redriven_after.get(shard_id, 0):
            return "pending"  # redriven, and no newer attempt has landed yet
        return "failed"

    def ids(self, state: str) -> list[int]:
        return [k for k in range(self.count) if self.state(k) == state]


def shard_states(store: ObjectStore, run: Manifest) -> tuple[ShardStates, dict[str, Any]]:
    """Each shard's state and the dispatch counts per job, from four listings.

    The run folder is listed by its narrow sub-folders, not whole: it also holds a success lock
    per shard, which status does not need."""
    states = ShardStates(run.request.shard_count)
    for obj in store.list(layout.outcomes_prefix(run.run_id)):
        key = layout.parse_outcome(obj.key)
        if key is None or key.shard_id >= states.count:
            continue
        if key.status == "succeeded":
            states.succeeded.add(key.shard_id)
        elif key.attempt > states.latest_failure.get(key.shard_id, 0):
            states.latest_failure[key.shard_id] = key.attempt
    for obj in store.list(layout.retry_markers_prefix(run.run_id)):
        if (marker := layout.parse_retry_marker(obj.key)) is not None:
            states.retrying.add(marker)
    for obj in store.list(layout.redrive_lists_prefix(run.run_id)):
        redrive = json.loads(store.get(obj.key))
        for shard, attempt in redrive["after_attempts"].items():
            states.redriven_after[int(shard)] = max(
                attempt, states.redriven_after.get(int(shard), 0)
            )
    return states, dispatch_counts(store, run.run_id)


def dispatch_counts(store: ObjectStore, run_id: str) -> dict[str, dict[str, int]]:
    """Shards handed over and refused, per dispatch job, from the leaves' progress records."""
    leaves: dict[tuple[str, int, int], layout.DispatchRecord] = {}
    for obj in store.list(layout.dispatch_records_prefix(run_id)):
        if (record := layout.parse_dispatch_record(obj.key)) is not None:
            # A leaf delivered twice records twice; its best count stands.
            leaf = (record.job, record.lo, record.hi)
            if leaf not in leaves or record.dispatched > leaves[leaf].dispatched:
                leaves[leaf] = record
    counts: dict[str, dict[str, int]] = {}
    for record in leaves.values():
        job = counts.setdefault(record.job, {"dispatched": 0, "failed": 0})
        job["dispatched"] += record.dispatched
        job["failed"] += record.failed
    return counts


def status(store: ObjectStore, run_id: str) -> dict[str, Any]:
    run = manifests.load(store, run_id)
    states, dispatch = shard_states(store, run)
    by_state = {s: states.ids(s) for s in ("succeeded", "failed", "pending")}
    request = run.request
    points = sum(
        end - start
        for start, end in (
            shard_bounds(request.total_points, request.shards, k) for k in by_state["succeeded"]
        )
    )
    initial = dispatch.get(INITIAL, {"dispatched": 0, "failed": 0})
    return {
        "run_id": run.run_id,
        "label": request.label,
        "simulation": request.simulation,
        "created_at": run.created_at_text,
        "total_points": request.total_points,
        "shard_count": request.shard_count,
        "dispatch": initial,
        "shards": {s: len(ids) for s, ids in by_state.items()},
        "complete": not by_state["pending"],
        "failed_shards": by_state["failed"],
        "points_succeeded": points,
        "redrives": {job: counts for job, counts in sorted(dispatch.items()) if job != INITIAL},
    }
