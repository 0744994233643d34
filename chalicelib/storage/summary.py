"""A complete run's progress, written once, so its status costs the same at 100 or 100,000 shards.

Once a run is complete its shard states change only through an explicit redrive (contract), so
whoever first finds it complete from the listings (status, ``GET /sweeps``, the reconciler)
stores what it found here, and every later read is one GET. A summary is valid only for the
redrive lists it was made after: a reader lists the run's redrive lists (a handful of keys,
whatever the shard count) and ignores a summary that misses one, so a redrive accepted while a
summary was being written can never be hidden by it; the next reader that finds the redriven
run complete again rewrites it (nothing is deleted: no function needs a new grant).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.logs import logger
from chalicelib.storage import key_ranges, layout, redrive_lists, success_claims
from chalicelib.storage.failure_threshold import enforce_at_completion
from chalicelib.storage.shard_states import (
    ShardStates,
    dispatch_counts,
    job_sizes,
    shard_states_of,
)
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.together import read_ahead, together

FORMAT = 1


@dataclass(frozen=True)
class RunProgress:
    """What status, the run listing and the reconciler need of a run's shards."""

    shard_count: int
    failed: list[int]
    pending: list[int]
    dispatch: dict[str, dict[str, int]] = field(default_factory=dict)
    auto_redrives: int = 0
    redrive_jobs: tuple[str, ...] = ()
    # The run's cost once complete (runs.cost), kept with the summary so a complete run's status
    # lists no usage records; None until status has stored it.
    cost: dict[str, Any] | None = None
    # A reusing run's points copied by its succeeded shards, kept with the summary like the
    # cost, so a complete run's status does not read its plan's counts (one entry a shard);
    # None until status has stored it.
    points_reused: int | None = None
    # Every dispatch leaf had recorded when this was read (``shard_states.dispatch_counts``):
    # a summary whose counts were not final reads them again until they are.
    dispatch_final: bool = True
    # True when this very read found the run complete and wrote its summary (and asked for its
    # compaction); not stored.
    written: bool = field(default=False, compare=False)
    # True when this very read cancelled the run for its failures, before writing its summary
    # (``failure_threshold.enforce_at_completion``); not stored.
    cancelled_now: bool = field(default=False, compare=False)

    @property
    def complete(self) -> bool:
        return not self.pending

    @property
    def succeeded(self) -> int:
        return self.shard_count - len(self.failed) - len(self.pending)


def run_progress(
    store: ObjectStore,
    run_id: str,
    shard_count: int,
    on_complete: Callable[[str], object],
    tolerated: float | None = None,
) -> RunProgress:
    """The one read of a run's progress that status, ``GET /sweeps``, cancel and the
    reconciler share: the stored summary of a complete run (a GET and a short listing, at
    once), else the listings (``listed``)."""
    return read(store, run_id) or listed(store, run_id, shard_count, on_complete, tolerated)


def listed(
    store: ObjectStore,
    run_id: str,
    shard_count: int,
    on_complete: Callable[[str], object],
    tolerated: float | None = None,
) -> RunProgress:
    """A run's progress from its listings. A run found complete gets its failure threshold
    applied (``enforce_at_completion``) and then its summary written, and the writer hands it
    to ``on_complete`` (the compactor: ``fanout.invoking.compactor_trigger``)
    right there, whoever it is, so no summary is written without asking for compaction.
    ``tolerated``: the run's ``tolerated_failure_percentage`` where the caller holds its
    manifest (else read from it, only for a run found complete with failures)."""
    states, dispatch = shard_states_of(store, run_id, shard_count)
    found = progress_of(states, dispatch)
    if found.complete and found.failed:
        coming = successes_on_their_way(store, run_id, shard_count, found.failed)
        if coming:  # not complete yet: those shards are still being written
            failed = [k for k in found.failed if k not in coming]
            found = replace(found, failed=failed, pending=sorted(coming))
    if found.complete:
        cancelled = bool(found.failed) and enforce_at_completion(
            store, run_id, len(found.failed), shard_count, tolerated
        )
        write(store, run_id, found)
        on_complete(run_id)
        return replace(found, written=True, cancelled_now=cancelled)
    return found


