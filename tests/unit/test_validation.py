"""Request validation: each contract rule, with the JSON pointer a client needs to fix it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.model import ids
from chalicelib.model.errors import InvalidRequest, Problem
from chalicelib.model.request import Limits
from chalicelib.model.sharding import ShardSpec
from chalicelib.model.validation import SCHEMA_PATH, request_schema, validate_request
from tests.support import CONTRACT_EXAMPLE
from tests.support.requests import (
    BAD,
    EXAMPLE_PATHS,
    LIMITS,
    Bad,
    Body,
    example,
    json_values,
    mutate,
    pi_body,
    problems_of,
    replace_at,
    with_params,
)


def test_the_table_is_big_enough() -> None:
    assert len(BAD) >= 30
    assert len({b.id for b in BAD}) == len(BAD)


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_bad_body_names_the_path(bad: Bad) -> None:
    problems = problems_of(bad.body, bad.limits)
    paths = [p.path for p in problems]
    assert bad.path in paths, f"expected {bad.path} among {problems}"


WITHOUT_STAGE_LIMITS = [b for b in BAD if b.limits is LIMITS]


@pytest.mark.parametrize("bad", WITHOUT_STAGE_LIMITS, ids=[b.id for b in WITHOUT_STAGE_LIMITS])
def test_bad_body_is_rejected_by_the_worker_parse_too(bad: Bad) -> None:
    """Without limits (the worker's re-parse) everything but stage limits is still a 400,
    naming the same path."""
    assert bad.path in [p.path for p in problems_of(bad.body, None)]


def test_bad_bodies_were_not_changed() -> None:
    """validate_request never edits the body it was given."""
    body = with_params(option={"values": ["call", "straddle"]})
    before = copy.deepcopy(body)
    problems_of(body)
    assert body == before


def test_several_problems_are_reported_at_once() -> None:
    body = example()
    body["extra"] = True
    body["parameters"]["strike"] = {"range": {"start": 80, "stop": 121, "step": 0}}
    body["parameters"]["volatility"] = {"values": [0.2, -0.1]}
    body["parameters"]["option"] = {"values": ["straddle"]}
    body["parameters"]["colour"] = {"values": ["red"]}
    body["shards"] = {"count": 0}
    body["seed"] = -3
    body["label"] = "not ok"
    paths = {p.path for p in problems_of(body)}
    assert {
        "/extra",
        "/parameters/strike/range/step",
        "/parameters/volatility/values/1",
        "/parameters/option/values/0",
        "/parameters/colour",
        "/shards/count",
        "/seed",
        "/label",
    } <= paths


def test_message_summarises_the_count() -> None:
    body = mutate(lambda b: b.update(seed=-1, label="bad label"))
    with pytest.raises(InvalidRequest) as caught:
        validate_request(body, LIMITS)
    assert "1 more problem" in caught.value.message
    assert caught.value.body()["error"] == "invalid_request"


def test_a_schema_error_in_one_axis_does_not_hide_a_domain_error_in_another() -> None:
    body = with_params(
        strike={"range": {"start": 80, "stop": 121, "step": 0}},
        option={"values": ["straddle"]},
    )
    paths = {p.path for p in problems_of(body)}
    assert {"/parameters/strike/range/step", "/parameters/option/values/0"} <= paths


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EXAMPLE_PATHS), json_values)
def test_any_body_is_parsed_or_answered_with_problems(path: tuple[Any, ...], value: Any) -> None:
    """Replacing any part of a valid body with any JSON value never raises anything but a 400."""
    body = replace_at(CONTRACT_EXAMPLE, path, value)
    for limits in (LIMITS, None):
        try:
            validate_request(body, limits)
        except InvalidRequest as error:
            assert error.problems
            assert all(p.path.startswith("/") and p.message for p in error.problems)


numbers = (
    st.integers()
    | st.sampled_from([10**400, -(10**400), 2**64])
    | st.floats(allow_nan=False, allow_infinity=False)
)
axis_specs = st.one_of(
    st.builds(lambda vs: {"values": vs}, st.lists(numbers | st.text(max_size=4), max_size=3)),
    st.builds(
        lambda a, b, c: {"range": {"start": a, "stop": b, "step": c}},
        st.integers(),
        st.integers(),
        st.integers(),
    ),
    st.builds(
        lambda a, b, n: {"linspace": {"start": a, "stop": b, "num": n}},
        numbers,
        numbers,
        st.integers(-1, 10**20),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["spot", "strike", "rate", "volatility", "maturity", "option", "paths"]),
        axis_specs,
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 10**6),
)
def test_any_axes_are_parsed_or_answered_with_problems(axes: Body, count: int) -> None:
    body = {"simulation": "option_pricing", "parameters": axes, "shards": {"count": count}}
    for limits in (LIMITS, None):
        try:
            request = validate_request(body, limits)
        except InvalidRequest as error:
            assert error.problems
            continue
        assert 1 <= count <= request.total_points


# --- valid bodies ----------------------------------------------------------------------------


def test_contract_example_is_valid(contract_example: Body) -> None:
    request = validate_request(contract_example, LIMITS)
    assert request.simulation == "option_pricing"
    assert request.total_points == 162
    assert request.shard_count == 12
    assert request.shards == ShardSpec("count", 12)
    assert request.seed == 7
    assert request.label == "vol-strike-grid"
    assert request.fail_shards == (3, 5)
    assert request.space.names == ("volatility", "strike", "option", "paths")
    assert request.space.point(0) == {
        "volatility": 0.1,
        "strike": 80,
        "option": "call",
        "paths": 2000,
    }


def test_canonical_form_round_trips(contract_example: Body) -> None:
    request = validate_request(contract_example, LIMITS)
    again = validate_request(json.loads(json.dumps(request.to_dict())), None)
    assert again == request
    assert request.to_dict() == contract_example


def test_monte_carlo_pi_is_valid() -> None:
    request = validate_request(pi_body(), LIMITS)
    assert request.simulation == "monte_carlo_pi"
    assert request.total_points == 2
    assert request.seed == 0
    assert request.label is None
    assert request.fail_shards == ()


def test_shards_by_size(contract_example: Body) -> None:
    contract_example["shards"] = {"size": 50}
    contract_example["fail_shards"] = [3]
    request = validate_request(contract_example, LIMITS)
    assert request.shards == ShardSpec("size", 50)
    assert request.shard_count == 4


def test_seed_defaults_to_zero_and_label_is_optional(contract_example: Body) -> None:
    del contract_example["seed"]
    del contract_example["label"]
    del contract_example["fail_shards"]
    request = validate_request(contract_example, LIMITS)
    assert request.seed == 0
    assert request.label is None
    assert "label" not in request.to_dict()
    assert request.to_dict()["seed"] == 0


def test_defaults_need_no_axis() -> None:
    """Only `paths` is swept; spot, strike, ... take their defaults."""
    body = {
        "simulation": "option_pricing",
        "parameters": {"paths": {"range": {"start": 100, "stop": 1001, "step": 100}}},
        "shards": {"count": 10},
    }
    assert validate_request(body, LIMITS).total_points == 10


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(pi_body(seed=2**64 - 1, label="a" * 64), id="largest-seed-longest-label"),
        pytest.param(pi_body(shards={"count": 2}, fail_shards=[0, 1]), id="every-shard-fails"),
        pytest.param(pi_body(fail_shards=[]), id="no-fail-shards"),
        pytest.param(
            with_params(strike={"range": {"start": 120, "stop": 79, "step": -5}}),
            id="negative-step",
        ),
        pytest.param(
            with_params(volatility={"linspace": {"start": 0.5, "stop": 0.1, "num": 1}}),
            id="single-point-linspace",
        ),
        pytest.param(
            with_params(spot={"values": [100, 100.5]}, option={"values": ["put"]}),
            id="mixed-int-float-values",
        ),
        pytest.param(pi_body(shards={"count": 2}, label="A.b_c-9"), id="label-charset"),
        pytest.param(
            mutate(lambda b: b.update(shards={"count": 162}, fail_shards=[161])),
            id="one-point-per-shard",
        ),
    ],
)
def test_other_valid_bodies(body: Body) -> None:
    validate_request(body, LIMITS)


def test_limits_at_the_boundary_pass(contract_example: Body) -> None:
    exact = Limits(max_points=162, max_shards=12, allow_fault_injection=True)
    assert validate_request(contract_example, exact).total_points == 162


def test_fault_injection_without_fail_shards_is_fine(contract_example: Body) -> None:
    del contract_example["fail_shards"]
    closed = Limits(max_points=10**6, max_shards=100, allow_fault_injection=False)
    assert validate_request(contract_example, closed).fail_shards == ()


def test_worker_parse_ignores_stage_limits(contract_example: Body) -> None:
    contract_example["shards"] = {"size": 1}
    assert validate_request(contract_example, None).shard_count == 162


def test_huge_space_validates_without_materialising() -> None:
    body = {
        "simulation": "option_pricing",
        "parameters": {
            "spot": {"linspace": {"start": 50, "stop": 150, "num": 10_000}},
            "strike": {"range": {"start": 1, "stop": 100_001, "step": 1}},
            "volatility": {"linspace": {"start": 0.05, "stop": 1.0, "num": 500}},
            "option": {"values": ["call", "put"]},
        },
        "shards": {"count": 10_000},
    }
    request = validate_request(body, LIMITS)
    assert request.total_points == 10**12
    assert request.shard_count == 10_000


# --- the schema ------------------------------------------------------------------------------


def test_schema_is_valid_draft4() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(schema)
    assert request_schema() == schema


def test_the_schema_names_parameters_as_ids_does() -> None:
    """The schema cannot import the pattern; this keeps its one copy equal to ``ids.NAME_RE``."""
    assert list(request_schema()["properties"]["parameters"]["patternProperties"]) == [
        ids.NAME_RE.pattern
    ]


def test_schema_accepts_the_contract_example() -> None:
    jsonschema.Draft4Validator(request_schema()).validate(CONTRACT_EXAMPLE)


def test_unique_items_follow_json_equality(contract_example: dict[str, Any]) -> None:
    def values_problems(values: list[Any]) -> list[Problem]:
        body = copy.deepcopy(contract_example)
        body["parameters"]["strike"] = {"values": values}
        try:
            validate_request(body, None)
        except InvalidRequest as exc:
            return exc.problems
        return []

    assert values_problems([80, 90.5, 100]) == []
    dup = values_problems([80, 90, 80.0])
    assert [p.path for p in dup] == ["/parameters/strike/values"]
    assert "more than once" in dup[0].message
    # true is not 1 in JSON: no duplicate, but a type problem
    assert [p.path for p in values_problems([1, True])] == ["/parameters/strike/values/1"]


def test_unique_items_never_compare_every_pair(
    contract_example: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """jsonschema's own check compares all pairs of unsortable (mixed) items: quadratic."""
    import jsonschema._keywords

    def refuse(*_: Any) -> bool:
        raise AssertionError("jsonschema's pairwise uniq was used")

    monkeypatch.setattr(jsonschema._keywords, "uniq", refuse)
    body = copy.deepcopy(contract_example)
    body["parameters"]["option"] = {"values": [i if i % 2 else str(i) for i in range(20_000)]}
    with pytest.raises(InvalidRequest) as caught:
        validate_request(body, None)
    assert all(p.path.startswith("/parameters/option/values/") for p in caught.value.problems[:-1])


def test_problems_are_capped_with_a_count_of_the_rest(contract_example: dict[str, Any]) -> None:
    body = copy.deepcopy(contract_example)
    body["parameters"]["option"] = {"values": [f"v{i}" for i in range(150)]}
    with pytest.raises(InvalidRequest) as caught:
        validate_request(body, None)
    problems = caught.value.problems
    assert len(problems) == 101
    assert problems[-1] == Problem("/", "50 more problems are not listed")
    assert "(and 149 more problems)" in caught.value.message


@pytest.mark.parametrize("field", ["fail_shards", "crash_shards"])
def test_fault_injection_fields_need_a_stage_that_allows_them(field: str) -> None:
    from chalicelib.model.validation import validate_request

    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [10, 20]}},
        "shards": {"count": 2},
        field: [1],
    }
    allowed = validate_request(body, Limits(100, 10, allow_fault_injection=True))
    assert getattr(allowed, field) == (1,)
    with pytest.raises(InvalidRequest) as refused:
        validate_request(body, Limits(100, 10, allow_fault_injection=False))
    assert [p.path for p in refused.value.problems] == [f"/{field}"]
    with pytest.raises(InvalidRequest) as missing:
        validate_request(body | {field: [5]}, Limits(100, 10, allow_fault_injection=True))
    assert [p.path for p in missing.value.problems] == [f"/{field}/0"]


