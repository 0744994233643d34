"""Request bodies the validation and gateway-model tests share: the table of bad bodies (each
with the JSON pointer a client needs to fix it) and generators of arbitrary JSON at any path."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st

from chalicelib.model.errors import InvalidRequest, Problem
from chalicelib.model.request import Limits
from chalicelib.model.validation import validate_request
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
