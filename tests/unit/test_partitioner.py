"""Properties of the shard plan: contiguous, complete, balanced, closed-form per shard."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.model.sharding import Shard, ShardSpec, plan_shards, shard_bounds, shard_count

MAX_TOTAL = 10**12
MAX_COUNT = 10_000
# Above this many shards, shard_bounds is checked on a sample of ids (plus both ends).
FULL_CHECK = 500

FAST = settings(max_examples=60, deadline=None)

totals = st.one_of(
    st.integers(1, 50),
    st.integers(1, 10_000),
    st.integers(1, MAX_TOTAL),
    st.sampled_from([MAX_TOTAL, MAX_TOTAL - 1, 10**6, 2**31, 2**32 + 1]),
)


@st.composite
def count_plans(draw: st.DrawFn) -> tuple[int, ShardSpec]:
    total = draw(totals)
    count = draw(st.integers(1, min(total, MAX_COUNT)))
    return total, ShardSpec("count", count)


@st.composite
def size_plans(draw: st.DrawFn) -> tuple[int, ShardSpec]:
    total = draw(totals)
    # Sizes below total // MAX_COUNT would make more than MAX_COUNT shards; keep plans bounded.
    low = max(1, -(-total // MAX_COUNT))
    size = draw(st.one_of(st.integers(low, total), st.integers(low, low + 3), st.just(total)))
    return total, ShardSpec("size", size)


plans = st.one_of(count_plans(), size_plans())


def check_cover(total: int, shards: list[Shard]) -> None:
    """Sorted, contiguous from 0 to total, non-empty: each index is in exactly one shard."""
    assert shards, "a plan has at least one shard"
    assert [s.shard_id for s in shards] == list(range(len(shards)))
    assert shards[0].start == 0
    assert shards[-1].end == total
    for before, after in itertools.pairwise(shards):
        assert before.end == after.start, "shards must be contiguous and must not overlap"
    assert all(s.size >= 1 for s in shards), "no shard may be empty"
    assert all(s.start < s.end for s in shards)
    assert sum(s.size for s in shards) == total


def sample_ids(count: int, rnd: random.Random) -> list[int]:
    if count <= FULL_CHECK:
        return list(range(count))
    edges = [0, 1, count // 2, count - 2, count - 1]
    return sorted({*edges, *rnd.sample(range(count), FULL_CHECK)})


@FAST
@given(count_plans())
def test_count_mode_covers_and_balances(plan: tuple[int, ShardSpec]) -> None:
    total, spec = plan
    shards = plan_shards(total, spec)
    check_cover(total, shards)
    assert len(shards) == spec.value == shard_count(total, spec)
    sizes = [s.size for s in shards]
    assert max(sizes) - min(sizes) <= 1
    # The larger shards come first (the first total % count get one point more).
    assert sizes == sorted(sizes, reverse=True)
    largest = max(sizes)
    assert sizes.count(largest) == (total % spec.value or spec.value)


@FAST
@given(size_plans())
def test_size_mode_covers_with_equal_shards(plan: tuple[int, ShardSpec]) -> None:
    total, spec = plan
    shards = plan_shards(total, spec)
    check_cover(total, shards)
    assert len(shards) == shard_count(total, spec) == -(-total // spec.value)
    assert len(shards) <= MAX_COUNT
    assert all(s.size == spec.value for s in shards[:-1])
    assert 1 <= shards[-1].size <= spec.value


@FAST
@given(plans, st.randoms(use_true_random=False))
def test_shard_bounds_agrees_with_plan(plan: tuple[int, ShardSpec], rnd: random.Random) -> None:
    total, spec = plan
    shards = plan_shards(total, spec)
    for k in sample_ids(len(shards), rnd):
        assert shard_bounds(total, spec, k) == (shards[k].start, shards[k].end)


@settings(max_examples=30, deadline=None)
@given(plans)
def test_plan_is_deterministic(plan: tuple[int, ShardSpec]) -> None:
    total, spec = plan
    again = ShardSpec.from_dict(spec.to_dict())
    assert again == spec
    assert plan_shards(total, spec) == plan_shards(total, again)


def test_small_plans_exhaustively() -> None:
    """Every (total, count) and (total, size) up to 40, every index checked by enumeration."""
    for total in range(1, 41):
        for value in range(1, total + 1):
            for spec in (ShardSpec("count", value), ShardSpec("size", value)):
                shards = plan_shards(total, spec)
                owners = [s.shard_id for s in shards for _ in range(s.start, s.end)]
                assert owners == sorted(owners)
                assert len(owners) == total
                for s in shards:
                    assert shard_bounds(total, spec, s.shard_id) == (s.start, s.end)


def test_known_plans() -> None:
    assert [(s.start, s.end) for s in plan_shards(10, ShardSpec("count", 3))] == [
        (0, 4),
        (4, 7),
        (7, 10),
    ]
    assert [(s.start, s.end) for s in plan_shards(10, ShardSpec("size", 4))] == [
        (0, 4),
        (4, 8),
        (8, 10),
    ]
    assert [(s.start, s.end) for s in plan_shards(162, ShardSpec("count", 12))][:2] == [
        (0, 14),
        (14, 28),
    ]
    assert shard_bounds(MAX_TOTAL, ShardSpec("count", MAX_COUNT), MAX_COUNT - 1) == (
        MAX_TOTAL - MAX_TOTAL // MAX_COUNT,
        MAX_TOTAL,
    )


@FAST
@given(totals, st.integers(1, 10**13))
def test_more_shards_than_points_is_an_error(total: int, extra: int) -> None:
    with pytest.raises(ValueError):
        plan_shards(total, ShardSpec("count", total + extra))


def test_empty_space_is_an_error() -> None:
    with pytest.raises(ValueError):
        plan_shards(0, ShardSpec("count", 1))


@FAST
@given(plans, st.integers(0, 10**6))
def test_bad_shard_id_is_an_index_error(plan: tuple[int, ShardSpec], beyond: int) -> None:
    total, spec = plan
    count = shard_count(total, spec)
    with pytest.raises(IndexError):
        shard_bounds(total, spec, count + beyond)
    with pytest.raises(IndexError):
        shard_bounds(total, spec, -1 - beyond)


@FAST
@given(count_plans())
def test_spec_round_trips(plan: tuple[int, ShardSpec]) -> None:
    _, spec = plan
    assert ShardSpec.from_dict({"count": spec.value}) == spec
    assert ShardSpec.from_dict({"size": spec.value}) == ShardSpec("size", spec.value)