@pytest.mark.parametrize(
    "axes",
    [
        {"spot": {"uniform": {"low": -1, "high": 2}}},  # a domain problem
        {"spot": {"uniform": {"low": 1}}},  # a schema problem
        {"volume": {"uniform": {"low": 1, "high": 2}}},  # no such parameter
    ],
    ids=["domain", "schema", "unknown"],
)
def test_a_problem_in_a_sampled_axis_does_not_hide_the_limits(axes: Body) -> None:
    """The point count is the grid's sizes x the sample's points x replicates, whatever the
    distributions say: the point limit, the shard limit and the fault shards are checked."""
    body = {
        "simulation": "option_pricing",
        "parameters": {"strike": {"linspace": {"start": 1, "stop": 2, "num": 10**9}}},
        "sample": {"design": "random", "points": 10, "axes": axes},
        "replicates": 2,
        "shards": {"count": 10**6},
        "fail_shards": [10**7],
    }
    limits = Limits(max_points=100_000_000, max_shards=100_000, allow_fault_injection=True)
    problems = problems_of(body, limits)
    messages = {p.path: p.message for p in problems}
    assert any(p.startswith(f"/sample/axes/{next(iter(axes))}") for p in messages), messages
    assert messages["/parameters"] == ("20000000000 points exceed this stage's limit of 100000000")
    assert messages["/shards/count"] == "1000000 shards exceed this stage's limit of 100000"
    assert messages["/fail_shards/0"] == "shard 10000000 does not exist (0..999999)"


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (["label"], "abc\n"),
        (["label"], "a" * 64 + "\n"),
        (["parameters", "sc\n"], {"zip": {"spot": [90, 100], "rate": [0.01, 0.02]}}),
        (["parameters", "spot\n"], {"values": [90]}),
        (
            ["sample"],
            {"design": "lhs", "points": 2, "axes": {"spot\n": {"choice": {"values": [1]}}}},
        ),
    ],
    ids=["label", "long label", "zip group", "parameter", "sampled axis"],
)
def test_a_name_or_label_ending_in_a_newline_is_refused(where: list[str], value: Any) -> None:
    """The schema's ``$`` is ECMA 262's, the end of the text; Python's ``re.search`` (what
    jsonschema runs) also matches it before a final newline."""
    body = example()
    target = body
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    paths = [p.path for p in problems_of(body)]
    assert ids.NAME_RE.pattern.endswith("$")
    expected = "/" + "/".join(w.replace("~", "~0").replace("/", "~1") for w in where)
    if where[0] == "sample":
        expected = "/sample/axes/spot\n"
    assert expected in paths, paths


