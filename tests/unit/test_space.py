"""The parameter space: point order, exact inverse, odometer iteration, numpy linspace values."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from chalicelib.model.space import (
    Axis,
    LinspaceAxis,
    ParameterSpace,
    RangeAxis,
    ValuesAxis,
    axis_from_dict,
)

FAST = settings(max_examples=80, deadline=None)

names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
# Well-scaled floats: no overflow in stop - start (see test_linspace_overflow_note).
finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    finite,
    st.text(max_size=5),
    st.booleans(),
)


def _distinct_key(v: Any) -> tuple[str, Any]:
    """Values that the schema's uniqueItems would call equal (1 == 1.0) share a key."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int | float):
        return ("number", float(v))
    return ("str", v)


values_axes = st.lists(scalars, min_size=1, max_size=6, unique_by=_distinct_key).map(
    lambda vs: ValuesAxis(tuple(vs))
)


@st.composite
def range_axes(draw: st.DrawFn) -> RangeAxis:
    start = draw(st.integers(-1000, 1000))
    step = draw(st.integers(-50, 50).filter(lambda s: s != 0))
    size = draw(st.integers(1, 8))
    stop = start + step * size - draw(st.integers(0, abs(step) - 1)) * (1 if step > 0 else -1)
    axis = RangeAxis(start, stop, step)
    assert axis.size == size
    return axis


@st.composite
def linspace_axes(draw: st.DrawFn) -> LinspaceAxis:
    start, stop = draw(finite), draw(finite)
    num = draw(st.integers(1, 12))
    axis = LinspaceAxis(start, stop, num)
    # A grid whose values collide (a step below one ulp) has no exact inverse to test.
    assume(len({axis.value(k) for k in range(num)}) == num)
    return axis


axes = st.one_of(values_axes, range_axes(), linspace_axes())


@st.composite
def spaces(draw: st.DrawFn, max_axes: int = 4) -> ParameterSpace:
    axis_names = draw(st.lists(names, min_size=1, max_size=max_axes, unique=True))
    built: list[Axis] = [draw(axes) for _ in axis_names]
    return ParameterSpace(tuple(axis_names), tuple(built))


def example_space(example: dict[str, Any]) -> ParameterSpace:
    return ParameterSpace.from_request(example["parameters"])


# --- order -----------------------------------------------------------------------------------


def test_contract_example_order(contract_example: dict[str, Any]) -> None:
    space = example_space(contract_example)
    assert space.names == ("volatility", "strike", "option", "paths")
    assert space.size == 162
    assert space.point(0) == {"volatility": 0.1, "strike": 80, "option": "call", "paths": 2000}
    assert space.point(1) == {"volatility": 0.1, "strike": 80, "option": "put", "paths": 2000}
    assert space.point(2) == {"volatility": 0.1, "strike": 85, "option": "call", "paths": 2000}
    # The first axis changes once every 9 strikes * 2 options * 1 path count points.
    assert space.point(18)["volatility"] == 0.15000000000000002
    assert space.point(161) == {"volatility": 0.5, "strike": 120, "option": "put", "paths": 2000}
    with pytest.raises(IndexError):
        space.point(162)
    with pytest.raises(IndexError):
        space.point(-1)


def test_contract_example_is_the_cartesian_product(contract_example: dict[str, Any]) -> None:
    """The whole order equals itertools.product of the axes (last axis fastest)."""
    import itertools

    space = example_space(contract_example)
    columns = [[a.coordinates(k)[0] for k in range(a.size)] for a in space.axes]
    expected = [dict(zip(space.names, combo, strict=True)) for combo in itertools.product(*columns)]
    assert [space.point(i) for i in range(space.size)] == expected
    assert [p for _, p, _ in space.iter_points(0, space.size)] == expected


@FAST
@given(spaces())
def test_size_is_the_product_of_axis_sizes(space: ParameterSpace) -> None:
    assert space.size == math.prod(a.size for a in space.axes)


# --- decoding against an independent oracle ----------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(spaces(max_axes=3))
def test_every_point_of_small_spaces_is_the_product_order(space: ParameterSpace) -> None:
    """point(i) and iteration equal itertools.product of the axes' values, last axis fastest."""
    import itertools

    assume(space.size <= 2000)
    columns = [[a.coordinates(k)[0] for k in range(a.size)] for a in space.axes]
    expected = [dict(zip(space.names, combo, strict=True)) for combo in itertools.product(*columns)]
    assert [space.point(i) for i in range(space.size)] == expected
    assert [p for _, p, _ in space.iter_points(0, space.size)] == expected


# --- iteration -------------------------------------------------------------------------------


@FAST
@given(spaces(), st.data())
def test_iter_points_equals_point_by_point(space: ParameterSpace, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, space.size - 1))
    end = data.draw(st.integers(start, min(space.size, start + 300)))
    assert list(space.iter_points(start, end)) == [
        (i, space.point(i), 0) for i in range(start, end)
    ]


def test_iter_points_empty_range(contract_example: dict[str, Any]) -> None:
    space = example_space(contract_example)
    assert list(space.iter_points(7, 7)) == []
    assert list(space.iter_points(9, 3)) == []


