"""Request validation: each contract rule, with the JSON pointer a client needs to fix it."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.model.errors import InvalidRequest, Problem
from chalicelib.model.request import Limits
from chalicelib.model.sharding import ShardSpec
from chalicelib.model.validation import SCHEMA_PATH, request_schema, validate_request
from tests.support import CONTRACT_EXAMPLE

LIMITS = Limits(max_points=10**12, max_shards=10_000, allow_fault_injection=True)

Body = dict[str, Any]


def example() -> Body:
    return copy.deepcopy(CONTRACT_EXAMPLE)


def mutate(edit: Callable[[Body], object]) -> Body:
    body = example()
    edit(body)
    return body


def with_params(**axes: Any) -> Body:
    """The example with some axes replaced (None deletes one)."""
    body = example()
    for name, axis in axes.items():
        if axis is None:
            del body["parameters"][name]
        else:
            body["parameters"][name] = axis
    return body


def pi_body(**changes: Any) -> Body:
    body: Body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [1000, 10_000]}},
        "shards": {"count": 2},
    }
    body.update(changes)
    return body


def problems_of(body: Any, limits: Limits | None = LIMITS) -> list[Problem]:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(body, limits)
    error = caught.value
    assert error.status == 400
    assert error.problems, "a 400 names at least one problem"
    for problem in error.problems:
        assert problem.path.startswith("/")
        assert problem.message.strip()
    assert error.message.strip()
    assert "\n" not in error.message
    json.dumps(error.body())
    return error.problems


@dataclass(frozen=True)
class Bad:
    id: str
    body: Any
    path: str
    limits: Limits | None = LIMITS


BAD: list[Bad] = [
    # -- top level
    Bad("unknown-top-level-field", mutate(lambda b: b.update(priority=1)), "/priority"),
    Bad("missing-simulation", mutate(lambda b: b.pop("simulation")), "/simulation"),
    Bad("missing-parameters", mutate(lambda b: b.pop("parameters")), "/parameters"),
    Bad("missing-shards", mutate(lambda b: b.pop("shards")), "/shards"),
    Bad("simulation-not-a-string", mutate(lambda b: b.update(simulation=3)), "/simulation"),
    Bad("unknown-simulation", mutate(lambda b: b.update(simulation="nope")), "/simulation"),
    Bad("body-is-a-list", [example()], "/"),
    Bad("body-is-a-string", json.dumps(example()), "/"),
    Bad("body-is-null", None, "/"),
    Bad("body-is-a-number", 3, "/"),
    # -- parameters
    Bad("parameter-not-taken", with_params(colour={"values": ["red"]}), "/parameters/colour"),
    Bad("param-name-uppercase", with_params(Strike={"values": [90]}), "/parameters/Strike"),
    Bad("param-name-dash", with_params(**{"vol-x": {"values": [0.1]}}), "/parameters/vol-x"),
    Bad("param-name-digit-first", with_params(**{"1x": {"values": [1]}}), "/parameters/1x"),
    Bad("parameters-empty", mutate(lambda b: b.update(parameters={})), "/parameters"),
    Bad("parameters-not-object", mutate(lambda b: b.update(parameters=[])), "/parameters"),
    Bad(
        "axis-two-kinds",
        with_params(option={"values": ["call"], "range": {"start": 0, "stop": 2, "step": 1}}),
        "/parameters/option",
    ),
    Bad("axis-no-kind", with_params(option={}), "/parameters/option"),
    Bad(
        "axis-unknown-kind",
        with_params(option={"choice": ["call"]}),
        "/parameters/option/choice",
    ),
    Bad("axis-not-object", with_params(option=["call", "put"]), "/parameters/option"),
    Bad("values-empty", with_params(option={"values": []}), "/parameters/option/values"),
    Bad(
        "values-duplicate",
        with_params(option={"values": ["call", "put", "call"]}),
        "/parameters/option/values",
    ),
    Bad(
        "values-duplicate-numbers",
        with_params(strike={"values": [90, 90.0]}),
        "/parameters/strike/values",
    ),
    Bad(
        "values-object",
        with_params(option={"values": [{"kind": "call"}]}),
        "/parameters/option/values/0",
    ),
    Bad("values-null", with_params(option={"values": [None]}), "/parameters/option/values/0"),
    Bad("values-not-array", with_params(option={"values": "call"}), "/parameters/option/values"),
    Bad(
        "range-step-zero",
        with_params(strike={"range": {"start": 80, "stop": 121, "step": 0}}),
        "/parameters/strike/range/step",
    ),
    Bad(
        "range-start-float",
        with_params(strike={"range": {"start": 80.5, "stop": 121, "step": 5}}),
        "/parameters/strike/range/start",
    ),
    Bad(
        "range-step-string",
        with_params(strike={"range": {"start": 80, "stop": 121, "step": "5"}}),
        "/parameters/strike/range/step",
    ),
    Bad(
        "range-missing-step",
        with_params(strike={"range": {"start": 80, "stop": 121}}),
        "/parameters/strike/range/step",
    ),
    Bad(
        "range-unknown-key",
        with_params(strike={"range": {"start": 80, "stop": 121, "step": 5, "inclusive": True}}),
        "/parameters/strike/range/inclusive",
    ),
    Bad(
        "range-empty-start-equals-stop",
        with_params(strike={"range": {"start": 80, "stop": 80, "step": 5}}),
        "/parameters/strike/range",
    ),
    Bad(
        "range-empty-wrong-direction",
        with_params(strike={"range": {"start": 121, "stop": 80, "step": 5}}),
        "/parameters/strike/range",
    ),
    Bad(
        "linspace-num-zero",
        with_params(volatility={"linspace": {"start": 0.1, "stop": 0.5, "num": 0}}),
        "/parameters/volatility/linspace/num",
    ),
    Bad(
        "linspace-num-float",
        with_params(volatility={"linspace": {"start": 0.1, "stop": 0.5, "num": 9.5}}),
        "/parameters/volatility/linspace/num",
    ),
    Bad(
        "linspace-missing-stop",
        with_params(volatility={"linspace": {"start": 0.1, "num": 9}}),
        "/parameters/volatility/linspace/stop",
    ),
    Bad(
        "linspace-start-string",
        with_params(volatility={"linspace": {"start": "0.1", "stop": 0.5, "num": 9}}),
        "/parameters/volatility/linspace/start",
    ),
    # -- types and domains of the simulation's parameters
    Bad(
        "volatility-string",
        with_params(volatility={"values": ["x"]}),
        "/parameters/volatility/values/0",
    ),
    Bad(
        "volatility-bool",
        with_params(volatility={"values": [0.2, True]}),
        "/parameters/volatility/values/1",
    ),
    Bad(
        "volatility-zero",
        with_params(volatility={"values": [0.2, 0]}),
        "/parameters/volatility/values/1",
    ),
    Bad(
        "volatility-linspace-from-zero",
        with_params(volatility={"linspace": {"start": 0, "stop": 0.5, "num": 9}}),
        "/parameters/volatility/linspace",
    ),
    Bad(
        "volatility-too-large",
        with_params(volatility={"values": [11]}),
        "/parameters/volatility/values/0",
    ),
    Bad(
        "spot-negative-range",
        with_params(spot={"range": {"start": 50, "stop": -31, "step": -20}}),
        "/parameters/spot/range",
    ),
    Bad(
        "option-straddle",
        with_params(option={"values": ["call", "straddle"]}),
        "/parameters/option/values/1",
    ),
    Bad(
        "option-number",
        with_params(option={"values": ["call", 1]}),
        "/parameters/option/values/1",
    ),
    Bad(
        "paths-linspace",
        with_params(paths={"linspace": {"start": 1000, "stop": 2000, "num": 3}}),
        "/parameters/paths/linspace",
    ),
    Bad("paths-float", with_params(paths={"values": [2000.5]}), "/parameters/paths/values/0"),
    Bad("paths-zero", with_params(paths={"values": [0]}), "/parameters/paths/values/0"),
    Bad(
        "maturity-negative-range",
        with_params(maturity={"range": {"start": 1, "stop": -2, "step": -1}}),
        "/parameters/maturity/range",
    ),
    Bad(
        "pi-missing-samples",
        pi_body(parameters={"seedless": {"values": [1]}}),
        "/parameters",
    ),
    Bad(
        "pi-samples-zero",
        pi_body(parameters={"samples": {"values": [0]}}),
        "/parameters/samples/values/0",
    ),
    # -- non-finite numbers (Python's json accepts NaN and Infinity)
    Bad(
        "nan-in-values",
        with_params(volatility={"values": [0.2, math.nan]}),
        "/parameters/volatility/values/1",
    ),
    Bad(
        "infinity-linspace-stop",
        with_params(volatility={"linspace": {"start": 0.1, "stop": math.inf, "num": 9}}),
        "/parameters/volatility/linspace/stop",
    ),
    Bad(
        "negative-infinity-spot",
        with_params(spot={"values": [-math.inf]}),
        "/parameters/spot/values/0",
    ),
    Bad("nan-seed", mutate(lambda b: b.update(seed=math.nan)), "/seed"),
    # -- integers beyond the float range (Python's json parses them exactly)
    Bad(
        "huge-int-float-param", with_params(spot={"values": [10**400]}), "/parameters/spot/values/0"
    ),
    Bad(
        "huge-int-int-param", with_params(paths={"values": [10**400]}), "/parameters/paths/values/0"
    ),
    Bad(
        "huge-linspace-stop",
        with_params(spot={"linspace": {"start": 1, "stop": 10**400, "num": 2}}),
        "/parameters/spot/linspace",
    ),
    Bad(
        "huge-range-start",
        with_params(strike={"range": {"start": 10**400, "stop": 10**400 + 10, "step": 5}}),
        "/parameters/strike/range",
    ),
    Bad(
        "range-longer-than-ssize-t",
        with_params(strike={"range": {"start": 80, "stop": -(10**30), "step": -1}}),
        "/parameters/strike/range",
    ),
    # -- shards
    Bad(
        "shards-count-and-size",
        mutate(lambda b: b.update(shards={"count": 2, "size": 3})),
        "/shards",
    ),
    Bad("shards-empty", mutate(lambda b: b.update(shards={})), "/shards"),
    Bad("shards-count-zero", mutate(lambda b: b.update(shards={"count": 0})), "/shards/count"),
    Bad("shards-size-negative", mutate(lambda b: b.update(shards={"size": -1})), "/shards/size"),
    Bad("shards-count-float", mutate(lambda b: b.update(shards={"count": 2.5})), "/shards/count"),
    Bad("shards-count-bool", mutate(lambda b: b.update(shards={"count": True})), "/shards/count"),
    Bad("shards-unknown-key", mutate(lambda b: b.update(shards={"parts": 3})), "/shards/parts"),
    Bad(
        "shards-count-above-points",
        mutate(lambda b: b.update(shards={"count": 163}, fail_shards=[])),
        "/shards/count",
    ),
    Bad(
        "shards-size-too-many-shards",
        mutate(lambda b: b.update(shards={"size": 1}, fail_shards=[])),
        "/shards/size",
        Limits(max_points=10**6, max_shards=100, allow_fault_injection=True),
    ),
    Bad(
        "shards-count-above-limit",
        mutate(lambda b: b.update(shards={"count": 150}, fail_shards=[])),
        "/shards/count",
        Limits(max_points=10**6, max_shards=100, allow_fault_injection=True),
    ),
    Bad(
        "too-many-points",
        mutate(lambda b: b.update(shards={"count": 1}, fail_shards=[])),
        "/parameters",
        Limits(max_points=100, max_shards=100, allow_fault_injection=True),
    ),
    # -- seed and label
    Bad("seed-negative", mutate(lambda b: b.update(seed=-1)), "/seed"),
    Bad("seed-float", mutate(lambda b: b.update(seed=1.5)), "/seed"),
    Bad("seed-string", mutate(lambda b: b.update(seed="7")), "/seed"),
    Bad("seed-too-large", mutate(lambda b: b.update(seed=2**64)), "/seed"),
    Bad("label-bad-pattern", mutate(lambda b: b.update(label="vol grid!")), "/label"),
    Bad("label-empty", mutate(lambda b: b.update(label="")), "/label"),
    Bad("label-too-long", mutate(lambda b: b.update(label="x" * 65)), "/label"),
    Bad("label-not-string", mutate(lambda b: b.update(label=7)), "/label"),
    # -- fault injection
    Bad(
        "fail-shards-out-of-range",
        mutate(lambda b: b.update(fail_shards=[3, 12])),
        "/fail_shards/1",
    ),
    Bad("fail-shards-negative", mutate(lambda b: b.update(fail_shards=[-1])), "/fail_shards/0"),
    Bad("fail-shards-duplicate", mutate(lambda b: b.update(fail_shards=[3, 3])), "/fail_shards"),
    Bad("fail-shards-not-list", mutate(lambda b: b.update(fail_shards=3)), "/fail_shards"),
    Bad(
        "fail-shards-not-allowed",
        example(),
        "/fail_shards",
        Limits(max_points=10**6, max_shards=100, allow_fault_injection=False),
    ),
]


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


# --- never a 5xx -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 1, 2**63, -(2**63), 10**400, -(10**400)])
    | st.floats()
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def all_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += all_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for k, v in enumerate(value):
            found += all_paths(v, (*prefix, k))
    return found


EXAMPLE_PATHS = all_paths(CONTRACT_EXAMPLE)


def replace_at(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copied = copy.deepcopy(body)
    target = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copied


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