def test_the_schemas_patterns_are_read_as_ecma_262() -> None:
    from chalicelib.model.validation import _python_regex

    assert _python_regex("^[a-z]{1,3}$") == r"^[a-z]{1,3}\Z"
    assert _python_regex(r"^a\$[$]$") == r"^a\$[$]\Z"  # an escaped $ and one in a class stay


@pytest.mark.parametrize(
    ("check", "good"),
    [
        ("is_run_id", "20260101T000000000Z-aaaaaaaaaaaa"),
        ("is_job", "root-1"),
        ("is_dt", "2026-01-01"),
        ("is_name", "spot"),
    ],
)
def test_ids_refuse_a_trailing_newline(check: str, good: str) -> None:
    """With ``match``, Python's ``$`` matched before a final newline: ``GET /sweeps`` took
    ``next=<run id>%0A`` as a paging token."""
    is_valid = getattr(ids, check)
    assert is_valid(good)
    assert not is_valid(good + "\n")


def _values_problems(param: str, values: list[Any]) -> list[str]:
    body = example()
    body["parameters"][param] = {"values": values}
    try:
        validate_request(body, LIMITS)
    except InvalidRequest as exc:
        return [p.path for p in exc.problems]
    return []


def test_values_that_are_one_float64_are_one_point() -> None:
    """A float parameter's values are compared as the function receives them, by the stream
    key's text: 2**53 and 2**53 + 1 are one float64 (one point, twice), 80 and 80.0 too."""
    assert _values_problems("spot", [2**53, 2**53 + 1]) == ["/parameters/spot/values"]
    assert _values_problems("spot", [80, 80.0]) == ["/parameters/spot/values"]
    assert _values_problems("spot", [2**53, 2**53 + 2]) == []


