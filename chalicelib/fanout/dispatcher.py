"""Fan-out: the dispatcher function turns a run (or a redrive) into one worker event per shard.

Dispatch is CPU-bound (docs/benchmarks.md measures the CPU per Invoke), so one process cannot
fan out 10,000+ shards quickly. A job covering more than ``leaf_shards`` shards is split into
``width`` contiguous children, each handed to another dispatcher invocation, giving a shallow
tree (100,000 shards at width 10 and 1,000 per leaf: 3 levels, far below Lambda's recursion
limit of ~16 hops; a paced job's continuations chain further, and the deployed dispatcher
allows it: ``deploy.merge.RECURSIVE_LOOP``). Leaves invoke workers from a bounded thread pool
and record one small progress object each, so status can count dispatched shards from a
listing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalicelib.analytics.catalog import Catalog
from chalicelib.config import Settings
from chalicelib.execution import reuse, usage
from chalicelib.execution.failure_codes import FailureCode
from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing
from chalicelib.fanout import pacing
from chalicelib.fanout.invoking import Backoff, Invoker, send
from chalicelib.logs import logger
from chalicelib.model.events import INITIAL, DispatchJob, run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.sharding import split
from chalicelib.storage import layout, manifests, redrive_lists
from chalicelib.storage import summary as run_summary
from chalicelib.storage.cancel_marker import is_cancelled
from chalicelib.storage.failure_threshold import enforce_threshold
from chalicelib.storage.stores import CountingStore, ObjectStore

# What ``run_event`` is told of its invocation: the milliseconds it has left (Lambda's context).
Remaining = Callable[[], int]

CANCEL_CHUNK = 100


@dataclass(frozen=True)
class Policy:
    leaf_shards: int = 1000
    width: int = 10
    threads: int = 32
    backoff: Backoff = field(default_factory=Backoff)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        backoff = Backoff.from_settings(settings, wait_not_ready=True)
        return cls(
            settings.dispatch_leaf_shards,
            settings.dispatch_width,
            settings.dispatch_threads,
            backoff,
        )


def register_partitions(store: ObjectStore, catalog: Catalog, manifest: Manifest) -> bool:
    """Register the run's partitions and mark it ``queryable``; False (logged) if Glue failed.
    The run goes out either way: the reconciler registers it again until it succeeds."""
    try:
        catalog.register_run(manifest.run_id, manifest.dt)
    except Exception:
        logger.exception(
            "registering the run's partitions failed", extra={"run_id": manifest.run_id}
        )
        return False
    store.put(layout.registered_marker(manifest.run_id), b"")
    return True


class Dispatcher:
    def __init__(
        self,
        store: ObjectStore,
        invoker: Invoker,
        policy: Policy,
        catalog: Catalog,
        settings: Settings | None = None,
        remaining: Remaining | None = None,
    ) -> None:
        self.store = store
        self.invoker = invoker
        self.policy = policy
        self.catalog = catalog
        self.settings = settings or Settings()
        self.remaining = remaining

    def run(self, job: DispatchJob) -> dict[str, Any]:
        manifest = manifests.load(self.store, job.run_id)
        ids = self._job_ids(manifest, job)
        if job.hi > len(ids):
            # Never sent by a dispatcher (each slices its own job): a forged or corrupted
            # event. Split as it stands, it fanned out into a tree as deep as ``hi`` says
            # (hi = 10**6 on a 2-shard run: 1,111 dispatcher invocations), each leaf
            # writing records for shards that do not exist.
            answer = {"run_id": job.run_id, "job": job.job, "lo": job.lo, "hi": job.hi}
            logger.error(
                "dispatch job beyond its shards; nothing handed out",
                extra=answer | {"shards": len(ids)},
            )
            return answer | {"rejected": True}
        if job.step is not None:  # a paced job's continuation
            return self._pace(manifest, job, ids)
        if job.lo == 0 and job.hi == len(ids) and not job.sliced:
            self._register(manifest)
            if manifest.request.reuse:
                self._plan_reuse(manifest)
            self._mark_pending(manifest, job)
            size = pacing.window(self.settings, self.invoker)
            if size is not None and len(ids) > size:  # only a job larger than its window
                return self._pace(manifest, job, ids, size)
        if job.hi - job.lo > self.policy.leaf_shards:
            return self._split(job)
        return self._leaf(manifest, job, ids[job.lo : job.hi])

    def _job_ids(self, manifest: Manifest, job: DispatchJob) -> Sequence[int]:
        if job.job == INITIAL:
            return range(manifest.request.shard_count)
        return redrive_lists.shards(self.store, job.run_id, job.job)

    def _register(self, manifest: Manifest) -> None:
        """Partitions exist before the first file lands, so Athena sees outcomes at once."""
        register_partitions(self.store, self.catalog, manifest)

    def _plan_reuse(self, manifest: Manifest) -> None:
        """Before any worker of a reusing run is invoked: which points each shard copies
        (``execution.reuse``). If planning fails the run still goes out, evaluating all."""
        try:
            reuse.plan(self.store, manifest)
        except Exception:
            logger.exception("reuse planning failed", extra={"run_id": manifest.run_id})

    def _mark_pending(self, manifest: Manifest, job: DispatchJob) -> None:
        """Before the job's workers are invoked: later runs' plans read what they evaluate
        from the run's results until its compaction merges them (``reuse.mark_pending``).
        A job whose mark failed is retried by Lambda, as any storage error here is."""
        reuse.mark_pending(self.store, manifest, job.job)

    def _pace(
        self, manifest: Manifest, job: DispatchJob, ids: Sequence[int], size: int | None = None
    ) -> dict[str, Any]:
        """Hand the job out no faster than the worker runs it (``fanout.pacing``), within this
        invocation's time: at most ``pacing_max_wait_s``, and a margin before its end."""
        if size is None:
            size = pacing.window(self.settings, self.invoker) or len(ids)
        budget = float(self.settings.pacing_max_wait_s)
        if self.remaining is not None:
            left = (self.remaining() - self.settings.deadline_margin_ms) / 1000
            budget = max(0.0, min(budget, left))
        pacer = pacing.Pacer(
            self.store, self.invoker, self.settings, self.policy.backoff, self._hand_out, budget
        )
        return pacer.run(manifest, job, ids, size)

    def _hand_out(self, child: DispatchJob) -> None:
        """A slice of a job to another dispatcher invocation, or inline if it cannot be sent."""
        if not self._send_child(child):
            self.run(child)

    def _send_child(self, child: DispatchJob) -> bool:
        """Hand ``child`` to another dispatcher invocation; False (logged) if it could not be
        sent, and the caller then dispatches it inline."""
        error = send(self.invoker, "dispatcher", child.to_payload(), self.policy.backoff)
        if error is not None:
            logger.warning(
                "child dispatcher not invoked; dispatching inline",
                extra={"run_id": child.run_id, "lo": child.lo, "hi": child.hi, "error": error},
            )
        return error is None

    def _split(self, job: DispatchJob) -> dict[str, Any]:
        children = [
            DispatchJob(job.run_id, job.job, lo, hi, sliced=True)
            for lo, hi in split(job.lo, job.hi, self.policy.width)
        ]
        # All sends first, so the sent children run while this one dispatches the rest inline.
        inline = [child for child in children if not self._send_child(child)]
        for child in inline:
            self.run(child)
        return {
            "run_id": job.run_id,
            "job": job.job,
            "children": len(children),
            "inline": len(inline),
        }

    def _leaf(self, manifest: Manifest, job: DispatchJob, ids: Sequence[int]) -> dict[str, Any]:
        payloads = [run_task_payload(manifest, shard_id, job.job) for shard_id in ids]

        backoff = self.policy.backoff.shared(time.monotonic())  # one not-ready wait a leaf

        def hand_over(payload: dict[str, Any]) -> str | None:
            return send(self.invoker, "worker", payload, backoff)

        # Many threads while each hand-over waits for a round trip; else this one.
        wide = self.policy.threads if self.invoker.waits_on_network() else 1
        threads = max(1, min(wide, len(payloads)))
        errors: list[str | None] = []
        # The cancel marker is read before each chunk (one HEAD per CANCEL_CHUNK shards), so
        # a cancel stops a leaf within one chunk of hand-overs.
        with ThreadPoolExecutor(max_workers=threads) as pool:
            send_all = pool.map if threads > 1 else map
            while len(errors) < len(payloads) and not is_cancelled(self.store, job.run_id):
                errors += send_all(hand_over, payloads[len(errors) : len(errors) + CANCEL_CHUNK])
        writer = OutcomeWriter(self.store)
        skipped = payloads[len(errors) :]
        self._record_cancelled(writer, skipped)
        failed = [(p, e) for p, e in zip(payloads, errors, strict=False) if e is not None]
        for payload, error in failed:
            ref = ShardRef.from_payload(payload)
            assert ref is not None  # built from the manifest just above
            if _decided(writer, ref):
                continue
            writer.record_failure(
                ref,
                FailureCode.DISPATCH_FAILED,
                f"Invoke failed: {error}",
                Timing.now(),  # an attempt that never ran
                "",
            )
        if failed:
            enforce_threshold(self.store, job.run_id)
        ok = len(errors) - len(failed)
        self.store.put(
            layout.dispatch_record(job.run_id, job.job, job.lo, job.hi, ok, len(failed)), b""
        )
        summary = {
            "run_id": job.run_id,
            "job": job.job,
            "lo": job.lo,
            "hi": job.hi,
            "dispatched": ok,
            "failed": len(failed),
            "cancelled": len(skipped),
        }
        logger.info("leaf dispatched", extra=summary)
        return summary

    def _record_cancelled(self, writer: OutcomeWriter, skipped: Sequence[dict[str, Any]]) -> None:
        """A final CANCELLED outcome for each shard this leaf did not hand out, so the run
        completes; a shard whose state is decided (a redelivered leaf) is left alone."""
        for payload in skipped:
            ref = ShardRef.from_payload(payload)
            assert ref is not None  # built from the manifest
            if _decided(writer, ref):
                continue
            writer.record_failure(
                ref,
                FailureCode.CANCELLED,
                "the run was cancelled before this shard was dispatched",
                Timing.now(),  # an attempt that never ran
                "",
            )


