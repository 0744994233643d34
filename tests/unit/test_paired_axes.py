"""Paired axes (``zip``): one factor whose members move together, and every way to get one
wrong answered with a 400 naming each problem."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest

from chalicelib.config import PROJECT_ROOT
from chalicelib.model.errors import InvalidRequest
from chalicelib.model.request import Limits, SweepRequest
from chalicelib.model.validation import validate_request

LIMITS = Limits(max_points=10**12, max_shards=10_000, allow_fault_injection=True)
PAIRED: dict[str, Any] = json.loads((PROJECT_ROOT / "examples" / "paired-axes.json").read_text())


def paired(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(PAIRED)
    for name, axis in changes.items():
        if axis is None:
            del body["parameters"][name]
        else:
            body["parameters"][name] = axis
    return body


def problems(body: Any) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(body, LIMITS)
    return {p.path: p.message for p in caught.value.problems}


def test_the_example_is_the_product_of_the_pairs_and_the_other_axes() -> None:
    request = validate_request(PAIRED, LIMITS)
    space = request.space
    pairs = list(zip([90, 110, 130], [0.01, 0.02, 0.03], strict=True))
    expected = [
        {"spot": s, "rate": r, "option": o, "paths": 2000}
        for (s, r), o in itertools.product(pairs, ["call", "put"])
    ]
    assert space.size == request.total_points == 6
    assert space.names == ("scenario", "option", "paths")
    assert space.columns == ("spot", "rate", "option", "paths")
    assert [space.point(i) for i in range(6)] == expected
    assert [p for _, p, _ in space.iter_points(0, 6)] == expected
    assert [p for _, p, _ in space.iter_points(3, 5)] == expected[3:5]


def test_a_paired_axis_combines_in_the_order_listed() -> None:
    body = paired()
    body["parameters"] = {"option": body["parameters"]["option"], **body["parameters"]}
    space = validate_request(body, LIMITS).space
    assert [(p["option"], p["spot"]) for _, p, _ in space.iter_points(0, 6)] == [
        ("call", 90),
        ("call", 110),
        ("call", 130),
        ("put", 90),
        ("put", 110),
        ("put", 130),
    ]


def test_the_canonical_form_round_trips_and_the_worker_accepts_it() -> None:
    request = validate_request(PAIRED, LIMITS)
    assert request.to_dict()["parameters"]["scenario"] == PAIRED["parameters"]["scenario"]
    assert SweepRequest.from_dict(request.to_dict()) == request
    assert validate_request(request.to_dict(), None) == request


def test_unequal_lengths_are_a_400() -> None:
    found = problems(paired(scenario={"zip": {"spot": [90, 110], "rate": [0.01, 0.02, 0.03]}}))
    assert "spot 2, rate 3" in found["/parameters/scenario/zip"]


def test_a_member_that_is_not_a_parameter_is_a_400() -> None:
    found = problems(paired(scenario={"zip": {"spot": [90], "colour": ["red"]}}))
    assert "no parameter 'colour'" in found["/parameters/scenario/zip/colour"]


def test_a_member_named_twice_in_the_request_is_a_400() -> None:
    twice_axis = problems(paired(spot={"values": [100]}))
    assert "'spot' is set more than once" in twice_axis["/parameters/spot"]
    two_groups = paired(other={"zip": {"spot": [1, 2], "strike": [3, 4]}})
    assert "/parameters/scenario/zip/spot" in problems(two_groups)["/parameters/other/zip/spot"]
    body = paired()
    body["sample"] = {
        "design": "random",
        "points": 4,
        "axes": {"rate": {"uniform": {"low": 0, "high": 0.1}}},
    }
    assert "set more than once" in problems(body)["/sample/axes/rate"]


def test_a_group_named_like_a_parameter_is_a_400() -> None:
    body = paired(scenario=None, strike={"zip": {"spot": [90, 110], "rate": [0.01, 0.02]}})
    assert "needs a name of its own" in problems(body)["/parameters/strike"]


def test_member_values_are_checked_like_values() -> None:
    found = problems(
        paired(
            scenario={"zip": {"spot": [90, -1, "x"], "option": ["call", "put", "swap"]}},
            option=None,
        )
    )
    assert "spot must be > 0" in found["/parameters/scenario/zip/spot/1"]
    assert "takes float values" in found["/parameters/scenario/zip/spot/2"]
    assert "must be one of" in found["/parameters/scenario/zip/option/2"]


def test_a_member_may_repeat_a_value_but_a_point_may_not_repeat() -> None:
    body = paired(scenario={"zip": {"spot": [100, 100], "rate": [0.01, 0.03]}})
    space = validate_request(body, LIMITS).space
    assert [(p["spot"], p["rate"]) for _, p, _ in space.iter_points(0, 4)] == [
        (100, 0.01),
        (100, 0.01),
        (100, 0.03),
        (100, 0.03),
    ]
    repeated = paired(scenario={"zip": {"spot": [100, 100.0], "rate": [0.01, 0.01]}})
    assert "point 1 repeats point 0" in problems(repeated)["/parameters/scenario/zip"]


def test_every_problem_is_named_at_once() -> None:
    body = paired(
        scenario={"zip": {"spot": [90, 110], "rate": [0.01, 2.0, 0.03], "colour": [1, 2, 3]}},
        strike={"zip": {"maturity": [1, 2], "rate": [0.01, 0.02]}},
    )
    found = problems(body)
    assert {
        "/parameters/scenario/zip",
        "/parameters/scenario/zip/rate/1",
        "/parameters/scenario/zip/colour",
        "/parameters/strike",
        "/parameters/strike/zip/rate",
    } <= set(found)


@pytest.mark.parametrize(
    "axis",
    [
        {"zip": {"spot": [90, 110]}},  # one member pairs nothing
        {"zip": {}},
        {"zip": {"spot": [], "rate": []}},
        {"zip": {"Spot": [90], "rate": [0.01]}},
        {"zip": {"spot": 90, "rate": 0.01}},
    ],
)
def test_malformed_pairs_are_schema_400s(axis: dict[str, Any]) -> None:
    found = problems(paired(scenario=axis))
    assert any(path.startswith("/parameters/scenario") for path in found), found


@pytest.mark.parametrize("members", [{"spot": [90, 110]}, {}])
def test_a_zip_of_fewer_than_two_members_says_so(members: dict[str, Any]) -> None:
    found = problems(paired(scenario={"zip": members}))
    assert found["/parameters/scenario/zip"] == "a zip pairs at least 2 parameters"


def test_too_many_axes_or_members_say_how_many_are_allowed() -> None:
    names = [f"p{k}" for k in range(33)]
    assert problems(paired(scenario={"zip": {n: [1] for n in names}}))[
        "/parameters/scenario/zip"
    ] == ("a zip pairs at most 32 parameters")
    body = paired(**{n: {"values": [1]} for n in names})
    assert problems(body)["/parameters"] == "give at most 32 axes"
