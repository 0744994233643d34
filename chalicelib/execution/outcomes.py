"""Recording a shard's outcome so that repeats and races can never lose or duplicate one.

- Success: the first writer of the shard's success lock (a conditional create) fixes the
  attempt number of the one success outcome; anyone who finds the lock taken finishes the
  same two writes (results file, success outcome) with conditional creates, so a winner that
  died half-way is completed and a live one is never overwritten.
- Failure: each failed attempt claims the next free attempt number with a conditional create
  on its own outcome key. A retryable failure then gets a retry marker, so status can
  tell "a retry will follow" from a final failure by listing alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

import pyarrow as pa
import pyarrow.parquet as pq

from chalicelib.execution.failure_codes import FailureCode, bounded
from chalicelib.logs import logger
from chalicelib.model.events import identify
from chalicelib.storage import layout, redrive_lists, success_claims
from chalicelib.storage.stores import CountingStore, ObjectStore, StorageError
from chalicelib.storage.success_claims import Claim
from chalicelib.storage.tables import outcome_parquet


@dataclass(frozen=True)
class ShardRef:
    """What an outcome row says about the shard, whatever happened to it."""

    run_id: str
    shard_id: int
    dt: str
    start: int
    end: int
    simulation: str | None

    @classmethod
    def from_payload(cls, payload: Any) -> ShardRef | None:
        """The shard a worker event names, or None if it names none well enough to record.

        The one way worker, dispatcher and failure recorder describe a shard: from the event,
        whose bounds and simulation are taken as given, so even a task that fails to parse is
        recorded against its shard (the worker checks bounds against the plan separately)."""
        named = identify(payload)
        if named is None:
            return None
        start, end = payload.get("start"), payload.get("end")
        lo = hi = 0
        if _is_int(start) and _is_int(end):
            lo, hi = start, max(start, end)
        request = payload.get("request")
        sim = request.get("simulation") if isinstance(request, dict) else None
        return cls(*named, lo, hi, sim if isinstance(sim, str) else None)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Timing:
    started_at: datetime
    finished_at: datetime

    @classmethod
    def since(cls, started_at: datetime) -> Timing:
        return cls(started_at, datetime.now(UTC))

    @classmethod
    def now(cls) -> Timing:
        """An attempt that never ran (a shard a dispatch leaf did not hand out): 0 ms, now."""
        at = datetime.now(UTC)
        return cls(at, at)

    @property
    def duration_ms(self) -> int:
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


class OutcomeWriter:
    def __init__(self, store: ObjectStore, attempt_requests: bool = False) -> None:
        """``attempt_requests``: the store counts the requests of the attempt the rows describe
        (the worker's own), so each row says how many it made; other writers (a dispatch leaf,
        the failure recorder, the reconciler) write rows of attempts they did not make, and
        a counting store of theirs counts their own invocation's requests."""
        self.store = store
        self.attempt_requests = attempt_requests

    def _s3_requests(self) -> int | None:
        """The requests this attempt made so far, this outcome's own write included; None on
        rows of attempts the writer did not make."""
        if self.attempt_requests and isinstance(self.store, CountingStore):
            return self.store.requests + 1
        return None

    def success_attempt(self, ref: ShardRef) -> int | None:
        """The attempt number fixed by the success lock, if a success was ever claimed."""
        try:
            data = self.store.get(layout.success_lock(ref.run_id, ref.shard_id))
        except KeyError:
            return None
        return success_claims.decode(data).attempt

    def has_success(self, ref: ShardRef) -> bool:
        attempt = self.success_attempt(ref)
        return attempt is not None and self.store.exists(
            layout.outcome(ref.run_id, "succeeded", ref.dt, ref.shard_id, attempt)
        )

    def decided(self, ref: ShardRef) -> bool:
        """Whether the shard's latest failure is final and no redrive has reopened it since:
        the shard is ``failed`` as status reads it (``storage.shard_states``: no retry marker)
        and as the view ``shard_status`` reads it (the row says ``retryable = false``),
        whoever recorded that failure (the worker, the dispatcher's DISPATCH_FAILED, the
        failure recorder's RETRIES_EXHAUSTED, the reconciler's LOST or CANCELLED). A delivery
        or an OnFailure record that finds it so writes nothing, so a state status has shown
        (and a complete run's summary holds) changes only through an explicit redrive
        (contract), however late Lambda delivers.

        One listing, empty for almost every shard (it replaces the listing of the reconciler's
        closing claims asked before); only a shard with a failed attempt asks more: its retry
        marker, the row (a retryable failure whose marker could not be written, S3 refusing
        the PUT after the outcome's create, is not final: Lambda's retry still runs, as
        before), then the run's redrive lists."""
        return self._final(ref, self._last_failed(ref))

    def _final(self, ref: ShardRef, latest: int) -> bool:
        """``decided``, given the shard's latest failed attempt (0: none)."""
        if latest == 0:
            return False
        if self.store.exists(layout.retry_marker(ref.run_id, ref.shard_id, latest)):
            return False  # a retry follows: the worker's own next attempt
        key = layout.outcome(ref.run_id, "failed", ref.dt, ref.shard_id, latest)
        row = pq.read_table(pa.BufferReader(self.store.get(key)), columns=["retryable"])
        if row.column("retryable")[0].as_py():
            return False
        return not any(
            redrive.after_attempts.get(ref.shard_id, 0) >= latest
            for redrive in redrive_lists.every(self.store, ref.run_id)
        )

    def next_attempt(self, ref: ShardRef) -> int:
        return max(self._last_failed(ref), self._claimed_attempt(ref)) + 1

    def _last_failed(self, ref: ShardRef) -> int:
        prefix = layout.shard_outcomes_prefix(ref.run_id, "failed", ref.dt, ref.shard_id)
        attempts = [
            parsed.attempt
            for obj in self.store.list(prefix)
            if (parsed := layout.parse_outcome(obj.key)) and parsed.shard_id == ref.shard_id
        ]
        return max(attempts, default=0)

    def _claimed_attempt(self, ref: ShardRef) -> int:
        """A claimed success owns its attempt number even before its outcome lands; if the
        claim cannot be read (storage failing), failures still get recorded."""
        try:
            return self.success_attempt(ref) or 0
        except StorageError:
            return 0

    def record_success(
        self,
        ref: ShardRef,
        results: bytes | Path,
        rows: int,
        timing: Timing,
        request_id: str,
        points_reused: int = 0,
        writing_until_ms: int | None = None,
    ) -> int | None:
        """Store the results (Parquet bytes, or a Parquet file streamed from disk) and the one
        success outcome; returns its attempt number, or None, writing nothing, when the
        shard's failure became final while it ran (``decided``: e.g. the dispatcher recorded
        DISPATCH_FAILED for an Invoke that in fact reached Lambda): status may already have
        shown it failed, and the run complete. Asked of the listing the attempt number needs
        anyway, so a success pays no request for it."""
        last = self._last_failed(ref)
        if self._final(ref, last):
            return None
        # The claim decides: a success claimed before owns its number (read back when the
        # create finds it), so the lock need not be read first. The lock also says until when
        # this invocation may still be writing (``writing_until_ms``, its deadline): results
        # can take seconds to upload, and a final failure another writer records meanwhile
        # (a duplicate delivery finding the run cancelled, DISPATCH_FAILED, the recorder) must
        # not let status freeze the shard as failed before this success lands
        # (``storage.summary.successes_on_their_way``). A later writer under the same claim (a
        # retry, a second delivery) puts it again with its own deadline.
        attempt = last + 1
        lock = layout.success_lock(ref.run_id, ref.shard_id)
        if not self.store.create(lock, Claim(attempt, writing_until_ms).encode()):
            attempt = self.success_attempt(ref) or attempt
            if writing_until_ms is not None:
                self.store.put(lock, Claim(attempt, writing_until_ms).encode())
        try:
            results_key = layout.results(ref.run_id, ref.shard_id)
            if isinstance(results, Path):
                self.store.create_file(results_key, results)
                size = results.stat().st_size
            else:
                self.store.create(results_key, results)
                size = len(results)
            row = _row(ref, attempt, timing, request_id) | {
                "results_key": results_key,
                "results_rows": rows,
                "results_bytes": size,
                "points_reused": points_reused,
            }
            key = layout.outcome(ref.run_id, "succeeded", ref.dt, ref.shard_id, attempt)
            self.store.create(key, outcome_parquet(row | {"s3_requests": self._s3_requests()}))
        except Exception:
            if writing_until_ms is not None:  # no longer at work: a failure may stand
                self._release(lock, attempt)
            raise
        return attempt

    def _release(self, lock: str, attempt: int) -> None:
        """The claim kept (its attempt number stands), its writer no longer at work. Best
        effort: if this write fails too, the claim holds the shard pending until its time."""
        try:
            self.store.put(lock, Claim(attempt, 0).encode())
        except Exception:
            logger.warning("success claim not released", extra={"lock": lock}, exc_info=True)

    def record_failure(
        self,
        ref: ShardRef,
        error: FailureCode,
        message: str,
        timing: Timing,
        request_id: str,
    ) -> int:
        """Store a failed attempt under a fresh attempt number; returns it.

        A retryable failure's retry marker is put before its outcome: status reads a failed
        attempt with no marker as final, so a marker put after the outcome left a window (and,
        if S3 refused that PUT, for good) in which status called the shard failed and could
        store a complete run's summary, then Lambda's retry succeeded. A marker whose PUT
        fails now fails the call before anything is recorded (Lambda retries). A writer that
        loses an attempt number's claim leaves its marker on the winner's attempt, which is
        then not the latest: the loser's own attempt follows at once. Only if it died between
        the two would the winner's attempt read as retrying: the shard stays pending until the
        reconciler re-dispatches it, never wrongly final."""
        attempt = self.next_attempt(ref)
        row = _row(ref, attempt, timing, request_id) | {
            "error_code": error.code,
            "error_message": bounded(message),
            "retryable": error.retryable,
        }
        while True:
            if error.retryable:
                self.store.put(layout.retry_marker(ref.run_id, ref.shard_id, attempt), b"")
            if self.store.create(
                layout.outcome(ref.run_id, "failed", ref.dt, ref.shard_id, attempt),
                outcome_parquet(row | {"attempt": attempt, "s3_requests": self._s3_requests()}),
            ):
                return attempt
            attempt += 1


def _row(ref: ShardRef, attempt: int, timing: Timing, request_id: str) -> dict[str, object]:
    return {
        "shard_id": ref.shard_id,
        "attempt": attempt,
        "start_index": ref.start,
        "end_index": ref.end,
        "point_count": ref.end - ref.start,
        "simulation": ref.simulation,
        "started_at": timing.started_at,
        "finished_at": timing.finished_at,
        "duration_ms": timing.duration_ms,
        "request_id": request_id or None,
        "s3_requests": None,
    }
