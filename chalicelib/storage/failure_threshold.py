"""The run's failure threshold (``tolerated_failure_percentage``): the policy that cancels a
run that fails too much.

It sits in the storage layer beside the read model it counts with, because the worker, the
dispatch leaves and the reconciler (three layers) all apply it after a final failure.
"""

from __future__ import annotations

from chalicelib.logs import logger
from chalicelib.storage import manifests
from chalicelib.storage.cancel_marker import FAILURE_THRESHOLD, is_cancelled, mark_cancelled
from chalicelib.storage.shard_states import shard_states
from chalicelib.storage.stores import ObjectStore


def over_threshold(failed: int, shard_count: int, tolerated_percentage: float) -> bool:
    """True once ``failed`` final failures exceed the run's tolerated share of its shards."""
    if tolerated_percentage >= 100:
        return False
    return failed * 100 > tolerated_percentage * shard_count


def enforce_threshold(store: ObjectStore, run_id: str) -> bool:
    """Cancel the run with reason FAILURE_THRESHOLD if its final failures exceed what it
    tolerates; True if this call cancelled it.

    Called after every final failure and by the reconciler. A run that tolerates 100 % (the
    default) costs one manifest GET here; only runs that set a lower tolerance pay for the
    listings that count their failures."""
    run = manifests.load(store, run_id)
    tolerated = run.request.tolerated_failure_percentage
    if tolerated >= 100 or is_cancelled(store, run_id):
        return False
    states, _ = shard_states(store, run)
    return _cancel_if_over(store, run_id, len(states.ids("failed")), states.count, tolerated)


def enforce_at_completion(
    store: ObjectStore, run_id: str, failed: int, shard_count: int, tolerated: float | None = None
) -> bool:
    """``enforce_threshold`` for a run just found complete with ``failed`` final failures, from
    the listing that found it, applied before its summary is written: the last shard's final
    failure often crosses the threshold, and whoever writes the summary first (a status read,
    ``GET /sweeps``) must not fix the run as complete and not cancelled, to be cancelled when
    the failure's own writer (the worker, a leaf, the reconciler) checks a moment later, or,
    for the failure recorder's failures, never (its check is the reconciler's, which takes a
    summarised run as finished). ``tolerated``: the run's tolerated percentage, else read from
    its manifest (a GET, asked only of a complete run with failures)."""
    if tolerated is None:
        tolerated = manifests.load(store, run_id).request.tolerated_failure_percentage
    return _cancel_if_over(store, run_id, failed, shard_count, tolerated)


def _cancel_if_over(
    store: ObjectStore, run_id: str, failed: int, shard_count: int, tolerated: float
) -> bool:
    if not over_threshold(failed, shard_count, tolerated):
        return False
    if mark_cancelled(store, run_id, FAILURE_THRESHOLD):
        logger.warning(
            "run cancelled: failures exceed the tolerated percentage",
            extra={"run_id": run_id, "failed": failed, "tolerated": tolerated},
        )
        return True
    return False
