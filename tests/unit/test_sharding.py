"""Shard bounds against independent oracles: numpy's ``array_split`` for shards by count,
Python's ``range`` stepping for shards by size, and a walk over every shard for plans too large
to enumerate (contiguous, complete, balanced)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.model.sharding import ShardSpec, points_of, shard_bounds, shard_count

MAX_TOTAL = 10**12
MAX_COUNT = 10_000
# Above this many shards, shard_bounds is walked on a sample of ids (plus both ends).
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


def oracle(total: int, spec: ShardSpec) -> list[tuple[int, int]]:
    """The contract's shards computed another way, for totals small enough to enumerate."""
    if spec.mode == "count":
        parts = np.array_split(np.arange(total), spec.value)  # larger parts first, as contracted
        return [(int(p[0]), int(p[-1]) + 1) for p in parts]
    return [(s, min(s + spec.value, total)) for s in range(0, total, spec.value)]


def test_small_plans_equal_the_oracle_exhaustively() -> None:
    for total in range(1, 61):
        for value in range(1, total + 1):
            for spec in (ShardSpec("count", value), ShardSpec("size", value)):
                expected = oracle(total, spec)
                assert shard_count(total, spec) == len(expected)
                got = [shard_bounds(total, spec, k) for k in range(len(expected))]
                assert got == expected, (total, spec)


@FAST
@given(st.integers(1, 5_000).flatmap(lambda t: st.tuples(st.just(t), st.integers(1, t))))
def test_count_plans_equal_array_split(plan: tuple[int, int]) -> None:
    total, count = plan
    spec = ShardSpec("count", count)
    assert [shard_bounds(total, spec, k) for k in range(count)] == oracle(total, spec)


def walk(total: int, spec: ShardSpec, ids: list[int]) -> list[tuple[int, int]]:
    return [shard_bounds(total, spec, k) for k in ids]


def sample_ids(count: int, rnd: random.Random) -> list[int]:
    if count <= FULL_CHECK:
        return list(range(count))
    edges = [0, 1, count // 2, count - 2, count - 1]
    return sorted({*edges, *rnd.sample(range(count), FULL_CHECK)})


@FAST
@given(count_plans(), st.randoms(use_true_random=False))
def test_count_plans_cover_and_balance(plan: tuple[int, ShardSpec], rnd: random.Random) -> None:
    total, spec = plan
    count = spec.value
    assert shard_count(total, spec) == count
    base, extra = divmod(total, count)
    for k, (start, end) in zip(ids := sample_ids(count, rnd), walk(total, spec, ids), strict=True):
        # sizes differ by at most one, the larger ones first; neighbours touch
        assert end - start == base + (1 if k < extra else 0)
        if k + 1 < count:
            assert shard_bounds(total, spec, k + 1)[0] == end
    assert shard_bounds(total, spec, 0)[0] == 0
    assert shard_bounds(total, spec, count - 1)[1] == total


@FAST
@given(size_plans(), st.randoms(use_true_random=False))
def test_size_plans_cover_with_equal_shards(
    plan: tuple[int, ShardSpec], rnd: random.Random
) -> None:
    total, spec = plan
    count = shard_count(total, spec)
    assert count == len(range(0, total, spec.value)) <= MAX_COUNT
    for k, (start, end) in zip(ids := sample_ids(count, rnd), walk(total, spec, ids), strict=True):
        assert start == k * spec.value
        assert end == min(total, start + spec.value) and end > start
    assert shard_bounds(total, spec, count - 1)[1] == total


def test_known_plans() -> None:
    assert walk(10, ShardSpec("count", 3), [0, 1, 2]) == [(0, 4), (4, 7), (7, 10)]
    assert walk(10, ShardSpec("size", 4), [0, 1, 2]) == [(0, 4), (4, 8), (8, 10)]
    assert walk(162, ShardSpec("count", 12), [0, 1]) == [(0, 14), (14, 28)]
    assert shard_bounds(MAX_TOTAL, ShardSpec("count", MAX_COUNT), MAX_COUNT - 1) == (
        MAX_TOTAL - MAX_TOTAL // MAX_COUNT,
        MAX_TOTAL,
    )


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
@given(plans)
def test_spec_round_trips_through_its_request_form(plan: tuple[int, ShardSpec]) -> None:
    _, spec = plan
    assert ShardSpec.from_dict(spec.to_dict()) == spec


@FAST
@given(plans, st.randoms(use_true_random=False))
def test_points_of_a_set_of_shards_is_the_sum_of_their_bounds(
    plan: tuple[int, ShardSpec], rnd: random.Random
) -> None:
    total, spec = plan
    count = shard_count(total, spec)
    for _ in range(5):
        k = rnd.randrange(0, min(count, 300) + 1)
        ids = sorted(rnd.sample(range(count), k))
        if rnd.random() < 0.3 and count - 1 not in ids:  # the last shard, short in size plans
            ids.append(count - 1)
        expected = sum(end - start for start, end in (shard_bounds(total, spec, i) for i in ids))
        assert points_of(total, spec, ids) == expected
    if count <= 2000:  # every shard: every point
        assert points_of(total, spec, list(range(count))) == total
    with pytest.raises(IndexError):
        points_of(total, spec, [count])
