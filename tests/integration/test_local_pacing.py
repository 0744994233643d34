"""Pacing against the worker's concurrency, on the local stage's Lambda stand-in modelling
Lambda's async queue: one worker process (concurrency 1), and an event that waits longer than
the maximum event age before a process takes it is dropped to the failure recorder as
``EVENT_AGE_EXCEEDED``. A run of 20x more shards than that concurrency loses shards that way
when it is handed out at once, and completes with every shard succeeded when it is paced.

No timed assertion: the age is a property of the stand-in, and what is asserted is which
outcomes the run ends with. Each shard is 30 million samples: 0.45 s here, and about 0.35 s on
CI's runner (scaled from its 0.14 s a shard at 12 million, when the whole unpaced run took
2.9 s there and missed the 3 s age it then had), so 20 queued at once put the last one about
6.5 s behind the first: past the 2 s age on a machine up to three times faster than CI's.
Paced, each event finds the process free within one poll (0.1 s), far inside the age however
loaded the machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from chalicelib.config import Settings
from chalicelib.fanout.local_lambda import LocalInvoker
from chalicelib.runs.status import status
from chalicelib.runs.submit import submit
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore

CONCURRENCY = 1
SHARDS = 20 * CONCURRENCY
MAX_AGE_S = 2
SWEEP = {
    "simulation": "monte_carlo_pi",
    # Three points of 10 million samples each per shard.
    "parameters": {"samples": {"range": {"start": 10_000_000, "stop": 10_000_060, "step": 1}}},
    "shards": {"count": SHARDS},
}
WARM_UP = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"values": [10]}},
    "shards": {"count": 1},
}


def failure_codes(root: Path, run_id: str) -> list[str]:
    folder = root / layout.outcomes_prefix(run_id) / "status=failed"
    if not folder.exists():
        return []
    return [str(pq.read_table(f)["error_code"][0]) for f in sorted(folder.rglob("*.parquet"))]


def run_sweep(root: Path, pacing_factor: int) -> tuple[dict[str, Any], list[str]]:
    settings = Settings(
        local_root=root,
        local_processes=CONCURRENCY,
        local_max_event_age_s=MAX_AGE_S,
        pacing_factor=pacing_factor,
        pacing_poll_ms=100,
    )
    store = LocalStore(root)
    invoker = LocalInvoker(settings, store)
    try:
        # A warm pool first (the process's imports), so what is measured is the queue alone.
        submit(settings, store, invoker, WARM_UP)
        assert invoker.wait_idle(240)
        run_id = str(submit(settings, store, invoker, SWEEP)["run_id"])
        assert invoker.wait_idle(240)
        return status(store, run_id), failure_codes(root, run_id)
    finally:
        invoker.close()


def test_a_run_handed_out_at_once_loses_shards_to_the_event_age(tmp_path: Path) -> None:
    """Pacing off: a window of SHARDS x concurrency is never exceeded, so the job is not paced."""
    done, codes = run_sweep(tmp_path, pacing_factor=SHARDS)
    assert done["complete"]
    assert "EVENT_AGE_EXCEEDED" in codes
    assert done["shards"]["failed"] > 0


def test_a_paced_run_of_twenty_times_the_concurrency_completes_without_age_drops(
    tmp_path: Path,
) -> None:
    done, codes = run_sweep(tmp_path, pacing_factor=1)
    assert codes == []
    assert done["complete"]
    assert done["shards"] == {"succeeded": SHARDS, "failed": 0, "pending": 0}
    assert done["dispatch"] == {"dispatched": SHARDS, "failed": 0}
    # The job was paced: its state names the whole job handed out, through continuations
    # or within one invocation.
    state = (tmp_path / layout.pacing_state(done["run_id"], "initial")).read_text()
    assert f'"cursor": {SHARDS}' in state


def test_more_paced_runs_at_once_than_dispatcher_threads_all_complete(tmp_path: Path) -> None:
    """Each paced root waits for its window on a dispatcher thread. Its slices ran on the same
    four threads, so with four paced runs at once every thread held a pacer waiting for a
    window only its queued slices could open: nothing moved until each pacer gave up
    (``pacing_max_wait_s``, here longer than the wait below), once per window. Liveness, not
    speed: the runs finish within a minute, where a pacer alone would wait ten."""
    settings = Settings(
        local_root=tmp_path,
        local_processes=1,
        local_max_event_age_s=60,
        pacing_factor=1,
        pacing_poll_ms=100,
        pacing_max_wait_s=600,
    )
    store = LocalStore(tmp_path)
    invoker = LocalInvoker(settings, store)
    small = WARM_UP | {"parameters": {"samples": {"range": {"start": 10, "stop": 14, "step": 1}}}}
    try:
        submit(settings, store, invoker, WARM_UP)
        assert invoker.wait_idle(240)
        runs = [
            str(submit(settings, store, invoker, small | {"shards": {"count": 4}})["run_id"])
            for _ in range(6)
        ]
        assert invoker.wait_idle(60)
        for run_id in runs:
            assert status(store, run_id)["shards"] == {"succeeded": 4, "failed": 0, "pending": 0}
    finally:
        invoker.close()