# --- linspace --------------------------------------------------------------------------------

any_finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(any_finite, any_finite, st.integers(1, 200))
@example(0.1, 0.5, 9)
@example(0.0, 1e-323, 5)  # the step underflows to 0: numpy scales k / (num - 1) instead
@example(5e-324, 1.5e-323, 5)
@example(-0.0, -0.0, 3)
@example(-0.0, -1.0, 1)  # one point: numpy's 0 * span + start keeps the negative zero
@example(-8e307, 8e307, 7)  # a span near the largest float
def test_linspace_matches_numpy_exactly(start: float, stop: float, num: int) -> None:
    assume(math.isfinite(stop - start))  # numpy itself yields NaN/inf when the span overflows
    axis = LinspaceAxis(start, stop, num)
    ours = [axis.value(k) for k in range(num)]
    with np.errstate(over="ignore", invalid="ignore"):
        theirs = np.linspace(start, stop, num).tolist()
    assert ours == theirs
    assert [math.copysign(1, v) for v in ours] == [math.copysign(1, v) for v in theirs]
    assert ours[0] == start
    if num > 1:
        assert ours[-1] == stop


@given(st.integers(2, 10**6))
@settings(max_examples=30, deadline=None)
def test_linspace_ends_are_exact(num: int) -> None:
    for start, stop in [(0.1, 0.5), (0.5, 0.1), (-3.3, 7.7), (1e-9, 1e9), (0.3, 0.3)]:
        axis = LinspaceAxis(start, stop, num)
        assert axis.value(0) == start
        assert axis.value(num - 1) == stop


def test_linspace_from_request_takes_integer_ends() -> None:
    axis = axis_from_dict({"linspace": {"start": 1, "stop": 3, "num": 5}})
    assert isinstance(axis, LinspaceAxis)
    assert [axis.value(k) for k in range(axis.size)] == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert all(type(axis.value(k)) is float for k in range(axis.size))


def test_single_point_linspace_is_its_start() -> None:
    axis = LinspaceAxis(0.25, 9.0, 1)
    assert axis.size == 1
    assert axis.value(0) == 0.25 == np.linspace(0.25, 9.0, 1)[0]


# --- ranges ----------------------------------------------------------------------------------


@FAST
@given(st.integers(-500, 500), st.integers(-500, 500), st.integers(-40, 40).filter(bool))
def test_range_axis_is_python_range(start: int, stop: int, step: int) -> None:
    axis = RangeAxis(start, stop, step)
    expected = list(range(start, stop, step))
    assert axis.size == len(expected)
    assert [axis.value(k) for k in range(axis.size)] == expected
    if expected:
        low, high = axis.bounds()
        assert low == min(expected)
        assert high == max(expected)


# --- huge spaces -----------------------------------------------------------------------------


def huge_space() -> ParameterSpace:
    return ParameterSpace.from_request(
        {
            "spot": {"linspace": {"start": 50, "stop": 150, "num": 10_000}},
            "strike": {"range": {"start": 100_000, "stop": 0, "step": -1}},
            "volatility": {"linspace": {"start": 0.05, "stop": 1.0, "num": 1_000}},
            "option": {"values": ["call", "put"]},
            "maturity": {"values": [0.25, 0.5, 0.75, 1.0, 2.0]},
        }
    )


def test_trillion_point_space_decodes_without_materialising() -> None:
    space = huge_space()
    assert space.size == 10_000 * 100_000 * 1_000 * 2 * 5 == 10**13
    tracemalloc.start()
    try:
        last = space.point(space.size - 1)
        near_end = list(space.iter_points(space.size - 3, space.size))
        middle = space.point(10**12 - 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    assert last == {"spot": 150.0, "strike": 1, "volatility": 1.0, "option": "put", "maturity": 2.0}
    assert near_end[-1] == (space.size - 1, last, 0)
    # 10**12 - 1 in the radices (10_000, 100_000, 1_000, 2, 5) has digits 999, 99_999, 999, 1, 4
    spot = float(np.linspace(50, 150, 10_000)[999])
    assert middle == {
        "spot": spot,
        "strike": 1,
        "volatility": 1.0,
        "option": "put",
        "maturity": 2.0,
    }
    assert space.point(0) == {
        "spot": 50.0,
        "strike": 100_000,
        "volatility": 0.05,
        "option": "call",
        "maturity": 0.25,
    }


def test_exactly_ten_to_the_twelve_points() -> None:
    space = ParameterSpace.from_request(
        {
            "a": {"range": {"start": 0, "stop": 10**6, "step": 1}},
            "b": {"range": {"start": 0, "stop": -(10**6), "step": -1}},
        }
    )
    assert space.size == 10**12
    assert space.point(10**12 - 1) == {"a": 10**6 - 1, "b": -(10**6) + 1}
    assert space.point(123_456_789_012) == {"a": 123_456, "b": -789_012}


def test_to_dict_round_trips(contract_example: dict[str, Any]) -> None:
    space = example_space(contract_example)
    again = ParameterSpace.from_request(space.to_dict())
    assert again == space
    assert [again.point(i) for i in range(again.size)] == [space.point(i) for i in range(162)]
