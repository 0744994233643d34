"""Contiguous shards that cover ``[0, total)`` exactly once.

Every shard's bounds are a closed-form function of (total, spec, shard_id), so a worker can
check the bounds it was sent in O(1) without the parent's list, and the plan for 10^12 points
costs O(shards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ShardSpec:
    """Either ``count`` shards (sizes differ by at most one) or shards of ``size`` points."""

    mode: Literal["count", "size"]
    value: int

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ShardSpec:
        if "count" in spec:
            return cls("count", spec["count"])
        return cls("size", spec["size"])

    def to_dict(self) -> dict[str, int]:
        return {self.mode: self.value}


def shard_count(total: int, spec: ShardSpec) -> int:
    if spec.mode == "count":
        return spec.value
    return -(-total // spec.value)


def shard_bounds(total: int, spec: ShardSpec, shard_id: int) -> tuple[int, int]:
    """``[start, end)`` of one shard; the first ``total % count`` shards get one point more."""
    count = shard_count(total, spec)
    if not 0 <= shard_id < count:
        raise IndexError(f"shard {shard_id} outside 0..{count - 1}")
    if spec.mode == "count":
        base, extra = divmod(total, count)
        start = shard_id * base + min(shard_id, extra)
        return start, start + base + (1 if shard_id < extra else 0)
    start = shard_id * spec.value
    return start, min(total, start + spec.value)
