"""Built-in simulations: determinism per point, accuracy, and the registry's declarations."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.model.sharding import ShardSpec, shard_bounds, shard_count
from chalicelib.model.space import ParameterSpace
from chalicelib.simulations import streams
from chalicelib.simulations.batches import PointBatches
from chalicelib.simulations.builtin import black_scholes
from chalicelib.simulations.declarations import (
    Parameter,
    PointStreams,
    Simulation,
    Value,
    point_rng,
    simulation,
)
from chalicelib.simulations.registry import REGISTRY
from tests.support.simulation_cases import sample_request

ROOT = Path(__file__).resolve().parents[2]
OPTION = REGISTRY["option_pricing"]
PI = REGISTRY["monte_carlo_pi"]

Results = dict[int, dict[str, float]]

SMALL_OPTION_SPACE = ParameterSpace.from_request(
    {
        "spot": {"range": {"start": 90, "stop": 111, "step": 10}},
        "volatility": {"linspace": {"start": 0.1, "stop": 0.4, "num": 3}},
        "option": {"values": ["call", "put"]},
        "paths": {"values": [50, 200]},
    }
)
SMALL_PI_SPACE = ParameterSpace.from_request(
    {"samples": {"range": {"start": 100, "stop": 2100, "step": 100}}}
)
# Every registered simulation: the built-ins on the spaces above, any other on the small sweep
# its declaration gives (a new simulation module is covered with no edit here).
SPACES = {OPTION.name: SMALL_OPTION_SPACE, PI.name: SMALL_PI_SPACE}
CASES = [
    (sim, SPACES.get(name) or ParameterSpace.from_request(sample_request(sim)["parameters"]))
    for name, sim in REGISTRY.items()
]


def evaluate_sharded(sim: Simulation, space: ParameterSpace, spec: ShardSpec, seed: int) -> Results:
    """What the workers do together: each shard decodes and evaluates its own index range."""
    results: Results = {}
    for k in range(shard_count(space.size, spec)):
        for i, point, _ in space.iter_points(*shard_bounds(space.size, spec, k)):
            assert i not in results
            results[i] = sim.evaluate(point, seed)
    return results


def same(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Bit-for-bit equal metrics, NaN included."""
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


# --- independence from sharding and order ----------------------------------------------------

_whole: dict[tuple[str, int], Results] = {}


def whole(sim: Simulation, space: ParameterSpace, seed: int) -> Results:
    key = (sim.name, seed)
    if key not in _whole:
        _whole[key] = evaluate_sharded(sim, space, ShardSpec("count", 1), seed)
    return _whole[key]


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(range(len(CASES))),
    st.sampled_from(["count", "size"]),
    st.integers(1, 36),
    st.sampled_from([0, 7]),
)
def test_results_do_not_depend_on_sharding(case: int, mode: str, k: int, seed: int) -> None:
    sim, space = CASES[case]
    k = min(k, space.size)
    spec = ShardSpec("count" if mode == "count" else "size", k)
    sharded = evaluate_sharded(sim, space, spec, seed)
    reference = whole(sim, space, seed)
    assert sharded.keys() == reference.keys() == set(range(space.size))
    assert all(same(sharded[i], reference[i]) for i in reference)


@pytest.mark.parametrize(("sim", "space"), CASES, ids=[s.name for s, _ in CASES])
def test_results_do_not_depend_on_evaluation_order(sim: Simulation, space: ParameterSpace) -> None:
    reference = whole(sim, space, 7)
    order = list(range(space.size))
    random.Random(3).shuffle(order)
    shuffled = {i: sim.evaluate(space.point(i), 7) for i in order}
    backwards = {i: sim.evaluate(space.point(i), 7) for i in reversed(order)}
    assert all(same(shuffled[i], reference[i]) for i in reference)
    assert all(same(backwards[i], reference[i]) for i in reference)


