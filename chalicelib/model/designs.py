"""Sampled designs: a block of N points whose coordinates are drawn, not gridded.

Each axis maps a uniform ``u`` in (0, 1) to a value through its distribution's inverse CDF, so
every design is a way of choosing uniforms:

- ``random``: coordinate (j, axis) is ``unit(key(seed, axis), j)``, a hash of the seed, the
  block index and the axis; raising N keeps the first points.
- ``lhs``: axis ``a`` puts point ``j`` in stratum ``perm_a(j)`` of N equal-probability strata,
  ``perm_a`` a keyed bijection on [0, N) (``keyed.KeyedPermutation``), and places it uniformly
  within: ``u = (perm_a(j) + unit(...)) / N``. Discrete axes (``integer``, ``choice``) are
  stratified the same way through their inverse CDF.

A point's coordinates depend only on (seed, design, N for lhs, j): never on sharding or on the
grid cell the block is crossed with, and point j is computed from j directly.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from chalicelib.model import normal
from chalicelib.model.keyed import KeyedPermutation, stream_key, unit
from chalicelib.simulations.declarations import Parameter, Value

DESIGNS = ("random", "lhs")
_UNIT_STEPS = 1 << 53  # a uniform's resolution (keyed.unit gives multiples of 2^-53, offset)
POINT_CACHE = 65_536  # sampled points remembered per block (a few MB at most)
# (N - 1 + a uniform just below 1) / N can round up to 1.0; the largest double below 1 instead.
_BELOW_ONE = math.nextafter(1.0, 0.0)


class Distribution(ABC):
    """One sampled axis: ``value(u)`` is its inverse CDF at ``u`` in (0, 1)."""

    kind: str

    @abstractmethod
    def value(self, u: float) -> Value: ...

    @abstractmethod
    def arguments(self) -> dict[str, Any]: ...

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: self.arguments()}


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float
    kind = "uniform"

    def value(self, u: float) -> float:
        # Weighted ends rather than low + u * (high - low): no overflow for the widest ranges.
        return min(max(self.low * (1.0 - u) + self.high * u, self.low), self.high)

    def arguments(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class LogUniform(Distribution):
    low: float
    high: float
    kind = "loguniform"

    def value(self, u: float) -> float:
        log_low, log_high = math.log(self.low), math.log(self.high)
        x = math.exp(log_low * (1.0 - u) + log_high * u)
        return min(max(x, self.low), self.high)

    def arguments(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class Normal(Distribution):
    """A normal truncated to [lower, upper] (the parameter's domain; infinite where it has no
    bound). ``open_lower``: the domain excludes ``lower`` itself (e.g. volatility > 0)."""

    mean: float
    sd: float
    lower: float = -math.inf
    upper: float = math.inf
    open_lower: bool = False
    kind = "normal"

    @property
    def standard_bounds(self) -> tuple[float, float]:
        return (self.lower - self.mean) / self.sd, (self.upper - self.mean) / self.sd

    def value(self, u: float) -> float:
        a, b = self.standard_bounds
        x = self.mean + self.sd * normal.truncated_ppf(u, a, b)
        x = min(max(x, self.lower), self.upper)
        if self.open_lower and x <= self.lower:
            x = math.nextafter(self.lower, math.inf)
        return x

    def arguments(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd}


@dataclass(frozen=True)
class Integer(Distribution):
    """Integers low..high, both included, equally likely."""

    low: int
    high: int
    kind = "integer"

    def value(self, u: float) -> int:
        count = self.high - self.low + 1
        # floor(u * count) in integers: exact, and no float overflow for the widest ranges.
        return self.low + min((int(u * _UNIT_STEPS) * count) // _UNIT_STEPS, count - 1)

    def arguments(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class Choice(Distribution):
    """One of ``values``, equally likely, in the order given (which its inverse CDF follows)."""

    values: tuple[Value, ...]
    kind = "choice"

    def value(self, u: float) -> Value:
        count = len(self.values)
        return self.values[min(int(u * count), count - 1)]

    def arguments(self) -> dict[str, Any]:
        return {"values": list(self.values)}


def distribution_from_dict(spec: Mapping[str, Any], param: Parameter | None) -> Distribution:
    """A (schema-valid) distribution; a normal is truncated to ``param``'s domain."""
    (kind, args), *_ = spec.items()
    if kind == "uniform":
        return Uniform(float(args["low"]), float(args["high"]))
    if kind == "loguniform":
        return LogUniform(float(args["low"]), float(args["high"]))
    if kind == "integer":
        return Integer(int(args["low"]), int(args["high"]))
    if kind == "choice":
        return Choice(tuple(args["values"]))
    if kind == "normal":
        lower = -math.inf if param is None or param.minimum is None else float(param.minimum)
        upper = math.inf if param is None or param.maximum is None else float(param.maximum)
        open_lower = param is not None and param.minimum is not None and param.exclusive_minimum
        return Normal(float(args["mean"]), float(args["sd"]), lower, upper, open_lower)
    raise ValueError(f"unknown distribution {kind!r}")


@dataclass(frozen=True)
class SampleBlock:
    """N sampled points over named axes; point ``j`` from ``j`` alone."""

    design: str
    points: int
    names: tuple[str, ...]
    distributions: tuple[Distribution, ...]
    seed: int = 0
    _keys: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _perms: tuple[KeyedPermutation, ...] = field(init=False, repr=False, compare=False)
    _cached: Callable[[int], tuple[Value, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"unknown design {self.design!r}")
        keys = tuple(stream_key("sample", self.design, self.seed, n) for n in self.names)
        object.__setattr__(self, "_keys", keys)
        perms: tuple[KeyedPermutation, ...] = ()
        if self.design == "lhs":
            perms = tuple(
                KeyedPermutation(stream_key("lhs-strata", self.seed, n), self.points)
                for n in self.names
            )
        object.__setattr__(self, "_perms", perms)
        # A worker asks for a point twice (evaluating it, then laying out the shard's parameter
        # strings), and again in every grid cell its shard spans: remember the latest ones.
        object.__setattr__(self, "_cached", lru_cache(maxsize=POINT_CACHE)(self._point))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its fields: the keys and the cache are rebuilt, never shipped."""
        return (SampleBlock, (self.design, self.points, self.names, self.distributions, self.seed))

    def stratum(self, j: int, axis: int) -> int:
        """LHS: the stratum (0..N-1) of point ``j`` on axis number ``axis``."""
        return self._perms[axis](j)

    def units(self, j: int) -> list[float]:
        """Point ``j``'s uniforms in (0, 1), one per axis, before any inverse CDF."""
        if not 0 <= j < self.points:
            raise IndexError(f"sample {j} outside a block of {self.points}")
        if self.design == "random":
            return [unit(key, j) for key in self._keys]
        return [
            min((perm(j) + unit(key, j)) / self.points, _BELOW_ONE)
            for perm, key in zip(self._perms, self._keys, strict=True)
        ]

    def point(self, j: int) -> tuple[Value, ...]:
        """Point ``j``'s coordinates, in ``names`` order."""
        return self._cached(j)

    def _point(self, j: int) -> tuple[Value, ...]:
        return tuple(d.value(u) for d, u in zip(self.distributions, self.units(j), strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "points": self.points,
            "axes": {n: d.to_dict() for n, d in zip(self.names, self.distributions, strict=True)},
        }
