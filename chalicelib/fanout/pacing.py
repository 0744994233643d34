"""Pacing: a run never has more worker events outstanding than the worker can run at once.

Lambda queues an async event it cannot run yet (its function is at its concurrency) and drops it
to OnFailure once it is ``MaximumEventAgeInSeconds`` old (``EVENT_AGE_EXCEEDED``). A run whose
shards far outnumber the worker's concurrency C would, dispatched all at once, leave most of
its events queued for hours. So a job with more than the window W = ``pacing_factor`` x C
shards is paced: its dispatcher hands out the job's shards in order, and only while

    outstanding = handed out and not yet final (pending)  <=  W = k x C            (the window)

An event therefore waits behind at most W - 1 of its run's others; with k = 1 (the default)
behind none, whatever order Lambda serves throttled events in. ``deploy/timeline.py`` states
the resulting bound on queue wait next to the reconciler's and checks it for every stage.

A dispatcher is a Lambda with a 15-minute cap, so a pacer never waits unboundedly: it polls its
run's progress (one listing, every ``pacing_poll_ms``) for at most ``pacing_max_wait_s`` and
never past its invocation's remaining time less a margin, then hands the rest of the job to a
continuation event (the same job, ``lo`` = its cursor, the next ``step``). Its state
(``layout.pacing_state``: step, cursor, time) is rewritten at every hand-out and poll; a
continuation that is lost, or a pacer that died, leaves it quiet, and the reconciler resumes
the job from its cursor (``resume_quiet``) after ``pacing_resume_s``. Each step is claimed by
conditional create and must match the state's step, so a duplicate or superseded delivery
stops at once instead of pacing the same job twice.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.config import Settings
from chalicelib.fanout.invoking import Backoff, Invoker, send
from chalicelib.logs import logger
from chalicelib.model.events import DispatchJob
from chalicelib.model.manifest import Manifest
from chalicelib.storage import layout
from chalicelib.storage.cancel_marker import is_cancelled
from chalicelib.storage.shard_states import shard_states
from chalicelib.storage.stores import ObjectStore

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def window(settings: Settings, invoker: Invoker) -> int | None:
    """W = k x C, or None when the transport has no queue that drops old events."""
    concurrency = invoker.worker_concurrency()
    return None if concurrency is None else settings.pacing_factor * concurrency


@dataclass(frozen=True)
class PacingState:
    step: int
    cursor: int
    hi: int
    at: datetime

    def to_bytes(self) -> bytes:
        state = {"step": self.step, "cursor": self.cursor, "hi": self.hi}
        return json.dumps(state | {"at": self.at.isoformat()}).encode()

    @classmethod
    def read(cls, store: ObjectStore, key: str) -> PacingState | None:
        try:
            d = json.loads(store.get(key))
            at = datetime.fromisoformat(d["at"])
            return cls(int(d["step"]), int(d["cursor"]), int(d["hi"]), at)
        except (KeyError, ValueError, TypeError):
            return None


def outstanding(store: ObjectStore, run: Manifest, ids: Sequence[int], cursor: int) -> int:
    """Shards of the job handed out so far (positions before ``cursor``) still pending."""
    states, _ = shard_states(store, run)
    return sum(1 for k in ids[:cursor] if states.state(k) == "pending")


@dataclass
class Pacer:
    """One invocation's share of a paced job. ``hand_out`` dispatches a slice of the job
    unpaced (a child dispatcher, or inline); ``budget_s`` is how long this invocation may poll."""

    store: ObjectStore
    invoker: Invoker
    settings: Settings
    backoff: Backoff
    hand_out: Callable[[DispatchJob], None]
    budget_s: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Clock = _utcnow

    def run(self, run: Manifest, job: DispatchJob, ids: Sequence[int], size: int) -> dict[str, Any]:
        step = job.step or 0
        key = layout.pacing_state(job.run_id, job.job)
        summary: dict[str, Any] = {"run_id": job.run_id, "job": job.job, "step": step}
        # Unique bytes: a create that finds its own bytes counts as made (stores.create), so
        # an empty claim would let every duplicate delivery win it.
        claim = uuid.uuid4().hex.encode()
        if not self.store.create(layout.pacing_claim(job.run_id, job.job, step), claim):
            return summary | {"paced": "duplicate"}
        state = PacingState.read(self.store, key)
        if job.step is not None and (state is None or state.step != step):
            return summary | {"paced": "superseded"}  # the reconciler resumed this job meanwhile
        deadline = self.clock() + self.budget_s
        poll_s = self.settings.pacing_poll_ms / 1000
        cursor = job.lo
        while cursor < job.hi:
            self._save(key, step, cursor, job.hi)
            if is_cancelled(self.store, job.run_id):
                # The leaves record CANCELLED for every shard they find cancelled.
                self.hand_out(DispatchJob(job.run_id, job.job, cursor, job.hi, sliced=True))
                cursor = job.hi
                break
            free = size - outstanding(self.store, run, ids, cursor)
            if free > 0:
                upto = min(job.hi, cursor + free)
                self.hand_out(DispatchJob(job.run_id, job.job, cursor, upto, sliced=True))
                cursor = upto
                continue
            if self.clock() + poll_s > deadline:
                break
            self.sleep(poll_s)
        summary |= {"window": size, "handed_out_to": cursor, "hi": job.hi}
        if cursor >= job.hi:
            self._save(key, step, job.hi, job.hi)
            return summary | {"paced": "done"}
        following = DispatchJob(job.run_id, job.job, cursor, job.hi, step + 1)
        self._save(key, step + 1, cursor, job.hi)  # first: a lost event is then resumable
        error = send(self.invoker, "dispatcher", following.to_payload(), self.backoff)
        if error is not None:
            logger.error(
                "pacing continuation not sent; the reconciler resumes it",
                extra=summary | {"error": error},
            )
        return summary | {"paced": "continued"}

    def _save(self, key: str, step: int, cursor: int, hi: int) -> None:
        self.store.put(key, PacingState(step, cursor, hi, self.now()).to_bytes())


def resume_quiet(
    store: ObjectStore, invoker: Invoker, settings: Settings, run_id: str, now: datetime
) -> int:
    """The reconciler's part: resend each paced job of the run whose state has been quiet for
    ``pacing_resume_s`` (its continuation was lost, or its dispatcher died), as the next step
    from its cursor. Returns how many were resumed."""
    resumed = 0
    for obj in store.list(layout.pacing_prefix(run_id)):
        job = layout.parse_pacing_state(obj.key, run_id)
        state = None if job is None else PacingState.read(store, obj.key)
        if job is None or state is None or state.cursor >= state.hi:
            continue
        if (now - state.at).total_seconds() < settings.pacing_resume_s:
            continue
        step = state.step + 1
        store.put(obj.key, PacingState(step, state.cursor, state.hi, now).to_bytes())
        following = DispatchJob(run_id, job, state.cursor, state.hi, step)
        error = send(invoker, "dispatcher", following.to_payload(), Backoff.from_settings(settings))
        extra = {"run_id": run_id, "job": job, "cursor": state.cursor, "step": step}
        if error is not None:  # its state is fresh again: the next quiet spell retries
            logger.error("paced job not resumed", extra=extra | {"error": error})
            continue
        logger.warning("quiet paced job resumed", extra=extra)
        resumed += 1
    return resumed
