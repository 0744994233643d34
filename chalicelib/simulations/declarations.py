"""Named, deterministic simulations and what they declare.

Validation, ``GET /simulations`` and the worker all read the same declaration, so a parameter's
type, domain and default are stated once, next to the function that uses them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b as _blake2b
from operator import getitem, itemgetter
from typing import Any, Literal

import numpy as np

from chalicelib.simulations import streams

# A parameter value as a request gives it and a simulation receives it.
Value = int | float | str | bool
Kind = Literal["float", "int", "str", "bool"]
Metrics = dict[str, float]
SimulationFn = Callable[[Mapping[str, Any], np.random.Generator], Metrics]

# What an int parameter may hold: the typed views (``sweeps.views``) read it as a BIGINT.
INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: Kind
    default: Value | None = None
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    choices: tuple[Value, ...] | None = None
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    def type_problem(self, value: Value) -> str | None:
        """Why ``value`` has the wrong type for this parameter, or None."""
        ok = {
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
        }[self.kind]
        if ok:
            return None
        return f"{self.name} takes {self.kind} values, got {value!r}"

    def domain_problem(self, value: Value) -> str | None:
        """Why a value of the right type is outside the domain, or None."""
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {list(self.choices)}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer beyond the float range: fine only where ints are
            finite = self.kind == "int"
        if not finite:
            return f"{self.name} must be finite, got {value!r}"
        if self.kind == "int" and not INT64[0] <= value <= INT64[1]:
            # The typed views read an int parameter as BIGINT; a larger one fails the query.
            return f"{self.name} must fit in 64 bits ({INT64[0]} to {INT64[1]}), got {value!r}"
        if self.minimum is not None:
            low_ok = value > self.minimum if self.exclusive_minimum else value >= self.minimum
            if not low_ok:
                op = ">" if self.exclusive_minimum else ">="
                return f"{self.name} must be {op} {self.minimum:g}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name} must be <= {self.maximum:g}, got {value!r}"
        return None

    def describe(self) -> dict[str, Any]:
        domain: dict[str, Any] = {}
        if self.choices is not None:
            domain["choices"] = list(self.choices)
        if self.minimum is not None:
            domain["exclusive_minimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            domain["maximum"] = self.maximum
        return {
            "name": self.name,
            "type": self.kind,
            "domain": domain,
            "default": self.default,
            "required": self.required,
            "description": self.description,
        }


# A results row's parameter text back to its value, by the parameter's kind.
_FROM_TEXT: dict[Kind, Callable[[str], Value]] = {
    "float": float,
    "int": int,
    "bool": lambda text: text == "true",
    "str": str,
}


@dataclass(frozen=True)
class Simulation:
    name: str
    fn: SimulationFn
    parameters: tuple[Parameter, ...]
    metrics: tuple[str, ...]
    description: str = ""
    # Bumped by the author whenever the function's results change: part of every stream key,
    # so results of different versions are never mistaken for each other (nor reused).
    version: str = "1"
    by_name: dict[str, Parameter] = field(init=False, repr=False, compare=False)
    _defaults: dict[str, Value] = field(init=False, repr=False, compare=False)
    _floats: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not streams.VERSION_RE.match(self.version):
            raise ValueError(
                f"simulation {self.name!r}: version must match {streams.VERSION_RE.pattern}"
            )
        object.__setattr__(self, "by_name", {p.name: p for p in self.parameters})
        floats = frozenset(p.name for p in self.parameters if p.kind == "float")
        defaults = {
            p.name: float(p.default) if p.name in floats else p.default
            for p in self.parameters
            if p.default is not None
        }
        object.__setattr__(self, "_floats", floats)
        object.__setattr__(self, "_defaults", defaults)

    def effective_params(self, point: Mapping[str, Value]) -> dict[str, Value]:
        """What the function receives: defaults overlaid with the point's values, a float
        parameter's value always as a float (a ``range`` axis gives ints), so ``80`` and
        ``80.0`` are one point with one stream."""
        params = dict(self._defaults)
        floats = self._floats
        for name, value in point.items():
            params[name] = float(value) if name in floats else value
        return params

    def point_from_results(self, params: Mapping[str, str]) -> dict[str, Value]:
        """A point's values read back from a results row's ``params`` (each value's text, as
        the worker writes it), typed by their declarations: what ``evaluate`` and
        ``point_rng`` take to reproduce the row's metrics outside the service."""
        return {name: _FROM_TEXT[self.by_name[name].kind](text) for name, text in params.items()}

    def evaluate(self, point: Mapping[str, Value], seed: int, *, replicate: int = 0) -> Metrics:
        """Metrics of a point; the same (point, seed, replicate) give the same numbers in any
        grid, shard, order or process. Builds a fresh generator (``point_rng``); the worker
        uses ``evaluator``, which gives bit-identical numbers faster.

        Exceptions propagate as raised: the worker records any of them as the shard's
        ``SIMULATION_ERROR`` with the exception's own type, which is what an author debugs."""
        params = self.effective_params(point)
        rng = point_rng(self.name, self.version, seed, params, replicate)
        return self._metrics(self.fn(params, rng))

    def evaluator(self, seed: int) -> Callable[..., Metrics]:
        """``evaluate`` for many points of one seed, through one re-keyed generator
        (``PointStreams``): ``evaluator(seed)(point, replicate=0)``."""
        values_of = self.values_evaluator(seed)
        effective, names = self.effective_params, self.metrics

        def evaluate(point: Mapping[str, Value], replicate: int = 0) -> Metrics:
            return dict(zip(names, values_of(effective(point), replicate), strict=True))

        return evaluate

    @property
    def defaults(self) -> Mapping[str, Value]:
        """The declared defaults, a float parameter's as a float (what ``effective_params``
        overlays the point on)."""
        return self._defaults

    @property
    def float_names(self) -> frozenset[str]:
        """The float parameters, whose values the function always receives as floats."""
        return self._floats

    def values_evaluator(self, seed: int) -> Callable[[dict[str, Value], int], list[float]]:
        """A per-point call (``sweep estimate``'s; the worker makes a row group's keys at once,
        ``batches.PointBatches``): effective parameters in (``effective_params``, or
        ``ParameterSpace.iter_points`` with ``base=defaults, floats=float_names``), the metric
        values out as floats in declared order, no dict made per point."""
        point_streams = PointStreams(self, seed)
        key_of, rng_at, fn, names = point_streams.key, point_streams.rng_at, self.fn, self.metrics

        def values(params: dict[str, Value], replicate: int) -> list[float]:
            raw = fn(params, rng_at(key_of(params, replicate)))
            return [float(raw[m]) for m in names]

        return values

    def _metrics(self, raw: Mapping[str, float]) -> Metrics:
        return {m: float(raw[m]) for m in self.metrics}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "parameters": [p.describe() for p in self.parameters],
            "metrics": list(self.metrics),
        }


