"""The two asynchronous events the functions send each other, and their checks on arrival.

- ``DispatchJob``: API → dispatcher, dispatcher → child dispatcher: a slice of a run's shards.
- ``ShardTask``: dispatcher → worker: one shard, with the run's request in canonical form and
  the simulation version the run was accepted under, so a worker needs no read to start. Its
  size is bounded by the request body limit, well under Lambda's 1 MB async cap.

Both are small and pyarrow-free, so the API can hand a run over without importing what the
dispatcher and worker need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.model import ids
from chalicelib.model.errors import InvalidRequest
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import SweepRequest
from chalicelib.model.sharding import shard_bounds
from chalicelib.model.validation import validate_request

ASYNC_PAYLOAD_LIMIT = 1024 * 1024
VERSION = 1
INITIAL = "initial"


class InvalidTask(Exception):
    """A task the worker must not run; recorded as INVALID_TASK when it names a shard."""


@dataclass(frozen=True)
class ShardTask:
    run_id: str
    shard_id: int
    start: int
    end: int
    dt: str
    request: SweepRequest
    # The version the run was accepted under (its manifest's), or None from an event that does
    # not carry it (sent before events did; ``sweep estimate``'s throw-away shards).
    simulation_version: str | None = None

    @property
    def injected_failure(self) -> bool:
        return self.shard_id in self.request.fail_shards

    @property
    def injected_crash(self) -> bool:
        return self.shard_id in self.request.crash_shards


def task_payload(
    run_id: str,
    shard_id: int,
    bounds: tuple[int, int],
    dt: str,
    request_body: dict[str, Any],
    simulation_version: str | None = None,
) -> dict[str, Any]:
    """A worker's event; ``request_body`` is the manifest's canonical request, sent as is."""
    payload = {
        "version": VERSION,
        "run_id": run_id,
        "shard_id": shard_id,
        "start": bounds[0],
        "end": bounds[1],
        "dt": dt,
        "request": request_body,
    }
    if simulation_version is not None:
        payload["simulation_version"] = simulation_version
    return payload


def run_task_payload(run: Manifest, shard_id: int, job: str = INITIAL) -> dict[str, Any]:
    """Shard ``shard_id``'s event for a stored run, as the dispatch job ``job`` sends it. The
    job is not part of the task: it tells an OnFailure record about this event from one about
    a later redrive's (``failure_recorder``)."""
    request = run.request
    bounds = shard_bounds(request.total_points, request.shards, shard_id)
    return task_payload(
        run.run_id, shard_id, bounds, run.dt, run.request_body, run.simulation_version
    ) | {"job": job}


def encode(payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":")).encode()
    if len(data) > ASYNC_PAYLOAD_LIMIT:
        raise ValueError(f"task payload of {len(data)} bytes exceeds Lambda's async limit")
    return data


def identify(payload: Any) -> tuple[str, int, str] | None:
    """(run_id, shard_id, dt) if the payload names a shard well enough to record an outcome."""
    if not isinstance(payload, dict):
        return None
    run_id, shard_id, dt = payload.get("run_id"), payload.get("shard_id"), payload.get("dt")
    if not ids.is_run_id(run_id) or not ids.is_dt(dt):
        return None
    if isinstance(shard_id, bool) or not isinstance(shard_id, int) or shard_id < 0:
        return None
    return run_id, shard_id, dt


def parse_task(payload: Any) -> ShardTask:
    """Check the task end to end: its request validates, its bounds are the shard's and its
    dt is its run's (a server-made run id starts with its creation date).

    This is the task's consistency, not its authority: who may send it is IAM's business
    (only the dispatcher's role may invoke the worker, ``deploy/policies.py``). Its request is
    not compared with the run's manifest, which would cost a GET a shard; an event whose
    request differs from its run's would be evaluated as it says."""
    named = identify(payload)
    if named is None:
        raise InvalidTask("the task does not name a run, shard and dt")
    run_id, shard_id, dt = named
    if ids.run_dt(run_id) not in (None, dt):
        raise InvalidTask(f"dt {dt} is not the date of run {run_id}")
    if payload.get("version") != VERSION:
        raise InvalidTask(f"unsupported task version {payload.get('version')!r}")
    try:
        request = _validated(json.dumps(payload.get("request")))
    except InvalidRequest as exc:
        raise InvalidTask(f"the task's request is invalid: {exc.message}") from None
    start, end = payload.get("start"), payload.get("end")
    try:
        expected = shard_bounds(request.total_points, request.shards, shard_id)
    except IndexError:
        raise InvalidTask(f"shard {shard_id} is not in the plan") from None
    if (start, end) != expected:
        raise InvalidTask(
            f"bounds [{start}, {end}) disagree with the plan's [{expected[0]}, {expected[1]})"
        )
    version = payload.get("simulation_version")
    if version is not None and not isinstance(version, str):
        raise InvalidTask(f"the task's simulation_version {version!r} is not a string")
    return ShardTask(run_id, shard_id, expected[0], expected[1], dt, request, version)


@lru_cache(maxsize=16)
def _validated(request_text: str) -> SweepRequest:
    """A request validated once per worker process, not once per shard: a warm worker runs
    shard after shard of the same run, each carrying the same request, and the full check
    (JSON Schema and semantics) costs ~1.7 ms, most of a small shard's overhead. Keyed by the
    request's text as sent, so any difference in the event is validated afresh; the parsed
    request is immutable, so sharing it is safe. Keys keep their order (never sorted): the
    order of the axes is the order of the space. (Invalid requests raise, uncached.)"""
    return validate_request(json.loads(request_text), limits=None)


@dataclass(frozen=True)
class DispatchJob:
    """Positions ``[lo, hi)`` of a job's shard list: all shards for the initial job, the
    stored list for a redrive."""

    run_id: str
    job: str
    lo: int
    hi: int
    # Set on a paced job's continuation (``fanout.pacing``): its step number; ``lo`` is then the
    # cursor, everything of the job before it handed out already.
    step: int | None = None
    # Set on a part another dispatcher handed out (a pacer's slice, a split's child): never the
    # job's root, even when it spans the whole job (a job cancelled before its first hand-out
    # goes out whole, to leaves that close it), and never paced (the local stage runs it on
    # threads no pacer waits on).
    sliced: bool = False

    @property
    def may_pace(self) -> bool:
        """Whether its dispatcher may wait for pacing windows: a job's root or a paced job's
        continuation, never a part handed out."""
        return not self.sliced or self.step is not None

    def to_payload(self) -> dict[str, Any]:
        d: dict[str, Any] = {"run_id": self.run_id, "job": self.job, "lo": self.lo, "hi": self.hi}
        if self.step is not None:
            d["step"] = self.step
        if self.sliced:
            d["sliced"] = True
        return {"dispatch": d}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> DispatchJob:
        d = payload["dispatch"]
        step = None if d.get("step") is None else int(d["step"])
        run_id, name, lo, hi = str(d["run_id"]), str(d["job"]), int(d["lo"]), int(d["hi"])
        job = cls(run_id, name, lo, hi, step, d.get("sliced") is True)
        if not (ids.is_run_id(job.run_id) and ids.is_job(job.job)):
            raise ValueError(f"malformed dispatch job {job.run_id!r}/{job.job!r}")
        if not 0 <= job.lo <= job.hi or (step is not None and step < 0):
            raise ValueError(f"bad dispatch range [{job.lo}, {job.hi})")
        return job