def test_result_depends_on_the_index_not_on_other_points() -> None:
    """Evaluating a point alone gives what it gave inside a full sweep."""
    reference = whole(OPTION, SMALL_OPTION_SPACE, 0)
    for i in (0, 5, SMALL_OPTION_SPACE.size - 1):
        assert same(OPTION.evaluate(SMALL_OPTION_SPACE.point(i), 0), reference[i])


def test_different_seeds_give_different_prices() -> None:
    point = {"paths": 200}
    prices = {OPTION.evaluate(point, seed)["price"] for seed in range(10)}
    assert len(prices) == 10
    estimates = {PI.evaluate({"samples": 1000}, seed)["estimate"] for seed in range(10)}
    assert len(estimates) > 1


def test_a_point_has_one_stream_wherever_it_sits() -> None:
    """Stream v2: the same parameters give the same numbers at any index, in any grid."""
    point = {"paths": 200, "strike": 90}
    here = OPTION.evaluate(point, 0)
    inside = ParameterSpace.from_request(
        {
            "strike": {"values": [70, 90]},
            "paths": {"range": {"start": 100, "stop": 301, "step": 100}},
        }
    )
    at = [i for i in range(inside.size) if inside.point(i) == point]
    assert at == [4]
    assert same(OPTION.evaluate(inside.point(4), 0), here)


def first(name: str, version: str, seed: int, params: dict[str, Value], r: int = 0) -> float:
    return float(point_rng(name, version, seed, params, r).random())


def test_streams_are_keyed_by_simulation_version_seed_params_and_replicate() -> None:
    params: dict[str, Value] = {"samples": 10}
    base = first("monte_carlo_pi", "1", 7, params)
    assert first("monte_carlo_pi", "1", 7, params) == base
    assert first("option_pricing", "1", 7, params) != base
    assert first("monte_carlo_pi", "2", 7, params) != base
    assert first("monte_carlo_pi", "1", 8, params) != base
    assert first("monte_carlo_pi", "1", 7, {"samples": 11}) != base
    assert first("monte_carlo_pi", "1", 7, params, 1) != base
    assert first("monte_carlo_pi", "1", 7, params, 0) == base
    # No ambiguity from concatenating the key: (seed 1, samples 23) != (seed 12, samples 3).
    assert first("monte_carlo_pi", "1", 1, {"samples": 23}) != first(
        "monte_carlo_pi", "1", 12, {"samples": 3}
    )


def test_a_replicate_changes_the_stream_and_replicate_zero_is_the_plain_point() -> None:
    point = {"paths": 200}
    plain = OPTION.evaluate(point, 0)
    assert OPTION.evaluate(point, 0, replicate=0) == plain
    prices = {OPTION.evaluate(point, 0, replicate=r)["price"] for r in range(4)}
    assert len(prices) == 4


def test_key_text_is_canonical() -> None:
    """Defaults overlaid, names sorted, floats as float64 shortest repr (80 and 80.0 are one
    point), strings quoted, -0.0 apart from 0.0, replicate last and only when r > 0."""
    eff = OPTION.effective_params({"strike": 80, "option": "put"})
    assert eff["strike"] == 80.0 and type(eff["strike"]) is float
    text = streams.key_text("option_pricing", "1", 7, eff)
    assert text == "\x1f".join(
        [
            "sweeps-stream-v2",
            "option_pricing",
            "1",
            "7",
            "maturity=1.0",
            'option="put"',
            "paths=10000",
            "rate=0.01",
            "spot=100.0",
            "strike=80.0",
            "volatility=0.2",
        ]
    )
    assert streams.key_text("option_pricing", "1", 7, eff, 2) == text + "\x1freplicate=2"
    assert OPTION.evaluate({"strike": 80}, 3) == OPTION.evaluate({"strike": 80.0}, 3)
    assert streams.canonical(-0.0) == "-0.0" != streams.canonical(0.0)
    assert streams.canonical(True) == "true" and streams.canonical(0.1) == "0.1"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "strike": st.floats(1, 500) | st.integers(1, 500),
                "volatility": st.sampled_from([0.1, 0.2, -0.0 + 0.3, 1e-9]),
                "option": st.sampled_from(["call", "put"]),
                "paths": st.integers(1, 50),
            }
        ),
        min_size=1,
        max_size=20,
    ),
    st.integers(0, 3),
    st.integers(0, 2**40),
)
def test_fast_path_is_bit_identical_to_point_rng(
    points: list[dict[str, Value]], replicate: int, seed: int
) -> None:
    fast = PointStreams(OPTION, seed)
    evaluate = OPTION.evaluator(seed)
    for point in points:
        params = OPTION.effective_params(point)
        expected = point_rng("option_pricing", "1", seed, point, replicate).random(8)
        assert np.array_equal(fast.rng(params, replicate).random(8), expected)
        assert same(evaluate(point, replicate), OPTION.evaluate(point, seed, replicate=replicate))


