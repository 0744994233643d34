"""The API's logic: submit a sweep, report a run's status, redrive its failed shards.

Nothing here imports pyarrow: status is computed from the manifest and key listings alone,
and a run is handed to the dispatcher function rather than fanned out in the API handler, so
the 202 costs the same for 10 shards as for 100,000.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonschema

from chalicelib import layout
from chalicelib import manifest as manifests
from chalicelib.errors import (
    InvalidRequest,
    PayloadTooLarge,
    Problem,
    SweepError,
    UnsupportedMediaType,
    pointer,
)
from chalicelib.invoking import Backoff, Invoker, send
from chalicelib.jobs import INITIAL, DispatchJob
from chalicelib.logs import logger
from chalicelib.manifest import Manifest
from chalicelib.partitioner import shard_bounds
from chalicelib.settings import Settings
from chalicelib.stores import ObjectStore
from chalicelib.validator import Limits, validate_request

REDRIVE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"include_pending": {"type": "boolean"}},
}


class DispatchUnavailable(SweepError):
    status = 503
    code = "dispatch_unavailable"


def limits(settings: Settings) -> Limits:
    return Limits(settings.max_points, settings.max_shards, settings.allow_fault_injection)


def api_backoff(settings: Settings) -> Backoff:
    """Few attempts: the client is waiting, and API Gateway gives up after 29 s."""
    return Backoff(min(4, settings.dispatch_max_attempts), settings.dispatch_backoff_ms)


def parse_json(raw: bytes | str | None, content_type: str | None, max_bytes: int) -> Any:
    """The body as JSON; every way a client can get this wrong is a 4xx with our error body."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(
            f"send Content-Type: application/json (got {content_type or 'none'})"
        )
    raw = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body has {len(raw)} bytes; the limit is {max_bytes}")
    if not raw.strip():
        raise InvalidRequest("the body is empty; send a JSON object")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InvalidRequest("the body is nested too deeply") from None


def submit(
    settings: Settings,
    store: ObjectStore,
    invoker: Invoker,
    raw: bytes | str | None,
    content_type: str | None,
) -> dict[str, Any]:
    """Validate, record the manifest, hand the run to the dispatcher; the 202's body."""
    body = parse_json(raw, content_type, settings.max_body_bytes)
    request = validate_request(body, limits(settings))
    now = datetime.now(UTC)
    run = Manifest(layout.new_run_id(now), now, settings.stage, request, limits(settings))
    manifests.save(store, run)
    job = DispatchJob(run.run_id, INITIAL, 0, request.shard_count)
    error = send(invoker, "dispatcher", job.to_payload(), api_backoff(settings))
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


def redrive(
    settings: Settings,
    store: ObjectStore,
    invoker: Invoker,
    run_id: str,
    raw: bytes | str | None,
    content_type: str | None,
) -> dict[str, Any]:
    """Re-dispatch failed (and optionally pending) shards; succeeded ones are never re-run."""
    body = parse_json(raw, content_type, settings.max_body_bytes) if raw and raw.strip() else {}
    problems = [
        Problem(pointer(*e.absolute_path), e.message)
        for e in jsonschema.Draft4Validator(REDRIVE_SCHEMA).iter_errors(body)
    ]
    if problems:
        raise InvalidRequest(problems[0].message, problems)
    run = manifests.load(store, run_id)
    states, _ = shard_states(store, run)
    ids = states.ids("failed") + (states.ids("pending") if body.get("include_pending") else [])
    ids.sort()
    if not ids:
        return {"run_id": run_id, "job": None, "redriven": []}
    record = json.dumps(
        {"shards": ids, "after_attempts": {k: states.latest_failure.get(k, 0) for k in ids}}
    ).encode()
    number = 1
    while not store.create(layout.redrive_list(run_id, f"redrive-{number}"), record):
        number += 1
    job = DispatchJob(run_id, f"redrive-{number}", 0, len(ids))
    error = send(invoker, "dispatcher", job.to_payload(), api_backoff(settings))
    if error is not None:
        raise DispatchUnavailable(f"redrive of {len(ids)} shards could not be dispatched: {error}")
    logger.info("redrive dispatched", extra={"run_id": run_id, "job": job.job, "shards": len(ids)})
    return {"run_id": run_id, "job": job.job, "redriven": ids, "status_url": f"/sweeps/{run_id}"}
