"""The reconciler's clock against Lambda's: a shard is closed only when no event for it can run.

Lambda keeps retrying a throttled async event until it is ``MaximumEventAgeInSeconds`` old
(aws-facts), and an attempt that starts just before then may run for the worker's whole
timeout. The reconciler closes a shard (``LOST``) one stall timeout after the run's last
progress, and every hand-over (a redrive list, a dispatch record) is progress. So:

    stall_timeout_s  >=  MaximumEventAgeInSeconds + worker timeout            (the inequality)

guarantees that once a shard is closed, no delivery of any of its events can still write, and a
run's states stay as ``complete`` left them. A dropped event then ends in a final outcome within

    (max_auto_redrives + 1) x stall_timeout_s + 2 x reconcile_interval_s      (the bound)

(each stall is noticed at the next pass, at most one interval late, and the first pass after a
hand-over may only record the progress).

Pacing (chalicelib/fanout/pacing.py) keeps each run's outstanding worker events (handed out, not
final) within a window of ``pacing_factor`` (k) times the worker's concurrency C. An event waits
only while C others hold the slots; of its run at most k x C - 1 are outstanding, and each holds
a slot at most (retries + 1) x the worker's timeout (a function error is retried twice), so the
window drains within k x (retries + 1) x timeout; Lambda retries a throttled event at most
``LAMBDA_RETRY_INTERVAL_S`` apart, so

    queue wait  <=  k x (retries + 1) x worker timeout + 300 s  <  MaximumEventAgeInSeconds
                                                                        (the pacing inequality)

With k = 1 (the default) no event of a run waits for another of the same run at all, whatever
order Lambda serves throttled events in (undocumented); k > 1 also assumes Lambda serves waiting
events without starving one. Waits for other runs and other functions sharing unreserved
concurrency are outside this bound (a reservation, SWEEP_WORKER_RESERVED_CONCURRENCY, removes the
latter). A pacer that went quiet is resumed by the reconciler after ``pacing_resume_s``, which
must exceed twice the dispatcher's timeout (no live pacer is doubled) and stay below the stall
timeout (a lost continuation is resumed before its run counts as stalled).

Checked for every deployed stage when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy import stage_settings

# Lambda's async settings for worker events (deploy.merge and deploy.post_deploy apply them).
WORKER_RETRIES = 2
WORKER_MAX_EVENT_AGE = 6 * 3600
# The longest interval between Lambda's retries of a throttled async event (aws-facts).
LAMBDA_RETRY_INTERVAL_S = 300


class TimelineError(Exception):
    pass


@dataclass(frozen=True)
class Timeline:
    max_event_age_s: int
    worker_timeout_s: int
    stall_timeout_s: int
    max_auto_redrives: int
    reconcile_interval_s: int
    pacing_factor: int = 1
    pacing_resume_s: int = 1_800
    dispatcher_timeout_s: int = 900

    @property
    def latest_write_s(self) -> int:
        """How long after its hand-over a worker event may still be writing."""
        return self.max_event_age_s + self.worker_timeout_s

    @property
    def lost_bound_s(self) -> int:
        """How long a dropped event may take to end in a final outcome."""
        return (self.max_auto_redrives + 1) * self.stall_timeout_s + 2 * self.reconcile_interval_s

    @property
    def queue_wait_bound_s(self) -> int:
        """How long a paced worker event may wait in Lambda's queue (the pacing inequality)."""
        attempts = WORKER_RETRIES + 1
        return self.pacing_factor * attempts * self.worker_timeout_s + LAMBDA_RETRY_INTERVAL_S

    def problem(self) -> str | None:
        if self.queue_wait_bound_s >= self.max_event_age_s:
            return (
                f"SWEEP_PACING_FACTOR={self.pacing_factor}: a paced worker event may wait "
                f"{self.queue_wait_bound_s} s, not below the maximum event age "
                f"({self.max_event_age_s} s), so Lambda could drop it as EVENT_AGE_EXCEEDED"
            )
        if not 2 * self.dispatcher_timeout_s <= self.pacing_resume_s < self.stall_timeout_s:
            return (
                f"SWEEP_PACING_RESUME_S={self.pacing_resume_s} must be at least twice the "
                f"dispatcher's timeout ({self.dispatcher_timeout_s} s) and below "
                f"SWEEP_STALL_TIMEOUT_S ({self.stall_timeout_s} s)"
            )
        if self.stall_timeout_s >= self.latest_write_s:
            return None
        return (
            f"SWEEP_STALL_TIMEOUT_S={self.stall_timeout_s} is shorter than the worker's maximum "
            f"event age ({self.max_event_age_s} s) plus its timeout ({self.worker_timeout_s} s): "
            "the reconciler could close a shard as LOST while Lambda may still deliver its event"
        )


def for_stage(stage: str) -> Timeline:
    """The timeline a deployed stage gets from .chalice/config.json and the settings table."""
    settings = stage_settings.settings(stage)
    return Timeline(
        WORKER_MAX_EVENT_AGE,
        stage_settings.worker_timeout_s(stage),
        settings.stall_timeout_s,
        settings.max_auto_redrives,
        settings.reconcile_interval_s,
        settings.pacing_factor,
        settings.pacing_resume_s,
        stage_settings.timeout_s(stage, "dispatcher"),
    )


def check(stage: str) -> Timeline:
    timeline = for_stage(stage)
    if (problem := timeline.problem()) is not None:
        raise TimelineError(f"stage {stage}: {problem}")
    return timeline
