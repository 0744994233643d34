"""Faults on the local stage's Lambda stand-in: a worker process killed mid-shard.

The pool breaks (``BrokenProcessPool``) and every event in it fails, as a crashed Lambda
environment would fail its invocation: with retries left the stage runs them again; without,
it sends the failure recorder Lambda's destination record (``RETRIES_EXHAUSTED``). Either way
the run completes with every shard represented once.
"""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chalicelib.config import Settings
from chalicelib.fanout.local_lambda import LocalInvoker
from chalicelib.runs import status as run_status
from chalicelib.runs.submit import submit
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore

SLOW = {
    "simulation": "option_pricing",
    "parameters": {
        "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 8}},
        "paths": {"values": [400000]},
    },
    "shards": {"count": 4},
}


def kill_a_pool_process(invoker: LocalInvoker) -> int:
    """SIGKILL one of the pool's processes as soon as there is one; its pid."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pool = invoker._pool
        processes = dict(pool._processes) if pool is not None and pool._processes else {}
        if processes:
            pid = next(iter(processes))
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.01)
    raise AssertionError("no pool process started")


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_worker_process_killed_mid_shard(tmp_path: Path, attempts: int) -> None:
    settings = Settings(
        local_root=tmp_path / "data", local_processes=2, worker_max_attempts=attempts
    )
    store = LocalStore(settings.local_root)
    invoker = LocalInvoker(settings, store)
    try:
        run_id = submit(settings, store, invoker, SLOW)["run_id"]
        kill_a_pool_process(invoker)
        assert invoker.wait_idle(180)
        status = run_status.status(store, run_id)
    finally:
        invoker.close()
    assert status["complete"] is True
    codes: dict[int, list[str]] = {}
    successes: dict[int, int] = {}
    for obj in store.list(layout.outcomes_prefix(run_id)):
        key = layout.parse_outcome(obj.key)
        assert key is not None
        if key.status == "succeeded":
            successes[key.shard_id] = successes.get(key.shard_id, 0) + 1
        else:
            row = pq.read_table(io.BytesIO(store.get(obj.key))).to_pylist()[0]
            codes.setdefault(key.shard_id, []).append(row["error_code"])
    assert all(n == 1 for n in successes.values())
    assert set(successes) | set(codes) == {0, 1, 2, 3}  # every shard represented
    if attempts == 3:
        assert status["shards"] == {"succeeded": 4, "failed": 0, "pending": 0}
    else:  # the killed pool's events are recorded as Lambda's destination would
        assert codes and all(c == ["RETRIES_EXHAUSTED"] for c in codes.values())
        assert status["failed_shards"] == sorted(codes)


def test_crash_shards_crash_every_attempt_then_reach_the_recorder(tmp_path: Path) -> None:
    """``crash_shards`` (contract): the worker raises unhandled on every attempt; the stage's
    Lambda stand-in retries it (3 attempts) and then hands it to the failure recorder."""
    from tests.support import failed_codes

    settings = Settings(
        local_root=tmp_path / "data",
        local_processes=2,
        worker_max_attempts=3,
        allow_fault_injection=True,  # as on the local stage
    )
    store = LocalStore(settings.local_root)
    invoker = LocalInvoker(settings, store)
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [10, 20, 30, 40]}},
        "shards": {"count": 4},
        "crash_shards": [1],
        "fail_shards": [2],
    }
    try:
        run_id = submit(settings, store, invoker, body)["run_id"]
        assert invoker.wait_idle(120)
    finally:
        invoker.close()
    assert failed_codes(store, run_id) == {1: ["RETRIES_EXHAUSTED"], 2: ["INJECTED_FAILURE"]}
    state = run_status.status(store, run_id)
    assert state["complete"] and state["shards"] == {"succeeded": 2, "failed": 2, "pending": 0}