def test_signed_zeros_are_two_points() -> None:
    """``0.0`` and ``-0.0`` are two float64s the function can tell apart, with two stream
    keys (``streams.canonical``): two points, not a repeat."""
    assert _values_problems("rate", [0.0, -0.0]) == []
    body = example()
    body["parameters"]["rate"] = {"values": [0.0, -0.0]}
    request = validate_request(body, LIMITS)
    from chalicelib.simulations.registry import REGISTRY

    sim = REGISTRY["option_pricing"]
    rates = {
        repr(p["rate"])
        for _, p, _ in request.space.iter_points(0, 4, sim.defaults, sim.float_names)
    }
    assert rates == {"0.0", "-0.0"}


def test_zip_and_choice_values_are_compared_as_the_function_receives_them() -> None:
    body = example()
    body["parameters"]["pair"] = {"zip": {"spot": [2**53, 2**53 + 1], "rate": [0.01, 0.01]}}
    assert [p.path for p in problems_of(body)] == ["/parameters/pair/zip"]
    body["parameters"]["pair"] = {"zip": {"spot": [1, 1], "rate": [0.0, -0.0]}}
    validate_request(body, LIMITS)
    del body["parameters"]["pair"]
    body["sample"] = {
        "design": "random",
        "points": 2,
        "axes": {"spot": {"choice": {"values": [2**53, 2**53 + 1]}}},
    }
    assert [p.path for p in problems_of(body)] == ["/sample/axes/spot/choice/values"]
    body["sample"]["axes"] = {"rate": {"choice": {"values": [0.0, -0.0]}}}
    validate_request(body, LIMITS)


