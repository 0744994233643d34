"""Accepting a sweep: validate, record the manifest, hand the run to the dispatcher."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.config import Settings
from chalicelib.fanout.invoking import Invoker
from chalicelib.logs import logger
from chalicelib.model import events, ids
from chalicelib.model.errors import DispatchUnavailable, PayloadTooLarge, Problem
from chalicelib.model.events import INITIAL, DispatchJob, run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.validation import validate_request
from chalicelib.runs import handoff
from chalicelib.storage import manifests
from chalicelib.storage.stores import ObjectStore


def submit(
    settings: Settings,
    store: ObjectStore,
    invoker: Invoker,
    body: Any,
    found: Sequence[Problem] = (),
) -> dict[str, Any]:
    """The 202's body. ``found``: problems of the body's text (a name given twice,
    ``api.bodies.parse_json``), answered with every other one. The manifest is stored before
    the hand-over, so a run that could not be handed over is still known and can be redriven."""
    limits = handoff.limits(settings)
    request = validate_request(body, limits, found)
    now = datetime.now(UTC)
    run = Manifest.new(ids.new_run_id(now), now, settings.stage, request, limits)
    _check_event_size(run)
    manifests.save(store, run)
    job = DispatchJob(run.run_id, INITIAL, 0, request.shard_count)
    error = handoff.to_dispatcher(settings, invoker, job)
    if error is not None:
        logger.error(
            "run not handed to the dispatcher", extra={"run_id": run.run_id, "error": error}
        )
        raise DispatchUnavailable(
            f"run {run.run_id} was recorded but could not be dispatched ({error}); "
            "redrive it with include_pending once dispatch is available"
        )
    logger.info(
        "run accepted",
        extra={"run_id": run.run_id, "shards": request.shard_count, "points": request.total_points},
    )
    return {
        "run_id": run.run_id,
        "status_url": f"/sweeps/{run.run_id}",
        "total_points": request.total_points,
        "shard_count": request.shard_count,
    }


def _check_event_size(run: Manifest) -> None:
    """Every worker event carries the request; measure one as it will be sent, in bytes. The
    body limit counts the body's own bytes, but ``json.dumps`` escapes non-ASCII (an emoji's 4
    bytes become 12), so a body within it can still make events over Lambda's 1 MB: refuse it
    now, before anything is stored, instead of failing every shard's dispatch later. The last
    shard's event is the largest (its numbers are), as a redrive with the longest job name
    sends it."""
    try:
        events.encode(run_task_payload(run, run.request.shard_count - 1, ids.LONGEST_JOB))
    except ValueError as exc:
        raise PayloadTooLarge(
            f"{exc} once encoded (non-ASCII text is sent escaped); shorten the request"
        ) from None
