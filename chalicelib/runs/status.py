"""A run's status, derived from key listings alone: no Parquet is read on the API path.

A complete run's comes from its summary (``storage.summary``: a GET and a short listing); a
running run's from its listings, the large ones in key ranges at once (``storage.key_ranges``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.fanout.invoking import Invoker, compactor_trigger
from chalicelib.model.events import INITIAL
from chalicelib.model.sharding import points_of
from chalicelib.runs.cost import compactor_records, is_current, run_cost
from chalicelib.storage import compaction, layout, manifests, summary
from chalicelib.storage.cancel_marker import FAILURE_THRESHOLD, cancel_reason
from chalicelib.storage.reuse_plans import reuse_counts
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.together import together


def status(
    store: ObjectStore, run_id: str, catalog: bool = True, invoker: Invoker | None = None
) -> dict[str, Any]:
    """The contract's status body. ``catalog``: whether the stage registers partitions at all
    (without one, as on the local stage, every run is ``queryable``). ``invoker``: where a run
    this read finds complete is handed to the compactor.

    The reads that do not depend on each other are issued at once (``storage.together``): a
    complete run's status is one round of requests on S3 (manifest, summary and its redrive
    lists, cancel marker, registered marker, compactor records, the compaction's abandoned
    record), whatever its shard count; a
    running run's adds its listings, its usage records listed beside its outcomes."""
    with together(store) as issue:
        manifest = issue(lambda: manifests.load(store, run_id))
        stored = issue(lambda: summary.read(store, run_id))
        reason = issue(lambda: cancel_reason(store, run_id))
        queryable = issue(lambda: not catalog or store.exists(layout.registered_marker(run_id)))
        compactors = issue(lambda: compactor_records(store, run_id))
        abandoned = issue(lambda: compaction.abandoned_for(store, run_id))
        run = manifest()
        request = run.request
        progress = stored()
        # A reusing run's plan counts (one entry a shard), unless its summary holds their sum.
        counting = request.reuse and (progress is None or progress.points_reused is None)
        copied = issue(lambda: reuse_counts(store, run_id) if counting else {})
        listed_cost = None
        if progress is None:  # running, or complete and never summarised since its last redrive
            listed_cost = issue(lambda: run_cost(store, run_id, request.shard_count))
            progress = summary.listed(
                store,
                run_id,
                request.shard_count,
                compactor_trigger(invoker),
                request.tolerated_failure_percentage,
            )
        reused = progress.points_reused
        if reused is None:  # a reusing run's copies count where their shard succeeded
            unsucceeded = {*progress.failed, *progress.pending}
            reused = sum(n for k, n in copied().items() if k not in unsucceeded)
        cost = progress.cost
        stale = cost is None or not is_current(cost, compactors())
        if not progress.complete:
            assert listed_cost is not None  # a stored summary is always complete
            cost = listed_cost()
        elif stale or progress.points_reused is None:  # counted once found complete; kept
            if stale:
                cost = run_cost(store, run_id, request.shard_count)
            summary.write(store, run_id, replace(progress, cost=cost, points_reused=reused))
    # The cancel marker was read before the listing, which may have cancelled the run (its
    # failure threshold, applied as it found the run complete).
    cancelled = FAILURE_THRESHOLD if progress.cancelled_now else reason()
    # Points from the shards that did not succeed (each list ascending).
    missing = sum(
        points_of(request.total_points, request.shards, shards)
        for shards in (progress.failed, progress.pending)
    )
    points = request.total_points - missing
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
        "cancelled": cancelled is not None,
        "cancel_reason": cancelled,
        "auto_redrives": progress.auto_redrives,
        # Athena sees the run once its partitions are registered (the reconciler retries).
        "queryable": queryable(),
        "cost": cost,
        # True once the reconciler gave up compacting the complete run (docs/analytics.md
        # "Compaction"): it is read from its per-shard files, correctly but more slowly.
        "compaction_abandoned": progress.complete and _read_from_shards(abandoned(), progress),
    }


def _read_from_shards(
    abandoned: compaction.Abandoned | None, progress: summary.RunProgress
) -> bool:
    """Whether the reconciler gave up compacting the run as it now is (no redrive since)
    before its generation was committed, so readers use its per-shard files."""
    return (
        abandoned is not None
        and abandoned.redrive_jobs == progress.redrive_jobs
        and abandoned.read_from_shards
    )