# ---------------------------------------------------------------- a simulation's own domains

CHOOSY = "test_choosy"


@pytest.fixture
def choosy() -> Iterator[None]:
    """A simulation whose numeric parameters take listed values only (``choices``), and an
    int parameter with no maximum."""
    from chalicelib.simulations.declarations import Parameter, simulation
    from chalicelib.simulations.registry import REGISTRY

    params = [
        Parameter("n", "int", 1, choices=(1, 2, 3, 5, 8)),
        Parameter("x", "float", 0.5, choices=(0.5, 0.7, 1.0)),
        Parameter("big", "int", 0),
        Parameter("wide", "float", 0.0),
    ]
    simulation(CHOOSY, parameters=params, metrics=["y"])(lambda p, rng: {"y": 0.0})
    yield
    REGISTRY.pop(CHOOSY, None)


def choosy_problems(parameters: Body, sample: Body | None = None) -> list[tuple[str, str]]:
    body: Body = {"simulation": CHOOSY, "parameters": parameters, "shards": {"count": 1}}
    if sample is not None:
        body["sample"] = sample
    try:
        validate_request(body, None)
    except InvalidRequest as exc:
        return [(p.path, p.message) for p in exc.problems]
    return []


@pytest.mark.usefixtures("choosy")
def test_a_parameter_with_choices_gets_only_its_choices_from_any_axis() -> None:
    """Every value an axis gives is checked against the choices, not only its ends: a range
    of 1..5 has both ends among n's choices and 4 between them."""
    assert choosy_problems({"n": {"range": {"start": 1, "stop": 4, "step": 1}}}) == []
    assert choosy_problems({"n": {"range": {"start": 2, "stop": 9, "step": 3}}}) == []
    [(path, message)] = choosy_problems({"n": {"range": {"start": 1, "stop": 6, "step": 1}}})
    assert (path, message) == ("/parameters/n/range", "n must be one of [1, 2, 3, 5, 8], got 4")
    [(path, message)] = choosy_problems({"n": {"range": {"start": 1, "stop": 9, "step": 1}}})
    assert path == "/parameters/n/range"
    assert message.startswith("n must be one of [1, 2, 3, 5, 8]; this range gives 8 values")
    [(path, message)] = choosy_problems({"x": {"linspace": {"start": 0.5, "stop": 1.0, "num": 3}}})
    assert path == "/parameters/x/linspace" and "got 0.75" in message
    assert choosy_problems({"x": {"linspace": {"start": 0.5, "stop": 1.0, "num": 2}}}) == []


