"""Contiguous shards that cover ``[0, total)`` exactly once.

Every shard's bounds are a closed-form function of (total, spec, shard_id), so a worker can
check the bounds it was sent in O(1) without the parent's list, and the plan for 10^12 points
costs O(shards).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
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


def points_of(total: int, spec: ShardSpec, shard_ids: Sequence[int]) -> int:
    """The points in the shards ``shard_ids`` (ascending, each once), in closed form: status
    counts the points of a running run's pending shards on every poll, up to 100,000 of
    them, where a ``shard_bounds`` each cost more than the rest of the poll."""
    n = len(shard_ids)
    if not n:
        return 0
    count = shard_count(total, spec)
    if shard_ids[0] < 0 or shard_ids[-1] >= count:
        raise IndexError(f"shards {shard_ids[0]}..{shard_ids[-1]} outside 0..{count - 1}")
    if spec.mode == "count":
        base, extra = divmod(total, count)
        return n * base + bisect.bisect_left(shard_ids, extra)  # the first ``extra`` hold one more
    short = count * spec.value - total  # the last shard's missing points
    return n * spec.value - (short if shard_ids[-1] == count - 1 else 0)


def split(lo: int, hi: int, width: int) -> list[tuple[int, int]]:
    """``width`` contiguous, non-empty ranges covering ``[lo, hi)``; sizes differ by <= 1.

    The same arithmetic as shards by count: child ``k`` of a job is shard ``k`` of its range."""
    n = hi - lo
    spec = ShardSpec("count", min(width, n))
    return [(lo + a, lo + b) for a, b in (shard_bounds(n, spec, k) for k in range(spec.value))]


def tree_size(shards: int, leaf_shards: int, width: int) -> int:
    """The dispatcher invocations a job of ``shards`` shards takes when none is paced: itself,
    and if it is larger than a leaf, the trees of its ``split`` children (1,001 shards: 11;
    100,000: 111, at 1,000 a leaf and width 10)."""
    if shards <= leaf_shards:
        return 1
    return 1 + sum(tree_size(hi - lo, leaf_shards, width) for lo, hi in split(0, shards, width))
