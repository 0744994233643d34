"""The payload the parent sends a worker for one shard, and its checks on arrival.

The payload carries the validated request (canonical form), so a worker needs no read to
start; its size is bounded by the request body limit, well under Lambda's 1 MB async cap.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chalicelib import layout
from chalicelib.errors import InvalidRequest
from chalicelib.partitioner import shard_bounds
from chalicelib.validator import SweepRequest, validate_request

ASYNC_PAYLOAD_LIMIT = 1024 * 1024
DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
VERSION = 1


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

    def to_payload(self, request_body: dict[str, Any] | None = None) -> dict[str, Any]:
        """``request_body``: the request's canonical form, when the caller already has it."""
        return {
            "version": VERSION,
            "run_id": self.run_id,
            "shard_id": self.shard_id,
            "start": self.start,
            "end": self.end,
            "dt": self.dt,
            "request": request_body if request_body is not None else self.request.to_dict(),
        }

    @property
    def point_count(self) -> int:
        return self.end - self.start

    @property
    def injected_failure(self) -> bool:
        return self.shard_id in self.request.fail_shards


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
    if not (isinstance(run_id, str) and layout.is_run_id(run_id)):
        return None
    if isinstance(shard_id, bool) or not isinstance(shard_id, int) or shard_id < 0:
        return None
    if not (isinstance(dt, str) and DT_RE.match(dt)):
        return None
    return run_id, shard_id, dt


def parse_task(payload: Any) -> ShardTask:
    """Check the task end to end: its request re-validates and its bounds are the shard's."""
    ids = identify(payload)
    if ids is None:
        raise InvalidTask("the task does not name a run, shard and dt")
    run_id, shard_id, dt = ids
    if payload.get("version") != VERSION:
        raise InvalidTask(f"unsupported task version {payload.get('version')!r}")
    try:
        request = validate_request(payload.get("request"), limits=None)
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
    return ShardTask(run_id, shard_id, expected[0], expected[1], dt, request)
