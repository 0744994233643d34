"""The child: evaluate one shard's points and record its outcome, once, whatever is redelivered.

Deterministic failures are recorded as final and the handler returns normally, so Lambda does
not retry what would fail the same way. Storage failures are recorded as retryable (when the
store lets us) and re-raised, so Lambda's async retry runs the next attempt and, when retries
run out, the failure recorder writes the final outcome.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from chalicelib.execution import reuse, usage
from chalicelib.execution.columns import FEW_POINTS, group_columns, keyed_points, param_strings
from chalicelib.execution.failure_codes import FailureCode
from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing
from chalicelib.logs import logger
from chalicelib.model import events
from chalicelib.model.errors import NotFound
from chalicelib.simulations.batches import PointBatches
from chalicelib.simulations.declarations import Simulation, Value
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout, manifests
from chalicelib.storage import summary as run_summary
from chalicelib.storage.cancel_marker import is_cancelled
from chalicelib.storage.failure_threshold import enforce_threshold
from chalicelib.storage.stores import CountingStore, ObjectStore, StorageError
from chalicelib.storage.tables import ROW_GROUP_POINTS, ResultColumns, ResultsFile
from chalicelib.storage.together import together


class LambdaContext(Protocol):
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


# How often a running shard asks the store for the cancel marker: at most once per this many
# seconds of evaluation (one HEAD), at its looks (below). A cancel therefore stops a long shard
# within this time plus one point; short shards only see the check made before evaluating starts.
CANCEL_POLL_SECONDS = 5.0

# How often a running shard looks at its deadline and at ``CancelPoll``: before its first point,
# then at the first point that starts at least this long after its last look. Between looks the
# loop reads the monotonic clock once a point (~40 ns) and calls nothing: asking Lambda's context
# and the poll every point cost more than the rest of the loop's bookkeeping (profiled, issue 16).
# A shard thus stops within LOOK_SECONDS plus one point of crossing its deadline margin
# (``SWEEP_DEADLINE_MARGIN_MS``, 10 s by default, which this leaves in hand).
LOOK_SECONDS = 0.1


class CancelPoll:
    """True once the run is cancelled, asking the store at most once per ``every_s``."""

    def __init__(
        self,
        check: Callable[[], bool],
        every_s: float = CANCEL_POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check = check
        self.every_s = every_s
        self.clock = clock
        self._next = clock() + every_s

    def __call__(self) -> bool:
        now = self.clock()
        if now < self._next:
            return False
        self._next = now + self.every_s
        return self.check()


class InjectedCrash(RuntimeError):
    """``crash_shards``: the worker dies unhandled, as a crashing simulation would."""


class ShardFailure(Exception):
    def __init__(self, error: FailureCode, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def run_task(
    payload: Any,
    context: LambdaContext | None,
    store: ObjectStore,
    margin_ms: int,
    cancel_poll_s: float = CANCEL_POLL_SECONDS,
    look_s: float = LOOK_SECONDS,
) -> dict[str, Any]:
    """Run one delivery of a shard task; returns a small summary (also logged).

    A worker process runs one task at a time, so the shard's ids are logger keys for the
    task's duration: every line it logs, ours or a library's, names its shard. ``look_s`` and
    ``cancel_poll_s`` space the deadline and cancel checks (0: every point, as tests use)."""
    ref = ShardRef.from_payload(payload)
    if ref is None:
        logger.error("task names no shard; nothing can be recorded", extra={"payload": payload})
        return {"status": "rejected"}
    logger.append_keys(run_id=ref.run_id, shard_id=ref.shard_id)
    counting = CountingStore(store)  # the outcome's s3_requests and the run's cost
    started_ns = time.monotonic_ns()
    ended = "raised"
    try:
        summary = _run(payload, ref, context, counting, margin_ms, cancel_poll_s, look_s)
        ended = summary["status"]
    finally:
        if ended not in REFUSED or not run_summary.current(store, ref.run_id):
            what = layout.shard_what(ref.shard_id, ended)
            usage.record(counting, ref.run_id, "worker", what, started_ns)
        logger.remove_keys(["run_id", "shard_id"])
    return {"run_id": ref.run_id, "shard_id": ref.shard_id, **summary}


# How ``_run`` ends a delivery it refused: the shard's state was decided before it arrived.
REFUSED = ("duplicate", "closed")


def _run(
    payload: Any,
    ref: ShardRef,
    context: LambdaContext | None,
    store: ObjectStore,
    margin_ms: int,
    cancel_poll_s: float,
    look_s: float,
) -> dict[str, Any]:
    started = datetime.now(UTC)
    request_id = getattr(context, "aws_request_id", "") or ""
    writer = OutcomeWriter(store, attempt_requests=True)
    try:
        # The questions before any work, asked at once where the store gains from it (on S3
        # one round trip instead of three or four: ~40 ms of a cheap shard's ~170; a
        # duplicate delivery then pays them all); on a folder each is asked in turn, and only
        # if the one before let the shard run. The version the run was accepted under comes
        # with the event its dispatcher sent (from the manifest it read); only an event
        # without it has the manifest read (``_recorded_version``), and either is checked
        # once the task is parsed (``_check_version``). A shard
        # whose state is decided (succeeded, or its latest failure final and not redriven
        # since: ``OutcomeWriter.decided``) is never run again, so a delivery arriving after
        # its run completed or was compacted, hours late, writes neither an outcome nor
        # results, and status stays as it was.
        with together(store) as issue:
            succeeded = issue(lambda: writer.has_success(ref))
            decided = issue(lambda: writer.decided(ref))
            cancelled_before = issue(lambda: is_cancelled(store, ref.run_id))
            sent = payload.get("simulation_version") if isinstance(payload, dict) else None
            recorded = issue(lambda: _recorded_version(store, ref.run_id)) if sent is None else None
            if succeeded():
                logger.info("duplicate delivery of a succeeded shard")
                return {"status": "duplicate"}
            if decided():
                logger.warning("late delivery of a shard whose failure is final; nothing written")
                return {"status": "closed"}
            if cancelled_before():
                raise ShardFailure(
                    FailureCode.CANCELLED, "the run was cancelled before this shard ran"
                )
        try:
            shard = events.parse_task(payload)
        except events.InvalidTask as exc:
            raise ShardFailure(FailureCode.INVALID_TASK, str(exc)) from None
        _check_version(shard, shard.simulation_version if recorded is None else recorded())
        cancelled = CancelPoll(lambda: is_cancelled(store, ref.run_id), cancel_poll_s)
        deadline = _Deadline(context, margin_ms)
        with (
            _plan(store, ref, shard.request.reuse) as copied,
            _results_sink(store, shard.end - shard.start) as sink,
        ):
            results = ResultsFile(sink, ref.shard_id, shard.end - shard.start)
            try:
                _evaluate(
                    shard,
                    deadline.out_of_time,
                    cancelled,
                    results.write,
                    copied,
                    look_s,
                )
            finally:
                results.close()
            data = sink if isinstance(sink, Path) else sink.getvalue().to_pybytes()
            reused = len(copied) if copied is not None else 0
            attempt = writer.record_success(
                ref,
                data,
                results.rows,
                Timing.since(started),
                request_id,
                points_reused=reused,
                writing_until_ms=deadline.ends_ms(),
            )
        if attempt is None:
            logger.warning("the shard's failure became final while it ran; nothing written")
            return {"status": "closed"}
        summary = {"status": "succeeded", "attempt": attempt, "points": results.rows}
        if reused:
            summary["points_reused"] = reused
    except ShardFailure as failure:
        timing = Timing.since(started)
        attempt = writer.record_failure(ref, failure.error, failure.message, timing, request_id)
        summary = {"status": "failed", "attempt": attempt, "error_code": failure.error.code}
        _check_threshold(store, ref.run_id)
    except StorageError as exc:
        _record_storage_failure(writer, ref, str(exc), started, request_id)
        raise
    summary["duration_ms"] = Timing.since(started).duration_ms
    logger.info("shard finished", extra=summary)
    return summary


def _recorded_version(store: ObjectStore, run_id: str) -> str | None:
    """The simulation version the run was accepted under (its manifest's), or None when the
    run has no manifest (deleted; ``sweep estimate``'s throw-away shards)."""
    try:
        return manifests.load(store, run_id).simulation_version
    except NotFound:
        return None


def _check_version(shard: events.ShardTask, recorded: str | None) -> None:
    """Refuse a shard of a run accepted under another version of its simulation than the one
    deployed now (a redrive or a late retry after a deploy that bumped it): evaluated here its
    points would be the new code's numbers under the run's old version, and later runs would
    reuse them as such. Final: no retry or redrive on this deployment can run the old code."""
    current = REGISTRY[shard.request.simulation].version
    if recorded is not None and recorded != current:
        raise ShardFailure(
            FailureCode.SIMULATION_VERSION_CHANGED,
            f"the run was accepted under {shard.request.simulation} version {recorded!r}, and "
            f"this deployment has version {current!r}: its points are not evaluated with other "
            "code; submit the request again for the new version's numbers",
        )


@contextmanager
def _plan(store: ObjectStore, ref: ShardRef, reusing: bool) -> Iterator[reuse.ShardPlan | None]:
    """The shard's reuse plan (read as it is evaluated), or None for a run without reuse."""
    if not reusing:
        yield None
        return
    with reuse.open_plan(store, ref.run_id, ref.shard_id) as copied:
        yield copied


class _Deadline:
    """``out_of_time()``: True once too little time is left to finish writing an outcome (the
    context is read at each of the loop's looks). ``ends_ms()``: when the invocation is over
    at the latest (epoch ms), from the last look's reading (a shard that never looked reads
    it once); without a Lambda context (the local stage), the worker's timeout from now."""

    def __init__(self, context: LambdaContext | None, margin_ms: int) -> None:
        self.context = context if hasattr(context, "get_remaining_time_in_millis") else None
        self.margin_ms = margin_ms
        self._ends_ms: int | None = None

    def out_of_time(self) -> bool:
        if self.context is None:
            return False
        left = int(self.context.get_remaining_time_in_millis())
        self._ends_ms = time.time_ns() // 1_000_000 + left
        return left < self.margin_ms

    def ends_ms(self) -> int:
        if self.context is None:
            return time.time_ns() // 1_000_000 + usage.configured("worker").timeout_s * 1000
        if self._ends_ms is None:
            self.out_of_time()
        assert self._ends_ms is not None
        return self._ends_ms


def _check_threshold(store: ObjectStore, run_id: str) -> None:
    """After a final failure: cancel the run if it now fails more than it tolerates. Best
    effort: the outcome is recorded, and the reconciler checks again."""
    try:
        enforce_threshold(store, run_id)
    except Exception:
        logger.exception("failure threshold check failed", extra={"run_id": run_id})


def _evaluate(
    shard: events.ShardTask,
    out_of_time: Callable[[], bool],
    cancelled: Callable[[], bool],
    emit: Callable[[ResultColumns], None],
    copied: reuse.ShardPlan | None = None,
    look_s: float = LOOK_SECONDS,
) -> None:
    """Evaluate the shard's points, handing ``emit`` one row group (``ROW_GROUP_POINTS``) at a
    time, so memory is flat in the shard's size; the loop keeps only the metrics of each point.
    A point in ``copied`` (reuse, read one row group at a time alongside) takes the stored
    metrics as arrays, in place, and is neither decoded nor evaluated. The group's other points
    are decoded into dicts for the function; their stream keys and the group's parameter
    strings are made from its columns (``execution.columns``: computed from the indices, each
    distinct value's text made once), not from the dicts. ``out_of_time`` and ``cancelled`` are
    asked at the looks (``LOOK_SECONDS``): before evaluated points, and once for a group that
    copies every point. The group's metrics become one Arrow array. Nothing is written for
    reuse: a later plan or merge finds the points this shard evaluated in its results
    (``reuse.evaluated``)."""
    if shard.injected_crash:  # unhandled on purpose: Lambda retries, then OnFailure
        raise InjectedCrash(f"shard {shard.shard_id} is in crash_shards")
    if shard.injected_failure:
        raise ShardFailure(
            FailureCode.INJECTED_FAILURE, f"shard {shard.shard_id} is in fail_shards"
        )
    sim = REGISTRY[shard.request.simulation]
    space = shard.request.space
    # One re-keyed generator (stream v2); points decoded straight into effective parameters.
    batches, evaluate = _point_batches(sim, shard.request.seed)
    clock, due = time.monotonic, 0.0  # 0: look before the first point
    width = len(sim.metrics)
    for lo in range(shard.start, shard.end, ROW_GROUP_POINTS):
        hi = min(shard.end, lo + ROW_GROUP_POINTS)
        copies = copied.group(lo, hi) if copied else None
        # Points are decoded as they are evaluated, each dict dropped after its call (held in
        # a list, a group's 16,384 dicts outlived the young collections and made the
        # collector scan them all again and again).
        evaluated: Any = None  # which points are evaluated, with a reuse plan
        if copies is not None:  # only the points not copied, picked in C; none decoded
            evaluated = np.ones(hi - lo, dtype=bool)
            evaluated[copies.positions] = False
        columns = group_columns(space, lo, hi) if hi - lo > FEW_POINTS else None
        points, keys = keyed_points(batches, space, lo, hi, columns, evaluated)
        if not keys and clock() >= due:  # a group that copies every point
            _look(shard, lo, out_of_time, cancelled)
            due = clock() + look_s
        metrics: list[float] = []
        keep = metrics.extend
        for (index, point, _), key in zip(points, keys, strict=True):
            if clock() >= due:
                _look(shard, index, out_of_time, cancelled)
                due = clock() + look_s
            try:
                keep(evaluate(point, key))
            except Exception as exc:  # any error in simulation code fails this shard, not the run
                raise ShardFailure(
                    FailureCode.SIMULATION_ERROR, f"point {index}: {type(exc).__name__}: {exc}"
                ) from None
        del keys
        if copies is None:
            values = pa.array(metrics, pa.float64())
        else:  # the copied rows' stored metrics and the evaluated ones, each in its place
            table = np.empty((hi - lo, width))
            table[copies.positions] = copies.metrics.reshape(-1, width)
            table[evaluated] = np.array(metrics, dtype=np.float64).reshape(-1, width)
            values = pa.array(table.reshape(-1))
        params = param_strings(space, lo, hi, columns)
        emit(
            ResultColumns(
                space.columns,
                sim.metrics,
                range(lo, hi),
                params,
                values,
                space.replicates,
                copies.sources if copies is not None else None,
            )
        )


class _Evaluators(threading.local):
    """Each thread's evaluators by (simulation name, seed). Per thread, because an evaluator
    lends one re-keyed generator to every point it evaluates: two threads sharing it (a caller
    running worker invocations on threads, as the concurrent-delivery tests do) re-keyed it
    under each other, so a point could draw from another point's stream and a redelivered shard's
    results differ from its first delivery's."""

    def __init__(self) -> None:
        self.held: dict[
            tuple[str, int],
            tuple[Simulation, PointBatches, Callable[[dict[str, Value], bytes], list[float]]],
        ] = {}


_EVALUATORS = _Evaluators()


def _point_batches(
    sim: Simulation, seed: int
) -> tuple[PointBatches, Callable[[dict[str, Value], bytes], list[float]]]:
    """The thread's key maker and evaluator of (simulation, seed), made once, not once a
    shard: making one (a Philox generator and its checked layout) cost more than evaluating a
    cheap one-point shard. Reused as one point's generator is reused by the next (stream v2
    re-keys it per point). A simulation replaced under the same name (tests) gets its own."""
    cache = _EVALUATORS.held
    held = cache.get((sim.name, seed))
    if held is None or held[0] is not sim:
        if len(cache) >= 16:  # a process sees a few (simulation, seed) pairs
            cache.clear()
        batches = PointBatches(sim, seed)
        held = cache[(sim.name, seed)] = (sim, batches, batches.values())
    return held[1], held[2]


def _look(
    shard: events.ShardTask,
    index: int,
    out_of_time: Callable[[], bool],
    cancelled: Callable[[], bool],
) -> None:
    """Stop before point ``index`` when time is short or the run is cancelled."""
    if out_of_time():
        raise ShardFailure(
            FailureCode.DEADLINE_EXCEEDED,
            f"stopped at point {index} of [{shard.start}, {shard.end}) to leave time to "
            "record this outcome; use smaller shards",
        )
    if cancelled():
        raise ShardFailure(
            FailureCode.CANCELLED,
            f"the run was cancelled; stopped at point {index} of [{shard.start}, {shard.end})",
        )


@contextmanager
def _results_sink(store: ObjectStore, points: int) -> Iterator[Path | pa.BufferOutputStream]:
    """Where the shard's results are written: memory for a shard of one row group (small, and
    a file would cost a create, a link and an unlink per shard), else a temp file, removed
    afterwards (the store links or uploads it)."""
    if points <= ROW_GROUP_POINTS:
        yield pa.BufferOutputStream()
        return
    fd, name = tempfile.mkstemp(dir=store.scratch(), prefix=".tmp-results-", suffix=".parquet")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _record_storage_failure(
    writer: OutcomeWriter,
    ref: ShardRef,
    message: str,
    started: datetime,
    request_id: str,
) -> None:
    try:
        attempt = writer.record_failure(
            ref, FailureCode.STORAGE_ERROR, message, Timing.since(started), request_id
        )
        logger.warning("storage failed; Lambda will retry", extra={"attempt": attempt})
    except StorageError:
        logger.error("storage failed; could not record it either")
