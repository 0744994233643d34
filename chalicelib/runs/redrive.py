"""Re-dispatching a run's failed (and optionally pending) shards as new attempts.

Succeeded shards are never re-run, and a cancelled run is not redriven (409). The shard list
is stored first (one object per redrive, numbered by conditional create), so the dispatcher
tree reads it instead of carrying it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from chalicelib.config import Settings
from chalicelib.fanout.invoking import Invoker
from chalicelib.logs import logger
from chalicelib.model.errors import Conflict, DispatchUnavailable
from chalicelib.model.events import DispatchJob
from chalicelib.runs import handoff
from chalicelib.storage import layout, manifests, progress
from chalicelib.storage.stores import ObjectStore


def redrive(
    settings: Settings,
    store: ObjectStore,
    invoker: Invoker,
    run_id: str,
    include_pending: bool,
) -> dict[str, Any]:
    run = manifests.load(store, run_id)
    if progress.is_cancelled(store, run_id):
        raise Conflict(f"run {run_id} is cancelled; submit it again instead")
    states, _ = progress.shard_states(store, run)
    ids = states.ids("failed") + (states.ids("pending") if include_pending else [])
    ids.sort()
    if not ids:
        return {"run_id": run_id, "job": None, "redriven": []}
    record = json.dumps(
        {
            "shards": ids,
            "after_attempts": {k: states.latest_failure.get(k, 0) for k in ids},
            # Unique, so two concurrent redrives never both count one list as theirs
            # (a create treats a stored object equal to its own as created: stores.py).
            "claimed_by": uuid.uuid4().hex,
        }
    ).encode()
    number = 1
    while not store.create(layout.redrive_list(run_id, f"redrive-{number}"), record):
        number += 1
    store.put(layout.open_run(run_id), b"{}")  # the reconciler watches it again
    job = DispatchJob(run_id, f"redrive-{number}", 0, len(ids))
    error = handoff.to_dispatcher(settings, invoker, job)
    if error is not None:
        raise DispatchUnavailable(f"redrive of {len(ids)} shards could not be dispatched: {error}")
    logger.info("redrive dispatched", extra={"run_id": run_id, "job": job.job, "shards": len(ids)})
    return {"run_id": run_id, "job": job.job, "redriven": ids, "status_url": f"/sweeps/{run_id}"}
