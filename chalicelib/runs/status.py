"""A run's status, derived from key listings alone: no Parquet is read on the API path.

A complete run's comes from its summary (``storage.summary``: a GET and a short listing); a
running run's from its listings, the large ones in key ranges at once (``storage.key_ranges``).
"""

from __future__ import annotations

from typing import Any

from chalicelib.model.events import INITIAL
from chalicelib.model.sharding import shard_bounds
from chalicelib.storage import manifests
from chalicelib.storage.cancel_marker import cancel_reason
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.summary import run_progress


def status(store: ObjectStore, run_id: str) -> dict[str, Any]:
    run = manifests.load(store, run_id)
    request = run.request
    progress = run_progress(store, run_id, request.shard_count)
    # Points from the shards that did not succeed: a complete run has few or none of them.
    missing = sum(
        end - start
        for start, end in (
            shard_bounds(request.total_points, request.shards, k)
            for k in (*progress.failed, *progress.pending)
        )
    )
    reason = cancel_reason(store, run_id)
    initial = progress.dispatch.get(INITIAL, {"dispatched": 0, "failed": 0})
    return {
        "run_id": run.run_id,
        "label": request.label,
        "simulation": request.simulation,
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
        "points_succeeded": request.total_points - missing,
        "redrives": {
            job: counts for job, counts in sorted(progress.dispatch.items()) if job != INITIAL
        },
        "cancelled": reason is not None,
        "cancel_reason": reason,
        "auto_redrives": progress.auto_redrives,
    }