def test_fast_path_keeps_signed_zeros_apart() -> None:
    sim = Simulation("test_zero", lambda p, rng: {}, (Parameter("x", "float", 1.0),), ())
    fast = PointStreams(sim, 0)
    for x in (0.0, -0.0, 0.0, -0.0):
        expected = point_rng("test_zero", "1", 0, {"x": x}).random()
        assert float(fast.rng(sim.effective_params({"x": x})).random()) == expected
    assert first("test_zero", "1", 0, {"x": 0.0}) != first("test_zero", "1", 0, {"x": -0.0})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=6))
def test_a_rekeyed_generator_is_a_fresh_philox_after_any_use(texts: list[str]) -> None:
    """A generator left mid-buffer, mid-counter and with a cached 32-bit half, re-keyed, draws
    what a fresh one does."""
    rekeyed = streams.Rekeyed()
    for text in texts:
        used = rekeyed.rng(streams.digest(text + "-other"))
        used.integers(0, 2**32, 3, dtype=np.uint32)  # odd count: a 32-bit half stays cached
        used.standard_normal(7)
        got = rekeyed.rng(streams.digest(text))
        want = streams.fresh_rng(text)
        assert got.integers(0, 2**32, 1, dtype=np.uint32) == want.integers(
            0, 2**32, 1, dtype=np.uint32
        )
        assert np.array_equal(got.random(9), want.random(9))
        assert np.array_equal(got.standard_normal(9), want.standard_normal(9))


def test_fast_path_keys_zeros_missing_names_and_replicates_like_point_rng() -> None:
    """The cached path's misses: a zero (never cached), a point lacking a declared name, one
    with another name, a replicate; each key equals the digest of ``key_text``."""
    fast = PointStreams(OPTION, 3)
    cases: list[dict[str, Value]] = [
        OPTION.effective_params({"rate": 0.0}),
        OPTION.effective_params({"rate": -0.0}),
        OPTION.effective_params({"rate": 0.0}),
        {"strike": 90.0},
        {k: v for k, v in OPTION.effective_params({}).items() if k != "paths"} | {"other": 1},
    ]
    for params in cases:
        for replicate in (0, 2):
            text = streams.key_text("option_pricing", "1", 3, dict(params), replicate)
            assert fast.key(params, replicate) == streams.digest(text)