@pytest.mark.usefixtures("choosy")
def test_a_parameter_with_choices_is_sampled_with_choice_only() -> None:
    sample = {"design": "random", "points": 4}
    found = choosy_problems(
        {},
        sample
        | {
            "axes": {
                "n": {"integer": {"low": 1, "high": 5}},
                "x": {"uniform": {"low": 0.5, "high": 1.0}},
            }
        },
    )
    assert [path for path, _ in found] == ["/sample/axes/n/integer", "/sample/axes/x/uniform"]
    assert all("sample it with choice" in message for _, message in found)
    assert choosy_problems({}, sample | {"axes": {"n": {"choice": {"values": [1, 5]}}}}) == []


@pytest.mark.usefixtures("choosy")
def test_an_int_parameter_takes_64_bit_values_and_a_linspace_finite_points() -> None:
    """The typed views read an int parameter as BIGINT (2**70 failed the run's whole view);
    a linspace whose span overflows a float gave inf and nan points."""
    [(path, message)] = choosy_problems({"big": {"values": [2**63 - 1, 2**63]}})
    assert path == "/parameters/big/values/1" and "must fit in 64 bits" in message
    assert choosy_problems({"big": {"values": [-(2**63), 2**63 - 1]}}) == []
    wide = {"linspace": {"start": -1e308, "stop": 1e308, "num": 5}}
    [(path, message)] = choosy_problems({"wide": wide})
    assert path == "/parameters/wide/linspace" and "more than a float holds" in message
    assert choosy_problems({"wide": {"linspace": {"start": -1e307, "stop": 1e307, "num": 5}}}) == []


@pytest.mark.parametrize(
    ("axis", "kind", "items"),
    [
        ({"range": {"start": 2**53, "stop": 2**53 + 3, "step": 1}}, "range", (0, 1)),
        ({"range": {"start": 2**53 + 3, "stop": 2**53 - 1, "step": -1}}, "range", (2, 3)),
        ({"linspace": {"start": 1, "stop": 1.0000000000000004, "num": 5}}, "linspace", (0, 1)),
        ({"linspace": {"start": 7.5, "stop": 7.5, "num": 3}}, "linspace", (0, 1)),
    ],
)
def test_a_range_or_linspace_giving_one_float_twice_is_refused(
    axis: Body, kind: str, items: tuple[int, int]
) -> None:
    """As a ``values`` axis may not: neighbouring points that round to one float64 are one
    point, evaluated twice under one stream key (the results held two equal rows)."""
    [problem] = problems_of(with_params(spot=axis), None)
    assert problem.path == f"/parameters/spot/{kind}"
    assert f"one point twice (items {items[0]} and {items[1]})" in problem.message


@pytest.mark.parametrize(
    "axis",
    [
        {"range": {"start": 2**53 - 4, "stop": 2**53 + 1, "step": 1}},  # exact up to 2**53
        {"range": {"start": 2**53, "stop": 2**53 + 9, "step": 2}},  # even: every one a float
        {"linspace": {"start": 1, "stop": 1.0000000000000004, "num": 2}},
        {"linspace": {"start": 0.1, "stop": 0.5, "num": 9}},
    ],
)
def test_a_range_or_linspace_of_distinct_floats_is_accepted(axis: Body) -> None:
    body = with_params(spot=axis)
    validate_request(body, None)
