"""Sampled designs: the pieces (normal inverse CDF, keyed uniforms and permutations), the
distributions, and the validation of ``sample``."""

from __future__ import annotations

import copy
import json
import math
from statistics import NormalDist
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import PROJECT_ROOT
from chalicelib.model import normal
from chalicelib.model.designs import Choice, Integer, LogUniform, Normal, SampleBlock, Uniform
from chalicelib.model.errors import InvalidRequest
from chalicelib.model.keyed import KeyedPermutation, stream_key, unit
from chalicelib.model.request import Limits, SweepRequest
from chalicelib.model.validation import validate_request
from chalicelib.simulations.declarations import Parameter, simulation
from chalicelib.simulations.registry import REGISTRY

LIMITS = Limits(max_points=10**12, max_shards=10_000, allow_fault_injection=True)
LHS: dict[str, Any] = json.loads((PROJECT_ROOT / "examples" / "lhs.json").read_text())
FAST = settings(max_examples=60, deadline=None)
probabilities = st.floats(min_value=1e-300, max_value=1 - 1e-12, exclude_min=False)


# --- the normal distribution against the standard library's (an independent implementation)


@FAST
@given(probabilities)
def test_ppf_matches_the_standard_library(p: float) -> None:
    expected = NormalDist().inv_cdf(p)
    assert normal.ppf(p) == pytest.approx(expected, rel=1e-13, abs=1e-13 if p > 1e-3 else 0)


def test_ppf_known_values() -> None:
    assert normal.ppf(0.5) == 0.0
    assert normal.ppf(0.975) == pytest.approx(1.959963984540054, rel=1e-15)
    assert normal.ppf(1e-10) == pytest.approx(-6.361340902404056, rel=1e-15)
    with pytest.raises(ValueError):
        normal.ppf(0.0)


@FAST
@given(st.floats(-8, 8), st.floats(0.01, 8), st.floats(1e-9, 1 - 1e-9))
def test_truncated_ppf_stays_inside_and_inverts_the_truncated_cdf(
    a: float, width: float, u: float
) -> None:
    b = a + width
    z = normal.truncated_ppf(u, a, b)
    assert a <= z <= b
    mass = normal.truncated_mass(a, b)
    if mass > 1e-6:  # where the CDF difference keeps its digits
        got = (NormalDist().cdf(z) - NormalDist().cdf(a)) / mass
        assert got == pytest.approx(u, abs=1e-7)


def test_truncated_normal_far_in_a_tail_still_spreads_out() -> None:
    """A domain 6 to 7 sd above the mean: resampling would take ~10^9 draws per value."""
    values = [normal.truncated_ppf(u, 6.0, 7.0) for u in (0.01, 0.5, 0.99)]
    assert 6.0 < values[0] < values[1] < values[2] < 7.0
    assert values[1] == pytest.approx(6.11, abs=0.01)  # most mass sits near the lower end


def test_normal_is_truncated_to_the_domain_with_open_ends() -> None:
    vol = Normal(mean=0.05, sd=0.5, lower=0.0, upper=10.0, open_lower=True)
    assert all(0.0 < vol.value(u) <= 10.0 for u in (1e-16, 1e-9, 0.5, 1 - 1e-16))
    untruncated = Normal(mean=3.0, sd=2.0)
    assert untruncated.value(0.5) == 3.0
    assert untruncated.value(0.8413447460685429) == pytest.approx(5.0, rel=1e-12)


# --- keyed uniforms and permutations ----------------------------------------------------------


@pytest.mark.parametrize("size", [*range(1, 70), 255, 256, 257, 1000, 4095, 4097])
def test_keyed_permutation_is_a_bijection(size: int) -> None:
    perm = KeyedPermutation(stream_key("test", size), size)
    assert sorted(perm(j) for j in range(size)) == list(range(size))


def test_keyed_permutations_depend_on_the_key_and_are_not_the_identity() -> None:
    a = [KeyedPermutation(stream_key("a"), 1000)(j) for j in range(1000)]
    b = [KeyedPermutation(stream_key("b"), 1000)(j) for j in range(1000)]
    assert a != b and a != list(range(1000))
    # Roughly uncorrelated with the index: a permutation that kept order would score 1.
    n = len(a)
    mean = (n - 1) / 2
    cov = sum((j - mean) * (a[j] - mean) for j in range(n)) / n
    assert abs(cov / ((n * n - 1) / 12)) < 0.15


