"""Cancelling a run: one marker in storage that dispatch leaves, workers and the reconciler read.

Cancelling is a record, not a signal: nothing is interrupted. Dispatch leaves skip the shards
they have not handed out yet, and workers that have not started evaluating write ``CANCELLED``
instead (docs/architecture.md, "Cancel"), so the run completes once nothing is in flight.
"""

from __future__ import annotations

from typing import Any

from chalicelib.fanout.invoking import Invoker, compactor_trigger
from chalicelib.logs import logger
from chalicelib.model.errors import Conflict
from chalicelib.storage import manifests
from chalicelib.storage.cancel_marker import USER, cancel_reason, mark_cancelled
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.summary import run_progress


def cancel(store: ObjectStore, run_id: str, invoker: Invoker | None = None) -> dict[str, Any]:
    """The 202's body. Twice is harmless (the first reason stands); a complete run is 409.
    ``invoker``: where a run this finds complete is handed to the compactor."""
    run = manifests.load(store, run_id)
    reason = cancel_reason(store, run_id)
    if reason is None:
        trigger = compactor_trigger(invoker)
        tolerated = run.request.tolerated_failure_percentage
        progress = run_progress(store, run_id, run.request.shard_count, trigger, tolerated)
        # The read that finds the run complete applies its failure threshold first: a run it
        # cancelled now was cancelled before this request, whose reason stands.
        if progress.complete and not progress.cancelled_now:
            raise Conflict(f"run {run_id} is complete; there is nothing to cancel")
        if mark_cancelled(store, run_id, USER):
            logger.info("run cancelled", extra={"run_id": run_id})
        reason = cancel_reason(store, run_id)
    return {
        "run_id": run_id,
        "cancelled": True,
        "cancel_reason": reason,
        "status_url": f"/sweeps/{run_id}",
    }
