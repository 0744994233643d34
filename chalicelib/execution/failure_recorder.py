"""The worker's OnFailure destination: a final outcome for a shard Lambda gave up on.

Lambda calls this when a worker crashed, ran out of memory or time on every attempt
(``RetriesExhausted``), or when the event waited too long to run (``EventAgeExceeded``). Without
it such a shard would have no outcome at all, and "every shard is represented" would be false.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from chalicelib.execution import usage
from chalicelib.execution.failure_codes import FailureCode
from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing
from chalicelib.logs import logger
from chalicelib.model import ids
from chalicelib.model.errors import NotFound
from chalicelib.model.events import INITIAL
from chalicelib.storage import layout, manifests, redrive_lists, summary
from chalicelib.storage.stores import ObjectStore

CONDITIONS = {
    "RetriesExhausted": FailureCode.RETRIES_EXHAUSTED,
    "EventAgeExceeded": FailureCode.EVENT_AGE_EXCEEDED,
}


def record_destination(record: dict[str, Any], store: ObjectStore) -> dict[str, Any]:
    context = record.get("requestContext") or {}
    payload = record.get("requestPayload")
    ref = ShardRef.from_payload(payload)
    if ref is None:
        logger.error("destination record names no shard", extra={"record": record})
        return {"status": "rejected"}
    run_id, shard_id = ref.run_id, ref.shard_id
    log = {"run_id": run_id, "shard_id": shard_id}
    foreign = _not_of_its_run(store, ref)
    if foreign is not None:
        logger.error("destination record names no shard of a stored run: " + foreign, extra=log)
        return {"status": "rejected"}
    writer = OutcomeWriter(store)
    job = payload.get("job") if isinstance(payload, dict) else None
    # Whatever became of the shard, the tries this record reports ran and Lambda bills them:
    # a record that changes no outcome (the shard succeeded or was closed meanwhile, by a
    # redrive or another delivery of the event; or a redrive replaced the event) still
    # charges them, flagged as bounds (``_record_crashes``: unless the run is summarised).
    if writer.has_success(ref):
        logger.info("shard already succeeded; no outcome to record", extra=log)
        _record_crashes(store, ref, context, job)
        return {"status": "already_succeeded", **log}
    if writer.decided(ref):  # a final failure (LOST, CANCELLED, DISPATCH_FAILED, ...) stands
        logger.warning("shard already closed; no outcome to record", extra=log)
        _record_crashes(store, ref, context, job)
        return {"status": "already_closed", **log}
    if _superseded(store, ref, job):
        logger.warning("record of an event a redrive replaced; no outcome to record", extra=log)
        _record_crashes(store, ref, context, job)
        return {"status": "superseded", **log}
    condition = str(context.get("condition", ""))
    error = CONDITIONS.get(condition, FailureCode.RETRIES_EXHAUSTED)
    now = datetime.now(UTC)
    attempt = writer.record_failure(
        ref,
        error,
        _message(record, condition),
        Timing(_timestamp(record.get("timestamp")) or now, now),
        str(context.get("requestId", "")),
    )
    logger.warning("final failure recorded", extra=log | {"attempt": attempt, "code": error.code})
    _record_crashes(store, ref, context, job)
    # The failure threshold is not checked here: the recorder may not write under runs/
    # (deploy/policies.py); the reconciler's next pass applies it to this failure too.
    return {"status": "failed", "attempt": attempt, "error_code": error.code, **log}


def _not_of_its_run(store: ObjectStore, ref: ShardRef) -> str | None:
    """Why the record's shard is not a shard of a stored run (None: it is). Only Lambda sends
    these records (the worker's destination, under the worker's role), but the record carries
    the event as it was, and a failure written for a run, shard or dt that does not exist
    would be a row no status counts and a cost no run has. One manifest GET a record: records
    come only from shards Lambda gave up on."""
    try:
        run = manifests.load(store, ref.run_id)
    except NotFound:
        return "no such run"
    if ref.shard_id >= run.request.shard_count:
        return f"the run has {run.request.shard_count} shards"
    if ref.dt != run.dt:
        return f"the run's dt is {run.dt}"
    return None


def _superseded(store: ObjectStore, ref: ShardRef, job: Any) -> bool:
    """Whether a redrive sent the shard again after the dispatch this record is about (the
    event's ``job``), so the redriven event is the live one: a record can reach this function
    hours after its event gave up (Lambda keeps a throttled one up to six hours), after the
    reconciler or a user redrove the shard, and recording its failure then closed the shard
    under the redriven worker, which found it decided and wrote nothing. A redrive replaces the
    initial dispatch whenever it lists the shard, and a redrive's dispatch when it lists the
    shard after a later attempt. An event with no job (sent before jobs were named) is never
    taken as replaced: its failure is recorded as before."""
    if not ids.is_job(job):
        return False
    lists = list(redrive_lists.every(store, ref.run_id))
    own = next((r for r in lists if r.job == job), None)
    after = own.after_attempts.get(ref.shard_id, 0) if own is not None else 0
    return any(
        r.job != job
        and ref.shard_id in r.shards
        and (job == INITIAL or r.after_attempts.get(ref.shard_id, 0) > after)
        for r in lists
    )


def _record_crashes(store: ObjectStore, ref: ShardRef, context: dict[str, Any], job: Any) -> None:
    """The attempts Lambda gave up on, for the run's cost: their durations are unknown, so
    each is charged the worker's timeout, flagged as an upper bound. Each try's record is
    named after the event (its request id, the same in every delivery of its destination
    record) and the try's number: Lambda delivers a destination record at least once, and a
    second delivery (at once, past the checks above; or of a superseded event, which no check
    stops) charged every try again. Not once the run is complete and summarised: its cost is
    then fixed in its summary and its usage rows in its compaction, so a record written now
    would be counted by the local engine alone (``summary.current``; docs/analytics.md
    "Cost" says what that leaves out)."""
    if summary.current(store, ref.run_id):
        return
    tries = context.get("approximateInvokeCount")
    request_id = context.get("requestId")
    event = json.dumps([request_id, job]).encode()
    name = hashlib.blake2b(event, digest_size=6).hexdigest() if request_id else None
    size = usage.configured("worker")
    # Lambda's count of tries (0: the event expired unrun); unknown counts as one.
    count = min(tries, 10) if isinstance(tries, int) and tries >= 0 else 1
    entry = layout.Usage(
        "worker",
        layout.shard_what(ref.shard_id, "crashed"),
        size.memory_mb,
        size.timeout_s * 1000,
        0,
        0,
        True,
    )
    for k in range(count):
        usage.write(store, ref.run_id, entry, f"{name}-{k}" if name else None)


def _message(record: dict[str, Any], condition: str) -> str:
    context = record.get("requestContext") or {}
    tries = context.get("approximateInvokeCount")
    response = record.get("responsePayload")
    if isinstance(response, dict) and (response.get("errorType") or response.get("errorMessage")):
        cause = f"{response.get('errorType', 'Error')}: {response.get('errorMessage', '')}"
    else:
        cause = (
            "the event expired before any attempt"
            if condition == "EventAgeExceeded"
            else ("no error payload (timeout or crash)")
        )
    return f"{condition or 'unknown condition'} after {tries} invocation(s): {cause}"


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None
