"""A run's status, derived from key listings alone: no Parquet is read on the API path.

The run folder is listed by its narrow sub-folders, not whole: it also holds a success lock
per shard, which status does not need.
"""

from __future__ import annotations

from typing import Any

from chalicelib.model.events import INITIAL
from chalicelib.model.sharding import shard_bounds
from chalicelib.runs.cost import run_cost
from chalicelib.storage import layout, manifests
from chalicelib.storage.cancel_marker import cancel_reason
from chalicelib.storage.reuse_plans import reuse_counts
from chalicelib.storage.shard_states import shard_states
from chalicelib.storage.stores import ObjectStore


def status(store: ObjectStore, run_id: str, catalog: bool = True) -> dict[str, Any]:
    """The contract's status body. ``catalog``: whether the stage registers partitions at all
    (without one, as on the local stage, every run is ``queryable``)."""
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
    copied = reuse_counts(store, run_id) if request.reuse else {}
    reused = sum(copied.get(k, 0) for k in by_state["succeeded"])
    reason = cancel_reason(store, run_id)
    initial = dispatch.get(INITIAL, {"dispatched": 0, "failed": 0})
    return {
        "run_id": run.run_id,
        "label": request.label,
        "simulation": request.simulation,
        "simulation_version": run.simulation_version,
        "request": run.request_body,
        "created_at": run.created_at_text,
        "total_points": request.total_points,
        "shard_count": request.shard_count,
        "dispatch": initial,
        "shards": {s: len(ids) for s, ids in by_state.items()},
        "complete": not by_state["pending"],
        "failed_shards": by_state["failed"],
        "points_succeeded": points,
        "points_reused": reused,
        "points_evaluated": points - reused,
        "redrives": {job: counts for job, counts in sorted(dispatch.items()) if job != INITIAL},
        "cancelled": reason is not None,
        "cancel_reason": reason,
        "auto_redrives": states.auto_redrives,
        # Athena sees the run once its partitions are registered (the reconciler retries).
        "queryable": not catalog or store.exists(layout.registered_marker(run_id)),
        "cost": run_cost(store, run_id),
    }
