"""The read model of a run's progress, from key listings alone: each shard's state and the
dispatch counts.

It lives in the storage layer because every layer above needs the same answer: status and
redrive (API), the reconciler (fan-out) and the failure-threshold check (execution). Nothing
here reads Parquet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.model import ids
from chalicelib.model.events import INITIAL
from chalicelib.model.manifest import Manifest
from chalicelib.storage import key_ranges, layout, redrive_lists
from chalicelib.storage.stores import ObjectStore


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
    # Every dispatch job's leaves have recorded (``dispatch_counts``): the counts are final.
    dispatch_final: bool = True

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
        """Every shard id under its state, each list ascending. Only a shard with a failed
        attempt can be failed, so ``state`` is asked of those alone: the rest of the shards
        not succeeded are pending (a running 100,000-shard run's status asked it of every
        pending shard on every poll)."""
        done = self.succeeded
        succeeded = [k for k in range(self.count) if k in done]
        failed = sorted(
            k for k in self.latest_failure if k not in done and self.state(k) == "failed"
        )
        pending = [k for k in range(self.count) if k not in done]
        if failed:
            out = set(failed)
            pending = [k for k in pending if k not in out]
        return {"succeeded": succeeded, "failed": failed, "pending": pending}


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
    dt = ids.run_dt(run_id)
    cuts = [
        cut
        for status in ("failed", "succeeded")
        for cut in key_ranges.shard_boundaries(
            f"{outcomes}status={status}/" + (f"dt={dt}/" if dt else ""), shard_count
        )
    ]
    cuts.append(f"{outcomes}status=succeeded/")  # between the two statuses
    latest = states.latest_failure
    succeeded, failed = layout.outcome_ids(key_ranges.list_keys(store, outcomes, cuts))
    if max(succeeded, default=-1) >= shard_count:  # keys of no shard of the run: ignored
        succeeded = [k for k in succeeded if k < shard_count]
    states.succeeded = set(succeeded)
    states.objects += len(succeeded)
    for shard_id, attempt in failed:
        if shard_id >= shard_count:
            continue
        states.objects += 1
        if attempt > latest.get(shard_id, 0):
            latest[shard_id] = attempt
    markers = layout.retry_markers_prefix(run_id)
    for found in key_ranges.list_keys(
        store, markers, key_ranges.shard_boundaries(markers, shard_count)
    ):
        if (marker := layout.parse_retry_marker(found)) is not None:
            states.objects += 1
            states.retrying.add(marker)
    redrives = list(redrive_lists.every(store, run_id))
    for redrive in redrives:
        states.objects += 1
        states.redrive_jobs.append(redrive.job)
        states.auto_redrives += redrive.automatic
        for shard, attempt in redrive.after_attempts.items():
            states.redriven_after[shard] = max(attempt, states.redriven_after.get(shard, 0))
    dispatch = dispatch_counts(store, run_id, job_sizes(shard_count, redrives))
    states.objects += dispatch.records
    states.dispatch_final = dispatch.final
    return states, dispatch.counts


def job_sizes(shard_count: int, redrives: Iterable[redrive_lists.RedriveList]) -> dict[str, int]:
    """Each dispatch job's shard count: the run's for the initial job, its list's for a
    redrive (what a job's leaves' ranges must cover, ``dispatch_counts``)."""
    return {INITIAL: shard_count} | {r.job: len(r.shards) for r in redrives}


@dataclass(frozen=True)
class DispatchCounts:
    counts: dict[str, dict[str, int]]  # per job: shards handed over and refused
    records: int  # leaf records seen
    final: bool  # every job's leaves have recorded


def dispatch_counts(store: ObjectStore, run_id: str, sizes: Mapping[str, int]) -> DispatchCounts:
    """Shards handed over and refused, per dispatch job, from the leaves' progress records, and
    whether they are final: every job in ``sizes`` (job -> its shard count) has records whose
    ranges cover it. A leaf records after its last hand-over, and that shard's worker can land
    its outcome first, so a run can be complete while a leaf's record is still to come."""
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
    final = all(
        _covers(sorted((lo, hi) for j, lo, hi in leaves if j == job), size)
        for job, size in sizes.items()
    )
    return DispatchCounts(counts, seen, final)


def _covers(ranges: list[tuple[int, int]], size: int) -> bool:
    """Whether sorted ``[lo, hi)`` ranges cover ``[0, size)``."""
    reached = 0
    for lo, hi in ranges:
        if lo > reached:
            return False
        reached = max(reached, hi)
    return reached >= size