def test_the_in_place_re_keying_is_used_here_and_the_public_setter_is_its_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This NumPy's Philox state is laid out as ``streams`` expects, so re-keying writes it in
    place (a NumPy that moved it fails here: the fast path would be lost, not the streams);
    where the layout is not trusted (here: a big-endian machine), the public setter re-keys,
    with the same draws after any use."""
    in_place = streams.Rekeyed()
    assert in_place.in_place
    for text in ("a", "b"):
        in_place.rng(streams.digest(text + "-other")).integers(0, 2**32, 3, dtype=np.uint32)
        got, want = in_place.rng(streams.digest(text)), streams.fresh_rng(text)
        assert repr(got.bit_generator.state) == repr(want.bit_generator.state)
    monkeypatch.setattr(sys, "byteorder", "big")
    by_setter = streams.Rekeyed()
    assert not by_setter.in_place
    for text in ("a", "b", "a"):
        used = by_setter.rng(streams.digest(text + "-other"))
        used.integers(0, 2**32, 3, dtype=np.uint32)
        got, want = by_setter.rng(streams.digest(text)), streams.fresh_rng(text)
        assert repr(got.bit_generator.state) == repr(want.bit_generator.state)
        assert np.array_equal(got.standard_normal(9), want.standard_normal(9))


def key_texts_digests(
    sim: Simulation, seed: int, points: list[dict[str, Value]], replicates: list[int]
) -> list[bytes]:
    """The keys by their definition: BLAKE2b of ``key_text``, point by point."""
    return [
        streams.digest(streams.key_text(sim.name, sim.version, seed, dict(p), r))
        for p, r in zip(points, replicates, strict=True)
    ]


# Floats at and beside the magnitudes where Arrow's and repr's layouts change (batches).
EDGES = [
    x
    for edge in (1e-6, 1e-4, 1e10, 1e16, 5e-324, 2.0**53, 1.7976931348623157e308)
    for x in (math.nextafter(edge, 0), edge, math.nextafter(edge, math.inf))
    if math.isfinite(x)
] + [0.0, -0.0, 1.0, 80.0, 0.1, 1e-7, 1e22, 123456789.0, 9999999999.5]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(EDGES),
            st.floats(allow_nan=False, allow_infinity=False, width=32),
            st.sampled_from(["call", "put", 'qu"ote', "\u00e9t\u00e9"]),
            st.integers(-(2**70), 2**70),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 2**40),
)
def test_batched_keys_are_the_key_texts_digests(
    rows: list[tuple[float, float, str, int, int]], seed: int
) -> None:
    """``PointBatches.column_keys`` (Arrow's float texts fixed up to repr's) gives each point
    the digest of its ``key_text``, for any finite float, signed zeros, odd strings, huge ints;
    ``keys`` (point by point) gives the same."""
    points: list[dict[str, Value]] = [
        OPTION.effective_params({"spot": a, "rate": b, "option": o, "paths": n})
        for a, b, o, n, _ in rows
    ]
    replicates = [r for *_, r in rows]
    want = key_texts_digests(OPTION, seed, points, replicates)
    assert column_keys_of(PointBatches(OPTION, seed), points, replicates) == want
    assert PointBatches(OPTION, seed).keys(points, replicates) == want


def column_keys_of(
    batches: PointBatches, points: list[dict[str, Value]], replicates: list[int]
) -> list[bytes] | None:
    """``column_keys`` of points given as dicts: each name a column of every point's value
    (repeats included), each point coded to its own entry."""
    names = {name for p in points for name in p}
    codes = np.arange(len(points))
    columns = {name: ([p[name] for p in points], codes) for name in sorted(names)}
    return batches.column_keys(columns, np.array(replicates, dtype=np.int64))


def test_batched_keys_on_random_bit_patterns_and_every_edge() -> None:
    """100,000 floats from random 64-bit patterns (every exponent), and the edges, each in a
    batch beside a grid's repeated values: every key the digest of its text."""
    rnd = random.Random(11)
    bits = np.frombuffer(rnd.randbytes(8 * 100_000), dtype=np.uint64).view(np.float64)
    values = [*bits[np.isfinite(bits)].tolist(), *EDGES]
    points: list[dict[str, Value]] = [
        OPTION.effective_params({"strike": v, "volatility": 0.1 * (i % 3 + 1)})
        for i, v in enumerate(values)
    ]
    replicates = [0] * len(points)
    assert column_keys_of(PointBatches(OPTION, 5), points, replicates) == key_texts_digests(
        OPTION, 5, points, replicates
    )


