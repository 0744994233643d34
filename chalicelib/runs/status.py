"""A run's status, derived from key listings alone: no Parquet is read on the API path.

A complete run's comes from its summary (``storage.summary``: a GET and a short listing); a
running run's from its listings, the large ones in key ranges at once (``storage.key_ranges``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.fanout.invoking import Invoker, request_compaction
from chalicelib.model.events import INITIAL
from chalicelib.model.sharding import shard_bounds
from chalicelib.runs.cost import is_current, run_cost
from chalicelib.storage import layout, manifests, summary
from chalicelib.storage.cancel_marker import cancel_reason
from chalicelib.storage.reuse_plans import reuse_counts
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.summary import run_progress


def status(
    store: ObjectStore, run_id: str, catalog: bool = True, invoker: Invoker | None = None
) -> dict[str, Any]:
    """The contract's status body. ``catalog``: whether the stage registers partitions at all
    (without one, as on the local stage, every run is ``queryable``). ``invoker``: where a run
    this read finds complete is handed to the compactor."""
    run = manifests.load(store, run_id)
    request = run.request
    progress = run_progress(store, run_id, request.shard_count)
    if progress.written and invoker is not None:
        request_compaction(invoker, run_id)
    # Points from the shards that did not succeed: a complete run has few or none of them.
    missing = sum(
        end - start
        for start, end in (
            shard_bounds(request.total_points, request.shards, k)
            for k in (*progress.failed, *progress.pending)
        )
    )
    points = request.total_points - missing
    unsucceeded = {*progress.failed, *progress.pending}
    copied = reuse_counts(store, run_id) if request.reuse else {}
    reused = sum(n for k, n in copied.items() if k not in unsucceeded)
    cost = progress.cost
    if cost is None or not is_current(store, run_id, cost):
        cost = run_cost(store, run_id)  # one listing of the run's usage records
        if progress.complete:  # kept with the summary: a complete run's status stays constant
            summary.write(store, run_id, replace(progress, cost=cost))
    reason = cancel_reason(store, run_id)
    initial = progress.dispatch.get(INITIAL, {"dispatched": 0, "failed": 0})
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
        "shards": {
            "succeeded": progress.succeeded,
            "failed": len(progress.failed),
            "pending": len(progress.pending),
        },
        "complete": progress.complete,
        "failed_shards": progress.failed,
        "points_succeeded": points,
        "points_reused": reused,
        "points_evaluated": points - reused,
        "redrives": {
            job: counts for job, counts in sorted(progress.dispatch.items()) if job != INITIAL
        },
        "cancelled": reason is not None,
        "cancel_reason": reason,
        "auto_redrives": progress.auto_redrives,
        # Athena sees the run once its partitions are registered (the reconciler retries).
        "queryable": not catalog or store.exists(layout.registered_marker(run_id)),
        "cost": cost,
    }
