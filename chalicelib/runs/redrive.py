"""Re-dispatching a run's failed (and optionally pending) shards as new attempts.

Succeeded shards are never re-run, and a cancelled run is not redriven (409). The shard list
is stored first (one object per redrive, numbered by conditional create), so the dispatcher
tree reads it instead of carrying it.
"""

from __future__ import annotations

from typing import Any

from chalicelib.config import Settings
from chalicelib.fanout.invoking import Invoker
from chalicelib.logs import logger
from chalicelib.model.errors import Conflict, DispatchUnavailable
from chalicelib.model.events import DispatchJob
from chalicelib.model.manifest import Manifest
from chalicelib.runs import handoff
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout, manifests, redrive_lists
from chalicelib.storage.cancel_marker import is_cancelled
from chalicelib.storage.shard_states import shard_states
from chalicelib.storage.stores import ObjectStore


def redrive(
    settings: Settings,
    store: ObjectStore,
    invoker: Invoker,
    run_id: str,
    include_pending: bool,
) -> dict[str, Any]:
    run = manifests.load(store, run_id)
    if is_cancelled(store, run_id):
        raise Conflict(f"run {run_id} is cancelled; submit it again instead")
    _check_version(run)
    states, _ = shard_states(store, run)
    ids = states.ids("failed") + (states.ids("pending") if include_pending else [])
    ids.sort()
    if not ids:
        return {"run_id": run_id, "job": None, "redriven": []}
    after = {k: states.latest_failure.get(k, 0) for k in ids}
    name = redrive_lists.create_manual(store, run_id, ids, after)
    store.put(layout.open_run(run_id), b"{}")  # the reconciler watches it again
    job = DispatchJob(run_id, name, 0, len(ids))
    error = handoff.to_dispatcher(settings, invoker, job)
    if error is not None:
        raise DispatchUnavailable(_undispatched(store, run_id, name, len(ids), error))
    logger.info("redrive dispatched", extra={"run_id": run_id, "job": job.job, "shards": len(ids)})
    return {"run_id": run_id, "job": job.job, "redriven": ids, "status_url": f"/sweeps/{run_id}"}


def _check_version(run: Manifest) -> None:
    """Refuse (409) a redrive its workers would refuse shard by shard: the run was accepted
    under another version of its simulation than the one deployed now, and a worker never
    evaluates a run's points with other code (``SIMULATION_VERSION_CHANGED``, final). Sent,
    every shard would cost an invocation to fail for good, and the run a new compaction."""
    if run.simulation_as_accepted() is None:
        request = run.request
        deployed = REGISTRY.get(request.simulation)
        now = f"version {deployed.version!r}" if deployed is not None else "no such simulation"
        raise Conflict(
            f"run {run.run_id} was accepted under {request.simulation} version "
            f"{run.simulation_version!r} and this deployment has {now}: its shards would not "
            "be evaluated with other code; submit the request again for the new version"
        )


def _undispatched(store: ObjectStore, run_id: str, job: str, shards: int, error: str) -> str:
    """The 503's message once the redrive's list is withdrawn (``redrive_lists.withdraw``): its
    shards read as before, so the same redrive can simply be asked again. Should the
    withdrawal fail too, they read as pending, and only a redrive with ``include_pending``
    (or the reconciler, after its stall timeout) sends them."""
    try:
        redrive_lists.withdraw(store, run_id, job)
    except Exception:
        logger.exception("undispatched redrive not withdrawn", extra={"run_id": run_id, "job": job})
        return (
            f"redrive of {shards} shards could not be dispatched ({error}); its shards now read "
            "as pending: redrive again with include_pending once dispatch is available"
        )
    return (
        f"redrive of {shards} shards could not be dispatched ({error}); nothing was redriven: "
        "redrive again once dispatch is available"
    )