def test_batched_keys_of_constant_mixed_defaulted_and_foreign_columns() -> None:
    """Columns whose every value is one, a column mixing types (80 and 80.0 are one value of
    a float parameter and two of an int one, True is not 1), declared parameters that are no
    column (their defaults), an empty group: all keyed as ``key_text`` says of the effective
    parameters. A column that is no parameter, or a parameter without a default that is no
    column, is refused (None): such points are not the simulation's."""
    batches = PointBatches(OPTION, 3)
    same: list[dict[str, Value]] = [{"strike": 90} for _ in range(4)]
    mixed: list[dict[str, Value]] = [
        {"strike": 80, "paths": True},
        {"strike": 80.0, "paths": 1},
        {"strike": 80, "paths": 1.0},
        {"strike": -0.0, "paths": 2},
    ]
    for points in (same, mixed, []):
        replicates = [i % 2 for i in range(len(points))]
        effective = [OPTION.effective_params(p) for p in points]
        want = key_texts_digests(OPTION, 3, effective, replicates)
        assert column_keys_of(batches, points, replicates) == want
        assert batches.keys(effective, replicates) == want
    assert column_keys_of(batches, [{"strike": 90.0, "other": 1}], [0]) is None
    pi = PointBatches(PI, 3)
    assert pi.column_keys({}, np.zeros(2, dtype=np.int64)) is None  # samples has no default


def test_batched_keys_re_key_the_generator_point_rng_gives() -> None:
    batches = PointBatches(OPTION, 9)
    values = batches.values()
    points = [OPTION.effective_params({"spot": 90 + 0.37 * k}) for k in range(5)]
    for point, key in zip(points, batches.keys(points, [0] * 5), strict=True):
        want = point_rng("option_pricing", "1", 9, point).random(6)
        assert np.array_equal(batches.rng_at(key).random(6), want)
        assert values(point, key) == list(OPTION.evaluate(point, 9).values())


def test_fast_path_keys_values_past_its_cache_limit_and_keeps_no_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More distinct values than a parameter's cache holds, and zeros of both signs: every
    key is still ``key_text``'s digest, and the caches stop growing at their limit."""
    monkeypatch.setattr(PointStreams, "CACHE_LIMIT", 4)
    fast = PointStreams(OPTION, 3)
    points = [OPTION.effective_params({"rate": 0.001 * k, "strike": 90 + k}) for k in range(12)]
    points += [OPTION.effective_params({"rate": z}) for z in (0.0, -0.0, 0.0, -0.0)]
    for params in points * 2:
        text = streams.key_text("option_pricing", "1", 3, dict(params))
        assert fast.key(params) == streams.digest(text)
    assert max(len(cache) for cache in fast._caches) == 4
    assert all(0.0 not in cache for cache in fast._caches)


def test_version_is_declared_and_checked() -> None:
    assert OPTION.version == "1" and OPTION.describe()["version"] == "1"
    with pytest.raises(ValueError, match="version"):
        Simulation("test_bad", lambda p, rng: {}, (), (), version="1 0")