REGISTERED: dict[str, Simulation] = {}


def simulation(
    name: str,
    *,
    parameters: list[Parameter],
    metrics: list[str],
    description: str = "",
    version: str = "1",
) -> Callable[[SimulationFn], SimulationFn]:
    """Register ``fn`` under ``name``; see docs/simulations.md."""

    def register(fn: SimulationFn) -> SimulationFn:
        if name in REGISTERED:
            raise ValueError(f"simulation {name!r} registered twice")
        REGISTERED[name] = Simulation(
            name, fn, tuple(parameters), tuple(metrics), description, version
        )
        return fn

    return register


def point_rng(
    simulation_name: str,
    version: str,
    seed: int,
    params: Mapping[str, Value],
    replicate: int = 0,
) -> np.random.Generator:
    """A fresh generator for one point (stream v2, ``streams``): what anyone reproducing a
    stored point calls, outside the service, bit for bit.

    ``params`` may be the point's swept values or its effective parameters: for a registered
    simulation the defaults are overlaid and float parameters made floats, as the function
    receives them. ``replicate`` r > 0 joins the key; r = 0 is the plain point."""
    sim = REGISTERED.get(simulation_name)
    effective = sim.effective_params(params) if sim is not None else dict(params)
    return streams.fresh_rng(streams.key_text(simulation_name, version, seed, effective, replicate))


