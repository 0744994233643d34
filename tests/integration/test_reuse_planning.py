"""Reuse planning at scale: its memory does not grow with the run's points, and a root
dispatcher that died planning never keeps the run from being dispatched.

The plan runs as the root dispatcher runs it (``reuse.plan`` on a stored manifest, on a
LocalStore; the crash test through the dispatcher function on moto S3, ``Harness``).
"""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.execution import reuse
from chalicelib.execution.worker import run_task
from chalicelib.model import ids
from chalicelib.model.events import INITIAL, run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits
from chalicelib.model.validation import validate_request
from chalicelib.storage import layout, manifests
from chalicelib.storage.stores import LocalStore
from tests.support.harness import Harness, body_of

LIMITS = Limits(max_points=10**8, max_shards=100_000, allow_fault_injection=True)


def strikes(points: int, **extra: Any) -> dict[str, Any]:
    """``points`` option prices, one a strike 1, 2, ...: a run of n shares its first points
    with every run of more."""
    return {
        "simulation": "option_pricing",
        "parameters": {
            "strike": {"range": {"start": 1, "stop": points + 1, "step": 1}},
            "paths": {"values": [10]},
        },
        "shards": {"size": 1000},
        "seed": 5,
    } | extra


class Stored:
    """Runs stored on a LocalStore, each later than the one before."""

    def __init__(self, root: Path) -> None:
        self.store = LocalStore(root)
        self.clock = datetime(2026, 12, 1, tzinfo=UTC)

    def manifest(self, body: dict[str, Any]) -> Manifest:
        self.clock += timedelta(seconds=1)
        request = validate_request(body, LIMITS)
        run = Manifest.new(ids.new_run_id(self.clock), self.clock, "test", request, LIMITS)
        manifests.save(self.store, run)
        return run

    def evaluated(self, body: dict[str, Any]) -> Manifest:
        run = self.manifest(body)
        reuse.mark_pending(self.store, run, INITIAL)
        for shard_id in range(run.request.shard_count):
            run_task(run_task_payload(run, shard_id), None, self.store, 0)
        return run


def planning_peak(stored: Stored, points: int) -> tuple[int, dict[int, int]]:
    """Bytes allocated at the peak of planning a reusing run of ``points`` (Python's and
    NumPy's allocations, which ``tracemalloc`` sees), and its counts."""
    run = stored.manifest(strikes(points, reuse=True))
    tracemalloc.start()
    try:
        counts = reuse.plan(stored.store, run)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, counts


def test_planning_memory_does_not_grow_with_the_runs_points(tmp_path: Path) -> None:
    """An earlier run evaluated 1,500 points; plans of 20,000 and of 300,000 points copy them.
    The larger plan's peak stays within 4 MB of the smaller's: keys are made and matched a row
    group at a time. (Holding a key per point, as a list of bytes, the larger plan's peak was
    18 MB above the smaller's, and 10^7 points took over the dispatcher's 1,024 MB.)"""
    stored = Stored(tmp_path / "data")
    source = stored.evaluated(strikes(1500))
    small, small_counts = planning_peak(stored, 20_000)
    large, large_counts = planning_peak(stored, 300_000)
    assert small_counts == large_counts == {0: 1000, 1: 500}
    assert large < small + 4 * 2**20, (small, large)
    # And the plan holds what the source computed, each point where it belongs.
    run = stored.manifest(strikes(2500, reuse=True, shards={"size": 700}))
    assert reuse.plan(stored.store, run) == {0: 700, 1: 700, 2: 100}
    plan = json.loads(stored.store.get(layout.reuse_plan(run.run_id)))
    assert plan == {"shards": {"0": 700, "1": 700, "2": 100}, "reused": 1500}
    statuses = [run_task(run_task_payload(run, k), None, stored.store, 0) for k in range(4)]
    assert [s.get("points_reused", 0) for s in statuses] == [700, 700, 100, 0]
    copies = pq.read_table(io.BytesIO(stored.store.get(layout.reuse_shard_plan(run.run_id, 2))))
    assert copies["point_index"].to_pylist() == list(range(1400, 1500))
    assert set(copies["source_run_id"].to_pylist()) == {source.run_id}