# Golden metrics per (simulation, version): they change only when the version does. A change
# in numpy's Philox, in the key text or in a function without a version bump fails here.
GOLDEN: dict[tuple[str, str], list[tuple[dict[str, Value], int, int, dict[str, float]]]] = {
    ("option_pricing", "1"): [
        (
            {"strike": 80, "volatility": 0.3, "option": "put", "paths": 2000},
            7,
            0,
            {
                "price": 3.37904665392915,
                "stderr": 0.16565149334149273,
                "analytic": 3.318836869751088,
                "abs_error": 0.060209784178062,
            },
        ),
        (
            {"paths": 100},
            0,
            0,
            {
                "price": 8.635672766793935,
                "stderr": 1.287901833290075,
                "analytic": 8.433318690109608,
                "abs_error": 0.20235407668432615,
            },
        ),
        (
            {"spot": 120.5, "maturity": 2, "paths": 3},
            42,
            0,
            {
                "price": 53.468062772304314,
                "stderr": 19.831176118664267,
                "analytic": 26.629382651782905,
                "abs_error": 26.83868012052141,
            },
        ),
        (
            {"paths": 100},
            0,
            2,
            {
                "price": 8.76520584223829,
                "stderr": 1.2923695893761171,
                "analytic": 8.433318690109608,
                "abs_error": 0.33188715212868125,
            },
        ),
    ],
    ("monte_carlo_pi", "1"): [
        ({"samples": 1000}, 0, 0, {"estimate": 3.148, "abs_error": 0.0064073464102070155}),
        (
            {"samples": 12345},
            7,
            0,
            {"estimate": 3.166626164439044, "abs_error": 0.025033510849250984},
        ),
        ({"samples": 1000}, 0, 1, {"estimate": 3.24, "abs_error": 0.0984073464102071}),
    ],
}


@pytest.mark.parametrize("case", sorted(GOLDEN), ids=lambda c: f"{c[0]}-v{c[1]}")
def test_golden_metrics(case: tuple[str, str]) -> None:
    name, version = case
    sim = REGISTRY[name]
    assert sim.version == version, f"{name} is now version {sim.version}: add its golden points"
    for point, seed, replicate, metrics in GOLDEN[case]:
        assert sim.evaluate(point, seed, replicate=replicate) == metrics, (point, seed)


def test_every_simulation_version_has_golden_points() -> None:
    assert {(s.name, s.version) for s in REGISTRY.values()} <= set(GOLDEN)


# --- option_pricing accuracy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "expected"),
    [("call", 10.4506), ("put", 5.5735)],
)
def test_black_scholes_known_values(option: str, expected: float) -> None:
    assert black_scholes(100, 100, 0.05, 0.2, 1, option) == pytest.approx(expected, abs=5e-5)
    point: dict[str, Value] = {"rate": 0.05, "option": option, "paths": 10}
    assert OPTION.evaluate(point, 0)["analytic"] == pytest.approx(expected, abs=5e-5)


def test_put_call_parity() -> None:
    for spot, strike, rate, vol, maturity in [
        (100, 100, 0.05, 0.2, 1),
        (80, 120, -0.01, 0.6, 2.5),
        (150, 90, 0.1, 0.05, 0.25),
    ]:
        call = black_scholes(spot, strike, rate, vol, maturity, "call")
        put = black_scholes(spot, strike, rate, vol, maturity, "put")
        parity = spot - strike * math.exp(-rate * maturity)
        assert call - put == pytest.approx(parity, abs=1e-9)


def fixed_grid() -> Iterator[dict[str, Value]]:
    """120 points, none so far out of the money that its stderr is degenerate."""
    for spot in (90.0, 95.0, 100.0, 105.0, 110.0):
        for strike in (95.0, 100.0, 105.0):
            for vol in (0.15, 0.2, 0.3, 0.4):
                for option in ("call", "put"):
                    yield {
                        "spot": spot,
                        "strike": strike,
                        "volatility": vol,
                        "option": option,
                        "rate": 0.03,
                        "maturity": 1.0,
                        "paths": 4000,
                    }


def test_monte_carlo_price_within_four_stderr_of_analytic() -> None:
    """Deterministic (fixed seed and indexes), so this never flakes."""
    grid = list(fixed_grid())
    assert len(grid) == 120
    misses = []
    for point in grid:
        m = OPTION.evaluate(point, 2026)
        assert m["stderr"] > 0
        assert m["abs_error"] == abs(m["price"] - m["analytic"])
        if m["abs_error"] > 4 * m["stderr"]:
            misses.append((point, m))
    assert not misses