class PointStreams:
    """The fast path point by point, bit-identical to ``point_rng``: one generator per
    (simulation, seed), re-keyed per point (``streams.Rekeyed``). The worker makes a row
    group's keys at once instead (``batches.PointBatches``), which is faster where values
    never repeat (a ``sample`` design).

    The key text is assembled from cached ``name=value`` fragments (a grid repeats few
    distinct values per parameter) in the declaration's sorted name order, so a point costs one
    ``itemgetter`` call, one C-level ``map`` of dictionary lookups, one join and a copy of a
    BLAKE2b already fed the constant prefix (simulation, version, seed); then one re-keying.
    A value not cached yet costs one ``_Fragments.__missing__`` call (its ``repr``), and is
    kept, up to ``CACHE_LIMIT`` values a parameter; a zero is never kept (``0.0 == -0.0``: one
    dictionary key, two texts). ``rng`` takes the effective parameters
    (``Simulation.effective_params``) and lends the process's one generator: the function must
    not keep it past its call."""

    CACHE_LIMIT = 65536

    def __init__(self, sim: Simulation, seed: int) -> None:
        self.sim = sim
        self.seed = seed
        self._names = tuple(sorted(p.name for p in sim.parameters))
        # One cache per name, in ``_names``' order: value -> its ``\x1fname=value`` bytes.
        self._caches = tuple(_Fragments(name, self.CACHE_LIMIT) for name in self._names)
        self._values: Callable[[Mapping[str, Value]], tuple[Value, ...]] = _getter(self._names)
        prefix = streams.prefix_text(sim.name, sim.version, seed).encode()
        self._hasher = _blake2b(prefix, digest_size=16)
        self._rekeyed = streams.Rekeyed()
        # The generator at the start of the stream whose ``key`` was just computed: the
        # re-keyed generator's own method, so a point pays no call of ours for it.
        self.rng_at: Callable[[bytes], np.random.Generator] = self._rekeyed.rng

    def key(self, params: Mapping[str, Value], replicate: int = 0) -> bytes:
        """The point's 16-byte stream key: ``streams.digest`` of its key text."""
        try:
            if len(params) != len(self._names):  # e.g. a required parameter not swept
                raise KeyError
            text = b"".join(map(getitem, self._caches, self._values(params)))
        except KeyError:  # names other than the declaration's: the generic text
            return self._slow_key(params, replicate)
        hasher = self._hasher.copy()
        hasher.update(text)
        if replicate:
            hasher.update(f"{streams.SEPARATOR}replicate={replicate}".encode())
        return hasher.digest()

    def _slow_key(self, params: Mapping[str, Value], replicate: int) -> bytes:
        text = streams.key_text(self.sim.name, self.sim.version, self.seed, dict(params), replicate)
        return streams.digest(text)

    def rng(self, params: Mapping[str, Value], replicate: int = 0) -> np.random.Generator:
        return self._rekeyed.rng(self.key(params, replicate))


class _Fragments(dict[Value, bytes]):
    """One parameter's ``\x1fname=value`` bytes by value (``PointStreams``): a lookup that
    misses makes the fragment, and keeps it unless the value is a zero or the cache is full."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__()
        self.head = f"{streams.SEPARATOR}{name}="
        self.limit = limit

    def __missing__(self, value: Value) -> bytes:
        fragment = f"{self.head}{streams.canonical(value)}".encode()
        if value != 0 and len(self) < self.limit:
            self[value] = fragment
        return fragment


def _getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Value]], tuple[Value, ...]]:
    """The values of ``names`` in a mapping, as a tuple, in C where it can (``itemgetter`` of
    one name gives the bare value); a KeyError for a missing name."""
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        name = names[0]
        return lambda params: (params[name],)
    return lambda params: ()
