"""The parameter space: the cartesian product of a request's axes, addressed by a point index.

Points are never materialised: a space of 10^12 points costs as much memory as its axes. Point
``i`` is decoded in mixed radix with the last axis varying fastest, so shards (contiguous index
ranges) map to contiguous runs of the grid and any worker can decode any point on its own.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.simulations.declarations import Value


class Axis(ABC):
    """One named dimension of the grid; ``value(k)`` for 0 <= k < ``size``."""

    kind: str

    @property
    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def value(self, k: int) -> Value: ...

    @abstractmethod
    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    def bounds(self) -> tuple[Value, Value]:
        """First and last values; for monotone axes these bracket every value."""
        return self.value(0), self.value(self.size - 1)


@dataclass(frozen=True)
class ValuesAxis(Axis):
    values: tuple[Value, ...]
    kind = "values"

    @property
    def size(self) -> int:
        return len(self.values)

    def value(self, k: int) -> Value:
        return self.values[k]

    def to_dict(self) -> dict[str, Any]:
        return {"values": list(self.values)}


@dataclass(frozen=True)
class RangeAxis(Axis):
    """Python ``range`` semantics: stop excluded, any non-zero step."""

    start: int
    stop: int
    step: int
    kind = "range"

    @property
    def size(self) -> int:
        # len(range(...)) raises OverflowError beyond sys.maxsize; JSON integers are unbounded.
        toward_stop = 1 if self.step > 0 else -1
        return max(0, (self.stop - self.start + self.step - toward_stop) // self.step)

    def value(self, k: int) -> int:
        return self.start + k * self.step

    def to_dict(self) -> dict[str, Any]:
        return {"range": {"start": self.start, "stop": self.stop, "step": self.step}}

    def bounds(self) -> tuple[Value, Value]:
        first, last = self.value(0), self.value(self.size - 1)
        return (first, last) if first <= last else (last, first)


@dataclass(frozen=True)
class LinspaceAxis(Axis):
    """numpy ``linspace`` semantics: ``start + k * step``, with both ends exactly as given."""

    start: float
    stop: float
    num: int
    kind = "linspace"

    @property
    def size(self) -> int:
        return self.num

    @property
    def step(self) -> float:
        return (self.stop - self.start) / (self.num - 1) if self.num > 1 else 0.0

    def value(self, k: int) -> float:
        if k == self.num - 1 and self.num > 1:
            return float(self.stop)
        step = self.step
        if step == 0 and self.num > 1:
            # numpy's special case for a step that underflows to 0 (subnormal delta, gh-5437).
            return k / (self.num - 1) * (self.stop - self.start) + self.start
        return k * step + self.start

    def to_dict(self) -> dict[str, Any]:
        return {"linspace": {"start": self.start, "stop": self.stop, "num": self.num}}

    def bounds(self) -> tuple[Value, Value]:
        return (min(self.start, self.stop), max(self.start, self.stop))


def axis_from_dict(spec: Mapping[str, Any]) -> Axis:
    """Build an axis from its (schema-valid) request form."""
    if "values" in spec:
        return ValuesAxis(tuple(spec["values"]))
    if "range" in spec:
        r = spec["range"]
        return RangeAxis(r["start"], r["stop"], r["step"])
    ls = spec["linspace"]
    return LinspaceAxis(float(ls["start"]), float(ls["stop"]), ls["num"])


@dataclass(frozen=True)
class ParameterSpace:
    """Named axes in request order; the last one varies fastest."""

    names: tuple[str, ...]
    axes: tuple[Axis, ...]

    @classmethod
    def from_request(cls, parameters: Mapping[str, Mapping[str, Any]]) -> ParameterSpace:
        return cls(tuple(parameters), tuple(axis_from_dict(a) for a in parameters.values()))

    @property
    def size(self) -> int:
        return math.prod(a.size for a in self.axes)

    def digits(self, i: int) -> list[int]:
        """Mixed-radix digits of point ``i``, first axis first."""
        if not 0 <= i < self.size:
            raise IndexError(f"point {i} outside a space of {self.size}")
        digits = [0] * len(self.axes)
        for pos in range(len(self.axes) - 1, -1, -1):
            i, digits[pos] = divmod(i, self.axes[pos].size)
        return digits

    def point(self, i: int) -> dict[str, Value]:
        return {
            n: a.value(d) for n, a, d in zip(self.names, self.axes, self.digits(i), strict=True)
        }

    def iter_points(self, start: int, end: int) -> Iterator[tuple[int, dict[str, Value]]]:
        """Points ``[start, end)`` in order, stepping an odometer instead of decoding each one."""
        if start >= end:
            return
        digits = self.digits(start)
        sizes = [a.size for a in self.axes]
        values: list[Value] = [a.value(d) for a, d in zip(self.axes, digits, strict=True)]
        last = len(self.axes) - 1
        for i in range(start, end):
            yield i, dict(zip(self.names, values, strict=True))
            pos = last
            while pos >= 0:
                digits[pos] += 1
                if digits[pos] < sizes[pos]:
                    values[pos] = self.axes[pos].value(digits[pos])
                    break
                digits[pos] = 0
                values[pos] = self.axes[pos].value(0)
                pos -= 1

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {n: a.to_dict() for n, a in zip(self.names, self.axes, strict=True)}