def test_stderr_shrinks_with_paths() -> None:
    few = OPTION.evaluate({"paths": 1_000}, 1)["stderr"]
    many = OPTION.evaluate({"paths": 100_000}, 1)["stderr"]
    assert many < few / 5


def test_single_path_has_nan_stderr_and_finite_price() -> None:
    m = OPTION.evaluate({"paths": 1}, 0)
    assert math.isnan(m["stderr"])
    assert math.isfinite(m["price"])
    assert m["price"] >= 0
    assert math.isfinite(m["abs_error"])


def test_defaults_fill_in_unswept_parameters() -> None:
    m = OPTION.evaluate({"paths": 10}, 0)
    assert m["analytic"] == black_scholes(100.0, 100.0, 0.01, 0.2, 1.0, "call")
    assert OPTION.effective_params({"spot": 90}) == {
        "spot": 90,
        "strike": 100.0,
        "rate": 0.01,
        "volatility": 0.2,
        "maturity": 1.0,
        "option": "call",
        "paths": 10_000,
    }


def test_metrics_are_exactly_the_declared_floats() -> None:
    m = OPTION.evaluate({"paths": 20}, 0)
    assert list(m) == ["price", "stderr", "analytic", "abs_error"]
    assert all(type(v) is float for v in m.values())
    p = PI.evaluate({"samples": 20}, 0)
    assert list(p) == ["estimate", "abs_error"]


# --- monte_carlo_pi ----------------------------------------------------------------------------


def test_monte_carlo_pi_estimate_is_near_pi() -> None:
    m = PI.evaluate({"samples": 200_000}, 0)
    assert m["abs_error"] < 0.02
    assert m["abs_error"] == abs(m["estimate"] - math.pi)


def test_monte_carlo_pi_single_sample() -> None:
    assert PI.evaluate({"samples": 1}, 0)["estimate"] in (0.0, 4.0)


