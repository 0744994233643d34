"""Properties every space keeps, whatever its design: grids with paired axes, random and
Latin-hypercube blocks, replicates. Bodies are generated and go through the real validator, so
what is checked is what a request gets.

- point i computed from i equals iterating, and any sharding covers every point exactly once;
- LHS puts exactly one point in each of the N strata of each axis, uniformly placed within;
- every value lies in its distribution's range and in the parameter's domain;
- a block's points depend on (seed, block index, design) only: not on the grid cell, and for
  ``random`` not on N; the same request gives the same points in another process.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import PROJECT_ROOT
from chalicelib.execution import columns
from chalicelib.execution.columns import column_keys, format_value, param_strings
from chalicelib.model.designs import Choice, Integer, LogUniform, Normal, Uniform
from chalicelib.model.sharding import ShardSpec, shard_bounds, shard_count
from chalicelib.model.space import ParameterSpace
from chalicelib.model.validation import validate_request
from chalicelib.simulations.batches import PointBatches
from chalicelib.simulations.declarations import PointStreams
from chalicelib.simulations.registry import REGISTRY

FAST = settings(max_examples=60, deadline=None)
OPTION = REGISTRY["option_pricing"]

# Distributions for option_pricing's parameters, each inside the parameter's domain.
DISTRIBUTIONS: dict[str, list[dict[str, Any]]] = {
    "spot": [
        {"uniform": {"low": 50, "high": 150}},
        {"loguniform": {"low": 1, "high": 1000}},
        {"normal": {"mean": 100, "sd": 30}},
        {"choice": {"values": [90, 100.5, 110]}},
    ],
    "volatility": [
        {"uniform": {"low": 0.05, "high": 10}},
        {"loguniform": {"low": 1e-4, "high": 1}},
        {"normal": {"mean": 0.0, "sd": 2.0}},  # truncated to (0, 10]
    ],
    "rate": [
        {"uniform": {"low": -1, "high": 1}},
        {"normal": {"mean": 0.9, "sd": 0.5}},  # truncated to [-1, 1]
    ],
    "paths": [{"integer": {"low": 1, "high": 7}}, {"integer": {"low": 100, "high": 100_000}}],
    "option": [{"choice": {"values": ["call", "put"]}}, {"choice": {"values": ["put"]}}],
}


@st.composite
def bodies(draw: st.DrawFn, design: str | None = None) -> dict[str, Any]:
    least = 1 if design else 0
    names = st.sampled_from(sorted(DISTRIBUTIONS))
    sampled = draw(st.lists(names, unique=True, min_size=least, max_size=4))
    parameters: dict[str, Any] = {}
    if draw(st.booleans()):
        n = draw(st.integers(1, 3))
        parameters["pair"] = {
            "zip": {"strike": [80 + k for k in range(n)], "maturity": [1 + k for k in range(n)]}
        }
    if "option" not in sampled and draw(st.booleans()):
        parameters["option"] = {"values": draw(st.sampled_from([["call"], ["call", "put"]]))}
    # Linspace and range axes (decoded whole, once a process: ``columns._whole_axis``), with
    # ends that are equal as numbers and differ as values: -0.0 and 0.0, 0 and 0.0.
    if "rate" not in sampled and draw(st.booleans()):
        ends = [(-0.25, -0.0), (-0.25, 0.0), (-0.0, 1), (0.0, 1), (0, 1), (0.01, 1)]
        start, stop = draw(st.sampled_from(ends))
        num = draw(st.integers(1, 4))
        parameters["rate"] = {"linspace": {"start": start, "stop": stop, "num": num}}
    if "paths" not in sampled and draw(st.booleans()):
        first = draw(st.integers(1, 3))
        stop = first + draw(st.integers(1, 4))
        parameters["paths"] = {"range": {"start": first, "stop": stop, "step": 1}}
    if not sampled and not parameters:
        parameters["option"] = {"values": ["call", "put"]}
    body: dict[str, Any] = {
        "simulation": "option_pricing",
        "parameters": parameters,
        "seed": draw(st.integers(0, 2**64 - 1)),
    }
    if sampled:
        body["sample"] = {
            "design": design or draw(st.sampled_from(["random", "lhs"])),
            "points": draw(st.integers(1, 40)),
            "axes": {n: draw(st.sampled_from(DISTRIBUTIONS[n])) for n in sampled},
        }
    replicates = draw(st.integers(1, 3))
    if replicates > 1 or draw(st.booleans()):
        body["replicates"] = replicates
    body["shards"] = {"count": 1}
    return body


def num(value: object) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    return float(value)


def space_of(body: dict[str, Any]) -> ParameterSpace:
    return validate_request(body, None).space


def direct(space: ParameterSpace) -> list[tuple[int, dict[str, Any], int]]:
    return [(i, space.point(i), space.replicate(i)) for i in range(space.size)]


@FAST
@given(bodies(), st.data())
def test_every_design_is_sharded_exactly_once(body: dict[str, Any], data: st.DataObject) -> None:
    space = space_of(body)
    expected = direct(space)
    assert [p for p in space.iter_points(0, space.size)] == expected
    by_count = data.draw(st.booleans())
    value = data.draw(st.integers(1, space.size))
    spec = ShardSpec("count", value) if by_count else ShardSpec("size", value)
    seen: list[tuple[int, dict[str, Any], int]] = []
    for k in range(shard_count(space.size, spec)):
        seen.extend(space.iter_points(*shard_bounds(space.size, spec, k)))
    assert seen == expected  # each point once, in order, equal to decoding it from i


@FAST
@given(bodies(), st.data())
def test_point_i_from_i_equals_iterating_from_anywhere(
    body: dict[str, Any], data: st.DataObject
) -> None:
    space = space_of(body)
    start = data.draw(st.integers(0, space.size - 1))
    end = data.draw(st.integers(start, space.size))
    assert list(space.iter_points(start, end)) == direct(space)[start:end]


@FAST
@given(bodies(), st.data())
def test_the_workers_parameter_strings_are_each_points_values(
    body: dict[str, Any], data: st.DataObject
) -> None:
    space = space_of(body)
    start = data.draw(st.integers(0, space.size - 1))
    end = data.draw(st.integers(start, space.size))
    expected = [
        format_value(p[c]) for _, p, _ in space.iter_points(start, end) for c in space.columns
    ]
    for few in (0, space.size):  # the whole-shard arrays, then point by point
        with mock.patch.object(columns, "FEW_POINTS", few):
            assert param_strings(space, start, end).to_pylist() == expected


@FAST
@given(bodies(), st.data())
def test_the_workers_stream_keys_are_each_points_key(
    body: dict[str, Any], data: st.DataObject
) -> None:
    """Keys made from a group's columns (``column_keys``: computed from the indices, a float
    parameter's ints made floats) are each point's own key from its effective parameters
    (``PointStreams.key``), for the whole group and for the points a reuse plan leaves to
    evaluate (``keep``), by columns and point by point."""
    space = space_of(body)
    start = data.draw(st.integers(0, space.size - 1))
    end = data.draw(st.integers(start, space.size))
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=end - start, max_size=end - start)))
    streams = PointStreams(OPTION, body["seed"])
    points = list(space.iter_points(start, end, OPTION.defaults, OPTION.float_names))
    expected = [streams.key(p, r) for _, p, r in points]
    batches = PointBatches(OPTION, body["seed"])
    for few in (0, space.size):  # by columns, then point by point
        with mock.patch.object(columns, "FEW_POINTS", few):
            assert column_keys(batches, space, start, end) == expected
            kept = column_keys(batches, space, start, end, keep=keep)
            assert kept == [k for k, chosen in zip(expected, keep.tolist(), strict=True) if chosen]


@FAST
@given(bodies())
def test_replicates_are_the_last_factor(body: dict[str, Any]) -> None:
    space = space_of(body)
    k = space.replicates
    for i in range(space.size):
        assert space.replicate(i) == i % k
        assert space.point(i) == space.point(i - i % k)  # replicates share their values


@FAST
@given(bodies(design="lhs"))
def test_lhs_hits_each_stratum_of_each_axis_exactly_once(body: dict[str, Any]) -> None:
    block = space_of(body).sample
    assert block is not None
    n = block.points
    units = [block.units(j) for j in range(n)]
    for axis, dist in enumerate(block.distributions):
        strata = [block.stratum(j, axis) for j in range(n)]
        assert sorted(strata) == list(range(n))
        for j in range(n):
            u = units[j][axis]
            assert strata[j] / n <= u < (strata[j] + 1) / n  # inside its own stratum
        if isinstance(dist, Uniform):  # and visibly so in the values themselves
            width = dist.high - dist.low
            found = sorted(
                min(int((num(block.point(j)[axis]) - dist.low) / width * n), n - 1)
                for j in range(n)
            )
            assert found == list(range(n))


@pytest.mark.parametrize("design", ["lhs", "random"])
@pytest.mark.parametrize("n", [1, 7, 64, 500])
def test_lhs_strata_in_large_blocks(design: str, n: int) -> None:
    body = {
        "simulation": "option_pricing",
        "parameters": {},
        "sample": {
            "design": design,
            "points": n,
            "axes": {
                "spot": {"uniform": {"low": 80, "high": 120}},
                "rate": {"normal": {"mean": 0.0, "sd": 0.1}},
            },
        },
        "shards": {"count": 1},
    }
    space = space_of(body)
    spots = [num(space.point(j)["spot"]) for j in range(n)]
    strata = sorted(min(int((s - 80) / 40 * n), n - 1) for s in spots)
    if design == "lhs":
        assert strata == list(range(n))
        rates = sorted(num(space.point(j)["rate"]) for j in range(n))
        nd = Normal(0.0, 0.1, -1.0, 1.0)
        edges = [nd.value(s / n) if s else -1.0 for s in range(n)] + [1.0]
        assert all(edges[s] <= r <= edges[s + 1] for s, r in enumerate(rates))
    elif n >= 64:
        assert strata != list(range(n))  # random draws collide, as they should


def test_discrete_axes_are_stratified_through_their_inverse_cdf() -> None:
    body = {
        "simulation": "option_pricing",
        "parameters": {},
        "sample": {
            "design": "lhs",
            "points": 60,
            "axes": {
                "paths": {"integer": {"low": 1, "high": 6}},
                "option": {"choice": {"values": ["call", "put"]}},
            },
        },
        "shards": {"count": 1},
    }
    space = space_of(body)
    points = [space.point(j) for j in range(60)]
    assert sorted(p["paths"] for p in points) == [v for v in range(1, 7) for _ in range(10)]
    assert sorted(p["option"] for p in points) == ["call"] * 30 + ["put"] * 30


@FAST
@given(bodies())
def test_values_lie_in_their_ranges_and_the_parameters_domain(body: dict[str, Any]) -> None:
    space = space_of(body)
    block = space.sample
    for i in range(space.size):
        point = space.point(i)
        for name, value in point.items():
            param = OPTION.by_name[name]
            assert param.type_problem(value) is None and param.domain_problem(value) is None
    if block is None:
        return
    for j in range(block.points):
        for dist, value in zip(block.distributions, block.point(j), strict=True):
            if isinstance(dist, Uniform | LogUniform):
                assert dist.low <= num(value) <= dist.high
            elif isinstance(dist, Integer):
                assert isinstance(value, int) and dist.low <= value <= dist.high
            elif isinstance(dist, Choice):
                assert value in dist.values
            else:
                assert isinstance(dist, Normal) and dist.lower <= num(value) <= dist.upper
                assert math.isfinite(num(value))


@FAST
@given(bodies(), st.integers(1, 30))
def test_block_points_depend_on_the_block_index_only(body: dict[str, Any], more: int) -> None:
    space = space_of(body)
    block = space.sample
    if block is None:
        return
    k, n = space.replicates, block.points
    for cell in range(space.cells):
        for j in range(n):
            point = space.point((cell * n + j) * k)
            assert tuple(point[a] for a in block.names) == block.point(j)
    if block.design == "random":  # raising N keeps the first points
        body["sample"]["points"] = n + more
        bigger = space_of(body).sample
        assert bigger is not None
        assert [bigger.point(j) for j in range(n)] == [block.point(j) for j in range(n)]


def test_seeds_give_different_samples() -> None:
    body = json.loads((PROJECT_ROOT / "examples" / "lhs.json").read_text())
    a = space_of(body).point(3)
    body["seed"] = 8
    assert space_of(body).point(3) != a


def test_the_same_request_gives_the_same_points_in_another_process() -> None:
    """Nothing may depend on the process: hash salts, import order, state left by a test."""
    script = (
        "import json, sys\n"
        "from chalicelib.model.validation import validate_request\n"
        "body = json.load(open(sys.argv[1]))\n"
        "body['replicates'] = 2\n"
        "space = validate_request(body, None).space\n"
        "print(json.dumps([[i, space.point(i), space.replicate(i)] for i in range(space.size)]))\n"
    )
    outputs = []
    for name, salt in (("lhs.json", "1"), ("lhs.json", "2"), ("paired-axes.json", "3")):
        path = str(PROJECT_ROOT / "examples" / name)
        run = subprocess.run(
            [sys.executable, "-c", script, path],
            capture_output=True,
            text=True,
            check=True,
            cwd=PROJECT_ROOT,
            env={"PYTHONHASHSEED": salt, "PATH": "/usr/bin:/bin"},
        )
        outputs.append(json.loads(run.stdout))
    here = json.loads((PROJECT_ROOT / "examples" / "lhs.json").read_text())
    here["replicates"] = 2
    space = space_of(here)
    mine = json.loads(
        json.dumps([[i, space.point(i), space.replicate(i)] for i in range(space.size)])
    )
    assert outputs[0] == outputs[1] == mine
    assert len(outputs[2]) == 12


@FAST
@given(bodies(), st.data())
def test_points_decoded_as_effective_parameters_are_effective_params_exactly(
    body: dict[str, Any], data: st.DataObject
) -> None:
    """The worker's decoding (``iter_points`` with the defaults and float names) gives what
    ``effective_params`` makes of each plain point: same values, same types (an int swept for
    a float parameter arrives as a float), same key order, a fresh dict per point."""
    sim = REGISTRY["option_pricing"]
    space = space_of(body)
    start = data.draw(st.integers(0, space.size - 1))
    end = data.draw(st.integers(start, space.size))
    fast = list(space.iter_points(start, end, sim.defaults, sim.float_names))
    slow = [(i, sim.effective_params(p), r) for i, p, r in space.iter_points(start, end)]
    assert fast == slow
    for (_, got, _), (_, want, _) in zip(fast, slow, strict=True):
        assert list(got.items()) == list(want.items())
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]
    assert len({id(p) for _, p, _ in fast}) == len(fast)
