"""The reconciler: every accepted run ends with each shard represented, whatever was dropped.

Lambda may drop an async event or give up on one, and a local stage may be killed with its
queue. Runs on a schedule (``@app.schedule`` in deployed stages, a timer thread in the local
stage) and looks only at open runs (``layout.OPEN_RUNS``: one key per run, written with the
manifest and removed once the run is complete), never at every run.

Per open run, from listings (``storage.shard_states``; the read status and ``GET /sweeps`` use,
``storage.summary.run_progress``):

- complete: its summary is written (``storage.summary``), the compactor is asked for what its
  compaction still needs (``execution.compaction``: compact, point the catalog, delete what a
  generation replaced once the grace period is over), and once that is done its open marker
  is removed; after ``compaction_max_tries`` asks that did not get it done, the reconciler
  gives up (``layout.compaction_abandoned``: each try is charged to the run), the run stays
  readable from its per-shard files, and its marker is removed;
- progress since the last pass (any new outcome, marker, redrive list or dispatch record): the
  marker remembers the count and when it was first seen;
- a paced job whose state has been quiet for ``pacing_resume_s`` (its continuation event was
  lost): resumed from its cursor (``fanout.pacing.resume_quiet``);
- no progress for ``stall_timeout_s`` (or at once, when the invoker knows the run's events are
  gone: a restarted local stage, ``Invoker.orphaned``): the shards without a final outcome are
  re-dispatched as a redrive job ``auto-<n>`` (at most ``max_auto_redrives`` times; a
  cancelled run never), and after that each gets a final failure ``LOST`` (``CANCELLED`` for
  a cancelled run).

Safe to run concurrently with itself: the ``auto-<n>`` list and each shard's closing claim are
conditional creates, so one pass wins each step, and a shard that succeeded is never touched.
It lives in the fan-out layer because it re-dispatches and writes outcome files, which the API
layer must not import.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.analytics.catalog import Catalog, NoCatalog
from chalicelib.config import Settings
from chalicelib.execution.failure_codes import FailureCode
from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing
from chalicelib.fanout import pacing
from chalicelib.fanout.dispatcher import register_partitions
from chalicelib.fanout.invoking import (
    Backoff,
    Invoker,
    compactor_trigger,
    request_compaction,
    send,
)
from chalicelib.logs import logger
from chalicelib.model import ids
from chalicelib.model.errors import NotFound
from chalicelib.model.events import DispatchJob, run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.storage import compaction, layout, manifests, redrive_lists, summary
from chalicelib.storage.cancel_marker import is_cancelled
from chalicelib.storage.failure_threshold import enforce_threshold
from chalicelib.storage.shard_states import ShardStates, shard_states
from chalicelib.storage.stores import ObjectStore

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def reconcile(
    store: ObjectStore,
    invoker: Invoker,
    settings: Settings,
    now: Clock = _utcnow,
    catalog: Catalog | None = None,
) -> dict[str, int]:
    """One pass over the open runs; returns how many runs ended in each action."""
    actions: Counter[str] = Counter()
    for obj in store.list(layout.OPEN_RUNS):
        run_id = layout.parse_open_run(obj.key)
        if run_id is None:
            continue
        try:
            actions[reconcile_run(store, invoker, settings, run_id, now, catalog)] += 1
        except Exception:  # one bad run must not stop the others
            logger.exception("reconciling a run failed", extra={"run_id": run_id})
            actions["error"] += 1
    if actions:
        logger.info("reconciler pass", extra=dict(actions))
    return dict(actions)


def reconcile_run(
    store: ObjectStore,
    invoker: Invoker,
    settings: Settings,
    run_id: str,
    now: Clock = _utcnow,
    catalog: Catalog | None = None,
) -> str:
    marker = layout.open_run(run_id)
    try:
        run = manifests.load(store, run_id)
    except NotFound:
        store.delete(marker)
        return "orphan"
    # A run whose partitions are not registered is invisible to Athena: register it again on
    # every pass, and keep the run open (watched) until that succeeds.
    registered = store.exists(layout.registered_marker(run_id)) or register_partitions(
        store, catalog or NoCatalog(), run
    )
    if registered and summary.read(store, run_id) is not None:  # found complete before, by anyone
        return _finish_run(store, invoker, settings, run, now)
    enforce_threshold(store, run_id)
    states, _ = shard_states(store, run)
    pending = states.ids("pending")
    if not pending:
        return _finish_run(store, invoker, settings, run, now) if registered else "unregistered"
    seen = _snapshot(store, marker)
    t = now()
    if pacing.resume_quiet(store, invoker, settings, run_id, t):
        return "resumed-pacing"
    if not invoker.orphaned(run_id, run.created_at):  # else stalled now: its events are gone
        if seen is None or seen[0] != states.objects or invoker.in_flight(run_id):
            _remember(store, marker, states.objects, t)
            return "progressing"
        if (t - seen[1]).total_seconds() < settings.stall_timeout_s:
            return "waiting"
    cancelled = is_cancelled(store, run_id)
    if not cancelled and states.auto_redrives < settings.max_auto_redrives:
        return _redrive(store, invoker, settings, run, states, pending)
    code = FailureCode.CANCELLED if cancelled else FailureCode.LOST
    closed = _close_shards(store, run, states, pending, code, t)
    enforce_threshold(store, run_id)
    logger.warning(
        "stalled shards closed",
        extra={"run_id": run_id, "code": code.code, "shards": len(pending), "closed": closed},
    )
    return f"closed-{code.code.lower()}"


def _finish_run(
    store: ObjectStore, invoker: Invoker, settings: Settings, run: Manifest, now: Clock
) -> str:
    """A complete run stays open until its compaction is done (committed for its latest redrive,
    the catalog pointed at it, what it replaced deleted after the grace period): each pass
    asks the compactor for the next step when one is due, so a lost trigger only delays it."""
    progress = summary.run_progress(
        store,
        run.run_id,
        run.request.shard_count,
        compactor_trigger(invoker),
        run.request.tolerated_failure_percentage,
    )
    if not progress.complete:
        return "reopened"  # a redrive came first: the marker stays
    marker = layout.open_run(run.run_id)
    if progress.written and invoker.can_invoke("compactor"):  # and so asked for compaction
        store.put(marker, json.dumps({"compaction_asked": now().isoformat()}).encode())
        return "compacting"
    step = _compaction_step(store, settings, run.run_id, now())
    if step is None or not invoker.can_invoke("compactor"):
        return _close_run(store, invoker, run)
    if step == "grace":
        return "compacted"
    t = now()
    asked, tries = _compaction_asked(store, marker)
    recent = asked is not None and (t - asked).total_seconds() < settings.compaction_retry_s
    if invoker.in_flight(run.run_id) or recent:
        return "compacting"
    if tries >= settings.compaction_max_tries:
        # Each try is charged to the run: give up, and say so (status, the record).
        record = {"tries": tries, "redrive_jobs": list(progress.redrive_jobs), "step": step}
        store.put(layout.compaction_abandoned(run.run_id), json.dumps(record).encode())
        logger.error("compaction abandoned", extra={"run_id": run.run_id, **record})
        return _close_run(store, invoker, run)
    record = {"compaction_asked": t.isoformat(), "compaction_tries": tries + 1}
    store.put(marker, json.dumps(record).encode())
    request_compaction(invoker, run.run_id)
    return "compacting"


def _compaction_step(
    store: ObjectStore, settings: Settings, run_id: str, t: datetime
) -> str | None:
    """What the complete run's compaction still needs: ``compact`` (no generation for its
    latest redrive, or the catalog not pointed at it), ``grace`` (waiting to delete what it
    replaced), ``clean`` (that wait is over), or None (done)."""
    if ids.run_dt(run_id) is None:
        return None  # not a server-made id: no dt to compact its partitions under
    progress = summary.read(store, run_id)
    abandoned = compaction.abandoned_for(store, run_id)
    if progress is not None and abandoned and abandoned.redrive_jobs == progress.redrive_jobs:
        return None  # given up after its tries
    gen = compaction.latest(store, run_id)
    if progress is None or gen is None or gen.redrive_jobs != progress.redrive_jobs:
        return "compact"
    pointed = compaction.pointed_at(store, run_id, gen.number)
    if pointed is None:
        return "compact"
    if compaction.cleaned(store, run_id, gen.number):
        return None
    return "clean" if compaction.cleanup_due(pointed, settings.compaction_grace_s, t) else "grace"


def _compaction_asked(store: ObjectStore, marker: str) -> tuple[datetime | None, int]:
    """When the reconciler last asked the compactor for the run, and how many times it has."""
    try:
        data = json.loads(store.get(marker) or b"{}")
        return datetime.fromisoformat(data["compaction_asked"]), int(
            data.get("compaction_tries", 0)
        )
    except (KeyError, ValueError, TypeError):
        return None, 0


def _close_run(store: ObjectStore, invoker: Invoker, run: Manifest) -> str:
    """Remove the open marker; put it back if a redrive reopened the run meanwhile (a redrive
    writes its list before the marker, so whichever order the two race in, one is seen). The
    re-read is the shared one (``summary.run_progress``), so it leaves the run's summary."""
    marker = layout.open_run(run.run_id)
    store.delete(marker)
    again = summary.run_progress(
        store,
        run.run_id,
        run.request.shard_count,
        compactor_trigger(invoker),
        run.request.tolerated_failure_percentage,
    )
    if not again.complete or again.written:  # redriven since: watched (and compacted) again
        store.put(marker, b"{}")
        return "reopened"
    return "complete"