def run_event(
    event: dict[str, Any],
    store: ObjectStore,
    invoker: Invoker,
    settings: Settings,
    catalog: Catalog,
    remaining: Remaining | None = None,
) -> dict[str, Any]:
    """One job of the tree: the dispatcher function's body on Lambda and on the local stage.
    ``remaining``: the invocation's time left (None locally, where there is no limit)."""
    job = DispatchJob.from_payload(event)
    counting = CountingStore(store)  # the check's requests count in the invocation's record
    started_ns = time.monotonic_ns()
    if run_summary.current(counting, job.run_id):
        # Delivered again after the run completed: every shard of the job is decided. Nothing
        # is registered, planned, marked pending (a mark now would outlive its merge) or handed
        # out (a root of 100,000 shards would invoke them all, each to be refused), and no
        # usage record is left, as for a refused worker delivery (``run_summary.current``).
        answer = {"run_id": job.run_id, "job": job.job, "lo": job.lo, "hi": job.hi}
        logger.info("dispatch of a complete run: nothing to hand out", extra=answer)
        return answer | {"complete": True}
    try:
        policy = Policy.from_settings(settings)
        dispatcher = Dispatcher(counting, invoker, policy, catalog, settings, remaining)
        return dispatcher.run(job)
    finally:
        what = f"{job.job}-{job.lo}-{job.hi}"
        usage.record(counting, job.run_id, "dispatcher", what, started_ns)


def _decided(writer: OutcomeWriter, ref: ShardRef) -> bool:
    """Whether the shard succeeded or its failure is final (``OutcomeWriter.decided``): a leaf
    delivered again, late, then records no second DISPATCH_FAILED or CANCELLED for it, so
    the outcomes a compacted run's engines read stay the same. Asked only of a shard the leaf
    could not hand out."""
    return writer.has_success(ref) or writer.decided(ref)
