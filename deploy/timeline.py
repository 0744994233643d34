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
hand-over may only record the progress). Checked for every deployed stage when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy import stage_settings

# Lambda's async settings for worker events (deploy.merge and deploy.post_deploy apply them).
WORKER_RETRIES = 2
WORKER_MAX_EVENT_AGE = 6 * 3600


class TimelineError(Exception):
    pass


@dataclass(frozen=True)
class Timeline:
    max_event_age_s: int
    worker_timeout_s: int
    stall_timeout_s: int
    max_auto_redrives: int
    reconcile_interval_s: int

    @property
    def latest_write_s(self) -> int:
        """How long after its hand-over a worker event may still be writing."""
        return self.max_event_age_s + self.worker_timeout_s

    @property
    def lost_bound_s(self) -> int:
        """How long a dropped event may take to end in a final outcome."""
        return (self.max_auto_redrives + 1) * self.stall_timeout_s + 2 * self.reconcile_interval_s

    def problem(self) -> str | None:
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
    )


def check(stage: str) -> Timeline:
    timeline = for_stage(stage)
    if (problem := timeline.problem()) is not None:
        raise TimelineError(f"stage {stage}: {problem}")
    return timeline