def test_a_permutation_of_ten_million_costs_only_the_indices_asked() -> None:
    perm = KeyedPermutation(stream_key("big"), 10**7)
    picks = [perm(j) for j in range(5_000_000, 5_000_100)]
    assert len(set(picks)) == 100 and all(0 <= p < 10**7 for p in picks)
    with pytest.raises(IndexError):
        perm(10**7)


def test_units_are_inside_the_open_interval_and_uniform_enough() -> None:
    key = stream_key("u")
    values = [unit(key, j) for j in range(20_000)]
    assert all(0.0 < v < 1.0 for v in values)
    counts = [0] * 10
    for v in values:
        counts[int(v * 10)] += 1
    assert all(abs(c - 2000) < 200 for c in counts), counts  # ~4.5 sd


# --- distributions ---------------------------------------------------------------------------


def test_distributions_map_the_unit_interval_onto_their_ranges() -> None:
    assert Uniform(80, 120).value(0.5) == 100.0
    assert LogUniform(0.01, 1.0).value(0.5) == pytest.approx(0.1, rel=1e-12)
    assert [Integer(1, 3).value(u) for u in (0.01, 0.34, 0.67, 0.999)] == [1, 2, 3, 3]
    assert [Choice(("call", "put")).value(u) for u in (0.2, 0.7)] == ["call", "put"]
    widest = Uniform(-1e308, 1e308)
    assert math.isfinite(widest.value(0.9))


# --- validation of ``sample`` -------------------------------------------------------------------


def num(value: object) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    return float(value)


def lhs(**axes: Any) -> dict[str, Any]:
    body = copy.deepcopy(LHS)
    for name, dist in axes.items():
        if dist is None:
            del body["sample"]["axes"][name]
        else:
            body["sample"]["axes"][name] = dist
    return body


def problems(body: Any) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(body, LIMITS)
    return {p.path: p.message for p in caught.value.problems}


def test_the_example_is_the_grid_times_the_block() -> None:
    request = validate_request(LHS, LIMITS)
    space = request.space
    assert space.size == 2 * 100 and space.block == 100
    assert space.columns == ("option", "paths", "spot", "volatility", "rate")
    assert space.point(0)["option"] == "call" and space.point(100)["option"] == "put"
    # Every grid cell sees the same samples.
    for j in (0, 37, 99):
        a, b = space.point(j), space.point(100 + j)
        assert [a[n] for n in ("spot", "volatility", "rate")] == [
            b[n] for n in ("spot", "volatility", "rate")
        ]
    assert SweepRequest.from_dict(request.to_dict()) == request
    assert validate_request(request.to_dict(), None) == request


def test_parameters_may_be_empty_with_a_sample() -> None:
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {},
        "sample": {
            "design": "random",
            "points": 5,
            "axes": {"samples": {"integer": {"low": 10, "high": 20}}},
        },
        "shards": {"count": 2},
    }
    space = validate_request(body, LIMITS).space
    assert space.size == 5
    assert all(10 <= num(space.point(i)["samples"]) <= 20 for i in range(5))


def test_no_axis_and_no_sample_is_a_400() -> None:
    body = copy.deepcopy(LHS)
    del body["sample"]
    body["parameters"] = {}
    assert "at least one axis" in problems(body)["/parameters"]


