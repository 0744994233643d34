"""A run's progress from key listings alone: each shard's state, dispatch counts, cancel state.

It lives in the storage layer because every layer above needs the same answer: status and
redrive (API), the reconciler (fan-out) and the failure-threshold check (execution). Nothing
here reads Parquet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.logs import logger
from chalicelib.model.manifest import Manifest
from chalicelib.storage import key_ranges, layout, manifests, summary
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.summary import RunProgress

USER = "USER"
FAILURE_THRESHOLD = "FAILURE_THRESHOLD"


@dataclass
class ShardStates:
    """Each shard's state per the contract, derived from key listings only."""

    count: int
    succeeded: set[int] = field(default_factory=set)
    latest_failure: dict[int, int] = field(default_factory=dict)
    retrying: set[tuple[int, int]] = field(default_factory=set)
    redriven_after: dict[int, int] = field(default_factory=dict)
    auto_redrives: int = 0
    redrive_jobs: list[str] = field(default_factory=list)
    objects: int = 0  # outcome, marker and dispatch keys seen: grows whenever anything happens

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
        return self.by_state()[state]

    def by_state(self) -> dict[str, list[int]]:
        """Every shard id under its state, in one pass."""
        found: dict[str, list[int]] = {"succeeded": [], "failed": [], "pending": []}
        for k in range(self.count):
            found[self.state(k)].append(k)
        return found


def shard_states(store: ObjectStore, run: Manifest) -> tuple[ShardStates, dict[str, Any]]:
    """Each shard's state and the dispatch counts per job, from four listings.

    The run folder is listed by its narrow sub-folders, not whole: it also holds a success lock
    per shard, which status does not need. The two that grow with the shard count (outcomes,
    retry markers) are listed in key ranges at once (``key_ranges``)."""
    return shard_states_of(store, run.run_id, run.request.shard_count)


def shard_states_of(
    store: ObjectStore, run_id: str, shard_count: int
) -> tuple[ShardStates, dict[str, Any]]:
    """``shard_states`` for a run known by id and shard count (the run index carries both), so
    a listing page needs no manifest."""
    states = ShardStates(shard_count)
    outcomes = layout.outcomes_prefix(run_id)
    dt = layout.run_dt(run_id)
    cuts = [
        cut
        for status in ("failed", "succeeded")
        for cut in key_ranges.shard_boundaries(
            f"{outcomes}status={status}/" + (f"dt={dt}/" if dt else ""), shard_count
        )
    ]
    cuts.append(f"{outcomes}status=succeeded/")  # between the two statuses
    for found in key_ranges.list_keys(store, outcomes, cuts):
        key = layout.parse_outcome(found)
        if key is None or key.shard_id >= states.count:
            continue
        states.objects += 1
        if key.status == "succeeded":
            states.succeeded.add(key.shard_id)
        elif key.attempt > states.latest_failure.get(key.shard_id, 0):
            states.latest_failure[key.shard_id] = key.attempt
    markers = layout.retry_markers_prefix(run_id)
    for found in key_ranges.list_keys(
        store, markers, key_ranges.shard_boundaries(markers, shard_count)
    ):
        if (marker := layout.parse_retry_marker(found)) is not None:
            states.objects += 1
            states.retrying.add(marker)
    for obj in store.list(layout.redrive_lists_prefix(run_id)):
        states.objects += 1
        states.redrive_jobs.append(layout.parse_redrive_list(obj.key))
        if obj.key.rsplit("/", 1)[-1].startswith(layout.auto_redrive_job(0)[:-1]):
            states.auto_redrives += 1
        redrive = json.loads(store.get(obj.key))
        for shard, attempt in redrive["after_attempts"].items():
            states.redriven_after[int(shard)] = max(
                attempt, states.redriven_after.get(int(shard), 0)
            )
    counts, records = _dispatch_counts(store, run_id)
    states.objects += records
    return states, counts


def run_progress(store: ObjectStore, run_id: str, shard_count: int) -> RunProgress:
    """The one read of a run's progress that status, ``GET /sweeps`` and the reconciler share:
    the stored summary of a complete run (a GET and a short listing), else the listings, and
    a run they find complete gets its summary written."""
    stored = summary.read(store, run_id)
    if stored is not None:
        return stored
    states, dispatch = shard_states_of(store, run_id, shard_count)
    found = progress_of(states, dispatch)
    if found.complete:
        summary.write(store, run_id, found)
    return found


def progress_of(states: ShardStates, dispatch: dict[str, dict[str, int]]) -> RunProgress:
    by_state = states.by_state()
    return RunProgress(
        states.count,
        by_state["failed"],
        by_state["pending"],
        dispatch,
        states.auto_redrives,
        tuple(sorted(states.redrive_jobs)),
    )


def _dispatch_counts(store: ObjectStore, run_id: str) -> tuple[dict[str, dict[str, int]], int]:
    leaves: dict[tuple[str, int, int], layout.DispatchRecord] = {}
    seen = 0
    for obj in store.list(layout.dispatch_records_prefix(run_id)):
        if (record := layout.parse_dispatch_record(obj.key)) is not None:
            seen += 1
            # A leaf delivered twice records twice; its best count stands.
            leaf = (record.job, record.lo, record.hi)
            if leaf not in leaves or record.dispatched > leaves[leaf].dispatched:
                leaves[leaf] = record
    counts: dict[str, dict[str, int]] = {}
    for record in leaves.values():
        job = counts.setdefault(record.job, {"dispatched": 0, "failed": 0})
        job["dispatched"] += record.dispatched
        job["failed"] += record.failed
    return counts, seen


def cancel_reason(store: ObjectStore, run_id: str) -> str | None:
    """Why the run was cancelled, or None if it was not: one GET of the cancel marker."""
    try:
        data = json.loads(store.get(layout.cancel_marker(run_id)))
    except KeyError:
        return None
    return str(data.get("reason", USER))


def is_cancelled(store: ObjectStore, run_id: str) -> bool:
    """One HEAD: what workers and dispatch leaves ask before doing work."""
    return store.exists(layout.cancel_marker(run_id))


def mark_cancelled(store: ObjectStore, run_id: str, reason: str) -> bool:
    """Record the cancel once; False if the run was already cancelled (the first reason
    stands)."""
    record = {"reason": reason, "at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    return store.create(layout.cancel_marker(run_id), json.dumps(record).encode())


def over_threshold(states: ShardStates, tolerated_percentage: float) -> bool:
    """True once final failures exceed the run's tolerated share of its shards."""
    if tolerated_percentage >= 100:
        return False
    return len(states.ids("failed")) * 100 > tolerated_percentage * states.count


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
    if not over_threshold(states, tolerated):
        return False
    if mark_cancelled(store, run_id, FAILURE_THRESHOLD):
        logger.warning(
            "run cancelled: failures exceed the tolerated percentage",
            extra={"run_id": run_id, "failed": len(states.ids("failed")), "tolerated": tolerated},
        )
        return True
    return False