def _snapshot(store: ObjectStore, marker: str) -> tuple[int, datetime] | None:
    try:
        data = json.loads(store.get(marker) or b"{}")
        return int(data["objects"]), datetime.fromisoformat(data["since"])
    except (KeyError, ValueError, TypeError):
        return None


def _remember(store: ObjectStore, marker: str, objects: int, t: datetime) -> None:
    store.put(marker, json.dumps({"objects": objects, "since": t.isoformat()}).encode())


def _redrive(
    store: ObjectStore,
    invoker: Invoker,
    settings: Settings,
    run: Manifest,
    states: ShardStates,
    pending: list[int],
) -> str:
    number = states.auto_redrives + 1
    job = layout.auto_redrive_job(number)
    after = {k: states.latest_failure.get(k, 0) for k in pending}
    if not redrive_lists.create(store, run.run_id, job, pending, after, reason="stalled"):
        return "raced"  # another pass of the reconciler did this step
    backoff = Backoff.from_settings(settings)
    error = send(
        invoker, "dispatcher", DispatchJob(run.run_id, job, 0, len(pending)).to_payload(), backoff
    )
    extra: dict[str, Any] = {"run_id": run.run_id, "job": job, "shards": len(pending)}
    if error is not None:  # the list counts as progress; the next stall redrives again
        logger.error("auto redrive not dispatched", extra=extra | {"error": error})
        return "redrive-failed"
    logger.warning("stalled run re-dispatched", extra=extra)
    return "redriven"


def _close_shards(
    store: ObjectStore,
    run: Manifest,
    states: ShardStates,
    pending: list[int],
    code: FailureCode,
    t: datetime,
) -> int:
    writer = OutcomeWriter(store)
    closed = 0
    for shard_id in pending:
        # One claim per (shard, latest attempt): concurrent passes close a shard once, and a
        # shard redriven by hand after being closed can be closed again.
        claim = layout.closed_claim(run.run_id, shard_id, states.latest_failure.get(shard_id, 0))
        if not store.create(claim, uuid.uuid4().hex.encode()):  # unique: see stores.create
            continue
        ref = ShardRef.from_payload(run_task_payload(run, shard_id))
        assert ref is not None  # built from the manifest just above
        if writer.has_success(ref):
            continue
        message = (
            "the run was cancelled and this shard never reported"
            if code is FailureCode.CANCELLED
            else f"no outcome after {states.auto_redrives} automatic re-dispatches and the "
            "stall timeout; the event was lost"
        )
        writer.record_failure(ref, code, message, Timing(t, t), "")
        closed += 1
    return closed
