"""The reconciler never closes a shard while Lambda may still deliver one of its events."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.config import Settings
from deploy import merge, package, stage_settings, timeline
from deploy.naming import STAGES
from deploy.tools import PackageError


@pytest.mark.parametrize("stage", STAGES)
def test_every_deployed_stage_keeps_the_inequality(stage: str) -> None:
    line = timeline.check(stage)
    assert line.max_event_age_s == merge.WORKER_MAX_EVENT_AGE  # what the stack configures
    assert line.stall_timeout_s >= line.max_event_age_s + line.worker_timeout_s
    # The documented bound (docs/reliability.md): a dropped event ends within ~19.2 h.
    assert line.lost_bound_s == 69_000


def test_the_old_one_hour_stall_timeout_breaks_it() -> None:
    """3,600 s against a 6 h event age: LOST after ~3 h, while Lambda retries for 6 h."""
    line = timeline.Timeline(21_600, 900, 3_600, 2, 300)
    problem = line.problem()
    assert problem is not None and "SWEEP_STALL_TIMEOUT_S=3600" in problem


def test_a_stage_configured_too_short_fails_its_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = stage_settings.chalice_config()
    config["stages"]["dev"]["environment_variables"]["SWEEP_STALL_TIMEOUT_S"] = "3600"
    monkeypatch.setattr(stage_settings, "chalice_config", lambda: config)
    with pytest.raises(PackageError, match="stage dev: SWEEP_STALL_TIMEOUT_S=3600"):
        package.package("dev", tmp_path / "never-written")
    assert not (tmp_path / "never-written").exists()


def test_the_default_is_the_deployed_one() -> None:
    assert Settings(backend="aws").stall_timeout_s == timeline.for_stage("dev").stall_timeout_s


@pytest.mark.parametrize("stage", STAGES)
def test_every_deployed_stage_keeps_the_pacing_inequality(stage: str) -> None:
    """A paced event waits at most k x 3 attempts x 900 s + 300 s = 3,000 s at k = 1, far
    below the 6 h event age; a quiet pacer is resumed before its run counts as stalled."""
    line = timeline.check(stage)
    assert line.queue_wait_bound_s == 3_000 < line.max_event_age_s
    assert 2 * line.dispatcher_timeout_s <= line.pacing_resume_s < line.stall_timeout_s


def test_a_pacing_window_too_wide_for_the_event_age_fails() -> None:
    """k = 8: 8 x 3 x 900 + 300 = 21,900 s of possible queue wait, beyond 21,600 s."""
    line = timeline.Timeline(21_600, 900, 22_800, 2, 300, pacing_factor=8)
    problem = line.problem()
    assert problem is not None and "SWEEP_PACING_FACTOR=8" in problem
    assert timeline.Timeline(21_600, 900, 22_800, 2, 300, pacing_factor=7).problem() is None


def test_a_resume_sooner_than_a_dispatcher_can_live_fails() -> None:
    line = timeline.Timeline(21_600, 900, 22_800, 2, 300, pacing_resume_s=900)
    problem = line.problem()
    assert problem is not None and "SWEEP_PACING_RESUME_S=900" in problem
