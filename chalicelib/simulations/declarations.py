"""Named, deterministic simulations and what they declare.

Validation, ``GET /simulations`` and the worker all read the same declaration, so a parameter's
type, domain and default are stated once, next to the function that uses them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

# A parameter value as a request gives it and a simulation receives it.
Value = int | float | str | bool
Kind = Literal["float", "int", "str", "bool"]
Metrics = dict[str, float]
SimulationFn = Callable[[Mapping[str, Any], np.random.Generator], Metrics]


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


@dataclass(frozen=True)
class Simulation:
    name: str
    fn: SimulationFn
    parameters: tuple[Parameter, ...]
    metrics: tuple[str, ...]
    description: str = ""
    by_name: dict[str, Parameter] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.parameters})

    def effective_params(self, point: Mapping[str, Value]) -> dict[str, Value]:
        """Defaults overlaid with the point's swept values."""
        params: dict[str, Value] = {
            p.name: p.default for p in self.parameters if p.default is not None
        }
        params.update(point)
        return params

    def evaluate(
        self, point: Mapping[str, Value], seed: int, index: int, replicate: int = 0
    ) -> Metrics:
        """Metrics of point ``index`` (replicate ``replicate``); the same inputs give the same
        numbers in any process.

        Exceptions propagate as raised: the worker records any of them as the shard's
        ``SIMULATION_ERROR`` with the exception's own type, which is what an author debugs."""
        metrics = self.fn(
            self.effective_params(point), point_rng(self.name, seed, index, replicate)
        )
        return {m: float(metrics[m]) for m in self.metrics}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": [p.describe() for p in self.parameters],
            "metrics": list(self.metrics),
        }


REGISTERED: dict[str, Simulation] = {}


def simulation(
    name: str, *, parameters: list[Parameter], metrics: list[str], description: str = ""
) -> Callable[[SimulationFn], SimulationFn]:
    """Register ``fn`` under ``name``; see docs/simulations.md."""

    def register(fn: SimulationFn) -> SimulationFn:
        if name in REGISTERED:
            raise ValueError(f"simulation {name!r} registered twice")
        REGISTERED[name] = Simulation(name, fn, tuple(parameters), tuple(metrics), description)
        return fn

    return register


def point_rng(
    simulation_name: str, seed: int, index: int, replicate: int = 0
) -> np.random.Generator:
    """A random stream owned by one point: keyed by a stable hash, never by Python's ``hash()``
    (salted per process) nor by position within a shard. A replicate r > 0 joins the key (r = 0
    is the plain point, so streams without replicates are unchanged)."""
    key = f"{simulation_name}\x1f{seed}\x1f{index}"
    if replicate:
        key += f"\x1freplicate={replicate}"
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "big")))