@pytest.mark.parametrize(
    ("dist", "path", "words"),
    [
        ({"uniform": {"low": 0, "high": 120}}, "/sample/axes/spot/uniform/low", "spot must be > 0"),
        (
            {"uniform": {"low": 120, "high": 80}},
            "/sample/axes/spot/uniform",
            "low must be below high",
        ),
        (
            {"uniform": {"low": 80, "high": 80}},
            "/sample/axes/spot/uniform",
            "low must be below high",
        ),
        ({"loguniform": {"low": 0, "high": 1}}, "/sample/axes/spot/loguniform/low", ""),
        ({"loguniform": {"low": -1, "high": 1}}, "/sample/axes/spot/loguniform/low", ""),
        ({"normal": {"mean": 100, "sd": 0}}, "/sample/axes/spot/normal/sd", ""),
        ({"normal": {"mean": -100, "sd": 1}}, "/sample/axes/spot/normal", "move the mean"),
        ({"integer": {"low": 80, "high": 120}}, "/sample/axes/spot/integer", "integer is for int"),
        ({"choice": {"values": [90, -5]}}, "/sample/axes/spot/choice/values/1", "spot must be > 0"),
        ({"choice": {"values": ["x"]}}, "/sample/axes/spot/choice/values/0", "takes float"),
        ({"choice": {"values": []}}, "/sample/axes/spot/choice/values", ""),
        ({"beta": {"a": 1}}, "/sample/axes/spot/beta", ""),
        ({}, "/sample/axes/spot", ""),
    ],
)
def test_bad_distributions_are_400s_at_their_path(dist: Any, path: str, words: str) -> None:
    found = problems(lhs(spot=dist))
    assert path in found, found
    assert words in found[path]


def test_distributions_must_fit_the_parameter_type() -> None:
    found = problems(
        lhs(
            paths={"uniform": {"low": 10, "high": 20}},
            option={"normal": {"mean": 0, "sd": 1}},
        )
    )
    assert "integer or choice" in found["/sample/axes/paths/uniform"]
    assert "use choice" in found["/sample/axes/option/normal"]


def test_integer_and_choice_fit_their_parameters() -> None:
    body = lhs(
        spot=None,
        paths={"integer": {"low": 100, "high": 200}},
        option={"choice": {"values": ["call", "put"]}},
    )
    del body["parameters"]["option"], body["parameters"]["paths"]
    space = validate_request(body, LIMITS).space
    assert {space.point(i)["option"] for i in range(space.size)} == {"call", "put"}
    assert all(100 <= num(space.point(i)["paths"]) <= 200 for i in range(space.size))


def test_a_parameter_gridded_and_sampled_is_a_400() -> None:
    body = lhs(option={"choice": {"values": ["call"]}})
    assert "'option' is set more than once" in problems(body)["/sample/axes/option"]


def test_an_unknown_sampled_parameter_is_a_400() -> None:
    assert (
        "no parameter 'colour'"
        in problems(lhs(colour={"uniform": {"low": 0, "high": 1}}))["/sample/axes/colour"]
    )


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"design": "sobol"}, "/sample/design"),
        ({"points": 0}, "/sample/points"),
        ({"points": 2.5}, "/sample/points"),
        ({"axes": {}}, "/sample/axes"),
        ({"extra": 1}, "/sample/extra"),
    ],
)
def test_a_malformed_sample_is_a_400(change: dict[str, Any], path: str) -> None:
    body = copy.deepcopy(LHS)
    body["sample"].update(change)
    assert path in problems(body)


def test_a_sample_of_no_axes_says_so() -> None:
    body = copy.deepcopy(LHS)
    body["sample"]["axes"] = {}
    assert problems(body)["/sample/axes"] == "give at least 1 sampled axis"


def test_a_missing_design_is_a_400() -> None:
    body = copy.deepcopy(LHS)
    del body["sample"]["design"]
    assert "/sample/design" in problems(body)


def test_every_problem_of_a_sample_is_named_at_once() -> None:
    body = lhs(
        spot={"uniform": {"low": -1, "high": 120}},
        volatility={"loguniform": {"low": 0.5, "high": 0.1}},
        colour={"uniform": {"low": 0, "high": 1}},
        option={"choice": {"values": ["call"]}},
    )
    body["parameters"]["rate"] = {"values": [0.01]}
    found = problems(body)
    assert {
        "/sample/axes/spot/uniform/low",
        "/sample/axes/volatility/loguniform",
        "/sample/axes/colour",
        "/sample/axes/option",
        "/sample/axes/rate",
    } <= set(found), found


def test_the_point_limit_counts_the_block_and_the_replicates() -> None:
    body = copy.deepcopy(LHS)
    body["replicates"] = 5
    limits = Limits(max_points=999, max_shards=10_000, allow_fault_injection=True)
    with pytest.raises(InvalidRequest) as caught:
        validate_request(body, limits)
    assert "1000 points exceed" in caught.value.problems[0].message
    assert validate_request(body, LIMITS).total_points == 1000