def test_a_plan_started_and_never_finished_is_not_started_again(tmp_path: Path) -> None:
    """A delivery that finds the planning marker and no plan follows one killed planning: it
    writes an empty plan at once (every point evaluated), which later deliveries keep."""
    stored = Stored(tmp_path / "data")
    stored.evaluated(strikes(10))
    run = stored.manifest(strikes(20, reuse=True))
    stored.store.create(layout.reuse_planning(run.run_id), b"a killed delivery's token")
    assert reuse.plan(stored.store, run) == {}
    assert json.loads(stored.store.get(layout.reuse_plan(run.run_id))) == {
        "shards": {},
        "reused": 0,
    }
    assert reuse.plan(stored.store, run) == {}


class Killed(BaseException):
    """What the dispatcher's planning meets when Lambda kills it (out of memory, out of time):
    nothing the handler can catch."""


def test_a_root_dispatcher_killed_while_planning_hands_out_its_shards_when_redelivered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root dispatcher of a reusing run dies planning, every time it plans this run (as
    one killed out of memory would: the same request, the same memory). Lambda delivers its
    event again: the redelivery finds planning started and not finished, plans nothing, and
    hands every shard to a worker; the run completes, every point evaluated."""
    first = body_of(harness.post(strikes(30, shards={"count": 3})))["run_id"]
    harness.run_dispatchers()
    harness.run_workers()
    assert body_of(harness.get(f"/sweeps/{first}"))["complete"]

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise Killed

    monkeypatch.setattr(reuse, "history", killed)
    run_id = body_of(harness.post(strikes(40, reuse=True, shards={"count": 4})))["run_id"]
    (root,) = harness.lambda_.take("dispatcher")
    with pytest.raises(Killed):
        harness.client.lambda_.invoke("dispatcher", root.payload)
    assert harness.lambda_.take("worker") == []
    assert harness.store.exists(layout.reuse_planning(run_id))
    assert not harness.store.exists(layout.reuse_plan(run_id))

    harness.client.lambda_.invoke("dispatcher", root.payload)  # Lambda's retry of the event
    harness.run_dispatchers()
    workers = harness.lambda_.take("worker")
    assert sorted(call.payload["shard_id"] for call in workers) == [0, 1, 2, 3]
    harness.run_workers(workers)
    state = body_of(harness.get(f"/sweeps/{run_id}"))
    assert state["complete"] and state["failed_shards"] == []
    assert (state["points_reused"], state["points_evaluated"]) == (0, 40)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 7), min_size=1, max_size=40),
    st.lists(st.integers(0, 9), min_size=0, max_size=40),
)
def test_lookup_answers_as_arrows_index_in(past: list[int], asked: list[int]) -> None:
    """Keys drawn from ten, half of them sharing their first 8 bytes (the halves' rare
    collision made common) and repeated in the history: each asked key's row is its first
    row in the history, or -1, exactly as Arrow's ``index_in`` answers."""
    pool = [bytes([k % 2] * 8) + bytes([k] * 8) if k < 5 else bytes([k] * 16) for k in range(10)]
    keys = pa.array([pool[k] for k in past], pa.binary(16))
    question = pa.array([pool[k] for k in asked], pa.binary(16))
    expected = pc.index_in(question, value_set=keys).fill_null(-1).to_numpy()
    found = reuse.Lookup(keys)(question)
    assert found.dtype == np.int64 and found.tolist() == expected.tolist()
    sliced = pa.concat_arrays([pa.array([pool[9]], pa.binary(16)), keys]).slice(1)
    assert reuse.Lookup(sliced)(question).tolist() == expected.tolist()