def successes_on_their_way(
    store: ObjectStore, run_id: str, shard_count: int, shards: Sequence[int]
) -> set[int]:
    """Those of ``shards`` (each with a final failure, no success) whose success is still being
    written: a worker claimed its success lock (``OutcomeWriter.record_success``) and may be
    at work until the time the lock holds. A final failure recorded meanwhile (a duplicate
    delivery that found the run cancelled, a dispatcher's DISPATCH_FAILED for an Invoke that
    in fact reached Lambda, a destination record) would otherwise let the run be found
    complete and its summary stored with the shard failed, and the success land after it.
    Asked only of a run that looks complete with failed shards, so once: one listing of the
    locks (in key ranges) and a GET of each such shard's lock. A lock past its time (its
    writer died: the failure stands) or without one (written before locks held it) is not
    on its way."""
    folder = layout.success_locks_prefix(run_id)
    boundaries = key_ranges.shard_boundaries(folder, shard_count)
    claimed = {
        layout.parse_success_lock(key) for key in key_ranges.list_keys(store, folder, boundaries)
    }
    asked = [k for k in shards if k in claimed]

    def writing(key: str) -> bool:
        try:
            return success_claims.decode(store.get(key)).writing_at(now_ms)
        except (KeyError, ValueError):
            return False

    now_ms = time.time_ns() // 1_000_000
    locks = [layout.success_lock(run_id, k) for k in asked]
    return {k for k, w in zip(asked, read_ahead(store, locks, writing), strict=True) if w}


def progress_of(states: ShardStates, dispatch: dict[str, dict[str, int]]) -> RunProgress:
    by_state = states.by_state()
    return RunProgress(
        states.count,
        by_state["failed"],
        by_state["pending"],
        dispatch,
        states.auto_redrives,
        tuple(sorted(states.redrive_jobs)),
        dispatch_final=states.dispatch_final,
    )


def redrive_jobs(store: ObjectStore, run_id: str) -> tuple[str, ...]:
    """The run's redrive jobs, from one listing of its redrive lists (no list is read)."""
    found = (
        layout.parse_redrive_list(obj.key)
        for obj in store.list(layout.redrive_lists_prefix(run_id))
    )
    return tuple(sorted(job for job in found if job is not None))


def read(store: ObjectStore, run_id: str) -> RunProgress | None:
    """The stored summary, if there is one made after every redrive of the run (its GET and
    the redrive lists' listing at once)."""
    with together(store) as issue:
        listing = issue(lambda: redrive_jobs(store, run_id))
        try:
            data = json.loads(store.get(layout.summary(run_id)))
        except KeyError:
            return None
        if data.get("format") != FORMAT:
            return None
        jobs = tuple(data["redrive_jobs"])
        if jobs != listing():
            return None  # a redrive came after it: the run is being re-run
    progress = RunProgress(
        int(data["shard_count"]),
        [int(k) for k in data["failed"]],
        [],
        data["dispatch"],
        int(data["auto_redrives"]),
        jobs,
        data.get("cost"),
        data.get("points_reused"),
        data.get("dispatch_final", True),
    )
    return progress if progress.dispatch_final else _final_dispatch(store, run_id, progress)


def current(store: ObjectStore, run_id: str) -> bool:
    """Whether the run's complete summary is current (no redrive since): every shard of every
    dispatch job the run has is decided. Then an event Lambda delivers again, hours late
    maybe, has nothing to do: a worker's is refused and a dispatcher's hands nothing out, and
    neither leaves a usage record. The run's cost was fixed with its summary (status keeps it
    there rather than listing every usage record again) and its usage rows with its compaction
    (Athena reads the generation), so a record written now would be counted by the local
    engine alone; left out, status, the local ``usage`` table and Athena agree. What is left
    out is bounded: such an invocation makes a handful of requests and runs a few
    milliseconds (docs/analytics.md "Cost"). A GET and a listing at once; if it cannot be
    answered, False, and the event is handled as before."""
    try:
        return read(store, run_id) is not None
    except Exception:
        logger.warning("summary unreadable; the event is handled", exc_info=True)
        return False


def _final_dispatch(store: ObjectStore, run_id: str, progress: RunProgress) -> RunProgress:
    """A summary written before a leaf's record landed: the dispatch counts read again (one
    listing of the leaves' records, and the redrive lists for their jobs' sizes), stored once
    they are final."""
    sizes = job_sizes(progress.shard_count, redrive_lists.every(store, run_id))
    found = dispatch_counts(store, run_id, sizes)
    progress = replace(progress, dispatch=found.counts, dispatch_final=found.final)
    if found.final:
        write(store, run_id, progress)
    return progress


def write(store: ObjectStore, run_id: str, progress: RunProgress) -> None:
    """Store a complete run's progress. Writers that race write the same facts (each from a
    listing of the complete run), so the last one standing is as good as the first."""
    if not progress.complete:
        raise ValueError(f"run {run_id} is not complete; its progress is not final")
    record = {
        "format": FORMAT,
        "shard_count": progress.shard_count,
        "failed": progress.failed,
        "dispatch": progress.dispatch,
        "auto_redrives": progress.auto_redrives,
        "redrive_jobs": list(progress.redrive_jobs),
        "dispatch_final": progress.dispatch_final,
    }
    if progress.cost is not None:
        record["cost"] = progress.cost
    if progress.points_reused is not None:
        record["points_reused"] = progress.points_reused
    store.put(layout.summary(run_id), json.dumps(record, separators=(",", ":")).encode())