def test_draws_are_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks bound memory. Normals drawn block by block continue one stream, so option prices
    only move by summation rounding; pi draws x then y per block, so BLOCK is part of its
    stream definition (changing it would change published results for samples > BLOCK)."""
    from chalicelib.simulations import builtin

    option = OPTION.evaluate({"paths": 5000}, 3)
    pi = PI.evaluate({"samples": 5000}, 3)
    small = OPTION.evaluate({"paths": 50}, 3)
    monkeypatch.setattr(builtin, "BLOCK", 1000)
    chunked = OPTION.evaluate({"paths": 5000}, 3)
    assert chunked["price"] == pytest.approx(option["price"], rel=1e-12)
    assert chunked["stderr"] == pytest.approx(option["stderr"], rel=1e-9)
    assert PI.evaluate({"samples": 5000}, 3)["estimate"] == pytest.approx(pi["estimate"], abs=0.2)
    # Blocks that do not divide the count still draw exactly the requested number.
    monkeypatch.setattr(builtin, "BLOCK", 7)
    assert OPTION.evaluate({"paths": 50}, 3)["price"] == pytest.approx(small["price"], rel=1e-12)
    monkeypatch.undo()
    assert OPTION.evaluate({"paths": 5000}, 3) == option


# --- the registry ------------------------------------------------------------------------------


def test_builtins_are_registered() -> None:
    assert {"option_pricing", "monte_carlo_pi"} <= set(REGISTRY)


def test_describe_lists_every_parameter() -> None:
    option = OPTION.describe()
    assert option["name"] == "option_pricing"
    assert option["metrics"] == ["price", "stderr", "analytic", "abs_error"]
    params = {p["name"]: p for p in option["parameters"]}
    assert list(params) == ["spot", "strike", "rate", "volatility", "maturity", "option", "paths"]
    for p in option["parameters"]:
        assert {"name", "type", "domain", "default"} <= set(p)
        assert p["type"] in ("float", "int", "str", "bool")
        assert isinstance(p["domain"], dict)
    assert params["spot"]["default"] == 100
    assert params["strike"]["default"] == 100
    assert params["rate"]["default"] == 0.01
    assert params["volatility"]["default"] == 0.2
    assert params["volatility"]["domain"]["exclusive_minimum"] == 0
    assert params["maturity"]["default"] == 1
    assert params["maturity"]["domain"]["exclusive_minimum"] == 0
    assert params["option"] == {
        **params["option"],
        "type": "str",
        "default": "call",
        "domain": {"choices": ["call", "put"]},
    }
    assert params["paths"]["type"] == "int"
    assert params["paths"]["default"] == 10_000
    assert params["paths"]["domain"]["minimum"] == 1

    pi = PI.describe()
    assert pi["metrics"] == ["estimate", "abs_error"]
    (samples,) = pi["parameters"]
    assert samples["name"] == "samples"
    assert samples["type"] == "int"
    assert samples["domain"]["minimum"] == 1
    assert samples["default"] is None
    assert samples["required"] is True
    json.dumps([OPTION.describe(), PI.describe()])  # GET /simulations serialises this


def test_registering_a_duplicate_name_is_an_error() -> None:
    before = dict(REGISTRY)

    def again(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
        return {"estimate": 0.0}

    with pytest.raises(ValueError, match="monte_carlo_pi"):
        simulation("monte_carlo_pi", parameters=[], metrics=["estimate"])(again)
    assert before == REGISTRY
    assert REGISTRY["monte_carlo_pi"].fn is not again


def test_a_new_simulation_is_one_decorated_function() -> None:
    name = "test_only_constant"
    assert name not in REGISTRY
    try:

        @simulation(
            name,
            parameters=[Parameter("x", "float", 1.0, minimum=0)],
            metrics=["twice", "noise"],
        )
        def constant(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
            if p["x"] == 13:
                raise ValueError("unlucky")
            return {"twice": 2 * float(p["x"]), "noise": float(rng.random()), "extra": 1.0}

        sim = REGISTRY[name]
        assert sim.evaluate({}, 0)["twice"] == 2.0
        assert sim.evaluate({"x": 4}, 0)["twice"] == 8.0
        assert "extra" not in sim.evaluate({"x": 4}, 0)
        with pytest.raises(ValueError, match="unlucky"):
            sim.evaluate({"x": 13}, 0)
        assert sim.describe()["parameters"][0]["domain"] == {"minimum": 0}
    finally:
        REGISTRY.pop(name, None)


def test_parameter_domains() -> None:
    vol = OPTION.by_name["volatility"]
    assert vol.domain_problem(0.0) is not None
    assert vol.domain_problem(-1.0) is not None
    assert vol.domain_problem(1e-9) is None
    assert vol.domain_problem(math.nan) is not None
    assert vol.type_problem("x") is not None
    assert vol.type_problem(True) is not None
    paths = OPTION.by_name["paths"]
    assert paths.type_problem(10.0) is not None
    assert paths.domain_problem(0) is not None
    assert OPTION.by_name["option"].domain_problem("straddle") is not None


# --- process independence ----------------------------------------------------------------------

_PROBE = """
import json
from chalicelib.simulations.registry import REGISTRY
point = {"spot": 95.0, "volatility": 0.3, "option": "put", "paths": 500}
a = REGISTRY["option_pricing"].evaluate(point, 11)
b = REGISTRY["monte_carlo_pi"].evaluate({"samples": 1000}, 11)
print(json.dumps([a, b]))
"""


def run_probe(hash_seed: str) -> Any:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_random_stream_does_not_depend_on_pythonhashseed() -> None:
    first, second = run_probe("1"), run_probe("4242")
    assert first == second
    point: dict[str, Value] = {"spot": 95.0, "volatility": 0.3, "option": "put", "paths": 500}
    here = OPTION.evaluate(point, 11)
    assert first[0] == here