def test_sample_block_rejects_an_index_outside_it() -> None:
    block = SampleBlock("random", 3, ("x",), (Uniform(0, 1),))
    with pytest.raises(IndexError):
        block.units(3)


def test_numbers_beyond_the_float_range_and_malformed_axes_do_not_hide_other_problems() -> None:
    found = problems(
        lhs(
            spot={"uniform": {"low": 10**400, "high": 10**401}},
            rate={"beta": {"a": 1}},
            volatility={"uniform": {"low": 0, "high": 1}},
        )
    )
    assert found["/sample/axes/spot/uniform"] == "numbers must be finite"
    assert "/sample/axes/rate/beta" in found
    assert "volatility must be > 0" in found["/sample/axes/volatility/uniform/low"]


def test_integer_ranges_wider_than_a_float_are_exact() -> None:
    wide = Integer(0, 10**30)
    assert wide.value(1e-300) == 0
    assert wide.value(0.5) == 5 * 10**29
    assert wide.value(math.nextafter(1.0, 0.0)) <= 10**30


def test_a_block_pickles_and_copies_as_its_fields() -> None:
    import pickle

    request = validate_request(LHS, LIMITS)
    again = pickle.loads(pickle.dumps(request))
    assert again == request and again.space.point(7) == request.space.point(7)
    assert copy.deepcopy(request).space.point(3) == request.space.point(3)


DESIGNED = [
    json.loads((PROJECT_ROOT / "examples" / name).read_text())
    for name in ("paired-axes.json", "lhs.json")
]
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 0, -1, 0.0, 1e-320, 1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_any = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for k, v in enumerate(value):
            found += paths_of(v, (*prefix, k))
    return found


DESIGNED_PATHS = [(n, p) for n, body in enumerate(DESIGNED) for p in paths_of(body)]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(DESIGNED_PATHS), json_any)
def test_any_designed_body_is_parsed_or_answered_with_problems(
    where: tuple[int, tuple[Any, ...]], value: Any
) -> None:
    """Replacing any part of the paired or LHS example with any JSON value gives a request
    whose points can all be decoded, or a 400 with problems; never another exception."""
    number, path = where
    body = copy.deepcopy(DESIGNED[number])
    if path:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    else:
        body = value
    try:
        request = validate_request(body, LIMITS)
    except InvalidRequest as error:
        assert error.problems and all(p.path.startswith("/") for p in error.problems)
        return
    space = request.space
    for i in {0, space.size // 2, space.size - 1}:
        point = space.point(i)
        for name, v in point.items():
            param = REGISTRY["option_pricing"].by_name[name]
            assert param.type_problem(v) is None and param.domain_problem(v) is None


def test_a_normal_too_wide_for_a_bounded_domain_is_told_to_narrow() -> None:
    """Almost none of its mass inside volatility's domain (0, 10] because it is spread over
    +-1e10, not because the domain sits in a tail: moving the mean would not help."""
    found = problems(lhs(volatility={"normal": {"mean": 1, "sd": 1e10}}))
    assert "narrow sd, or sample it with uniform" in found["/sample/axes/volatility/normal"]


def test_an_integer_distribution_spans_at_most_2_to_the_53_values() -> None:
    """Each draw is one 53-bit float: over more integers, some could never be drawn (the
    contract says every one of low..high is equally likely)."""
    simulation("test_wide_ints", parameters=[Parameter("n", "int", 0)], metrics=["y"])(
        lambda p, rng: {"y": 0.0}
    )
    try:

        def body(high: int) -> dict[str, Any]:
            axes = {"n": {"integer": {"low": 0, "high": high}}}
            return {
                "simulation": "test_wide_ints",
                "parameters": {},
                "sample": {"design": "random", "points": 3, "axes": axes},
                "shards": {"count": 1},
            }

        validate_request(body(2**53 - 1), None)
        with pytest.raises(InvalidRequest, match="at most 2\\^53 values"):
            validate_request(body(2**53), None)
    finally:
        REGISTRY.pop("test_wide_ints", None)
