"""The parameter space: an ordered list of points, addressed by a point index.

The space is the cartesian product of the request's grid axes in request order (a ``zip`` axis
is one factor whose members move together), then the sampled block (``designs.SampleBlock``),
then the replicates; the last factor varies fastest. Points are never materialised: a space of
10^12 points costs as much memory as its axes. Point ``i`` is decoded in mixed radix, so shards
(contiguous index ranges) map to contiguous runs of the order and any worker can decode any
point on its own.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from chalicelib.model.designs import SampleBlock, distribution_from_dict
from chalicelib.simulations.declarations import Value
from chalicelib.simulations.registry import REGISTRY


class Axis(ABC):
    """One named dimension of the grid; ``value(k)`` for 0 <= k < ``size``."""

    kind: str

    @property
    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def value(self, k: int) -> Value: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    def bounds(self) -> tuple[Value, Value]:
        """First and last values; for monotone axes these bracket every value."""
        return self.value(0), self.value(self.size - 1)

    def members(self, name: str) -> tuple[str, ...]:
        """The parameters this axis sets when listed under ``name``: itself."""
        return (name,)

    def coordinates(self, k: int) -> tuple[Value, ...]:
        return (self.value(k),)


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
        if self.num == 1:
            # numpy computes 0 * (stop - start) + start, whose sign of zero follows the span
            # (start -0.0, stop < 0 gives -0.0); the signed zero is part of the value's text.
            span = self.stop - self.start
            return 0.0 * span + self.start if math.isfinite(span) else float(self.start)
        step = self.step
        if step == 0 and self.num > 1:
            # numpy's special case for a step that underflows to 0 (subnormal delta, gh-5437).
            return k / (self.num - 1) * (self.stop - self.start) + self.start
        return k * step + self.start

    def to_dict(self) -> dict[str, Any]:
        return {"linspace": {"start": self.start, "stop": self.stop, "num": self.num}}

    def bounds(self) -> tuple[Value, Value]:
        return (min(self.start, self.stop), max(self.start, self.stop))


@dataclass(frozen=True)
class ZipAxis:
    """Paired axes: one factor of ``size`` points whose members move together, so point ``k``
    sets every member to its ``k``-th value. Listed under a group name of its own."""

    names: tuple[str, ...]
    columns: tuple[tuple[Value, ...], ...]
    kind = "zip"

    @property
    def size(self) -> int:
        return len(self.columns[0])

    def members(self, name: str) -> tuple[str, ...]:
        return self.names

    def coordinates(self, k: int) -> tuple[Value, ...]:
        return tuple(column[k] for column in self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {"zip": {n: list(c) for n, c in zip(self.names, self.columns, strict=True)}}


GridAxis = Axis | ZipAxis


def _float_of(axis: Axis) -> Callable[[int], Value]:
    """The axis's ``value`` for a float parameter: made float unless it always is one."""
    if isinstance(axis, LinspaceAxis):
        return axis.value
    value = axis.value
    return lambda k: float(value(k))


def _value_of(axis: Axis, as_float: bool, tabulate: bool) -> Callable[[int], Value]:
    """The axis's ``value`` (``_float_of`` it for a float parameter); with ``tabulate``, as a
    lookup in a list of every value, computed once: a point then costs an index, not a
    Python call. Tabulated only for an axis no longer than the points iterated, so the
    table never costs more than the points do."""
    value = _float_of(axis) if as_float else axis.value
    if not tabulate:
        return value
    return [value(k) for k in range(axis.size)].__getitem__


def _as_floats(found: tuple[Value, ...], mask: tuple[bool, ...]) -> list[Value]:
    """Coordinates with those of float parameters (``mask``) made floats."""
    return [float(c) if f else c for c, f in zip(found, mask, strict=True)]


def axis_from_dict(spec: Mapping[str, Any]) -> GridAxis:
    """Build an axis from its (schema-valid) request form."""
    if "values" in spec:
        return ValuesAxis(tuple(spec["values"]))
    if "range" in spec:
        r = spec["range"]
        return RangeAxis(r["start"], r["stop"], r["step"])
    if "zip" in spec:
        members = spec["zip"]
        return ZipAxis(tuple(members), tuple(tuple(v) for v in members.values()))
    ls = spec["linspace"]
    return LinspaceAxis(float(ls["start"]), float(ls["stop"]), ls["num"])


def sample_from_dict(spec: Mapping[str, Any], seed: int, simulation: str | None) -> SampleBlock:
    """A (schema-valid) ``sample``; normals are truncated to the simulation's domains."""
    sim = REGISTRY.get(simulation) if simulation is not None else None
    names = tuple(spec["axes"])
    distributions = tuple(
        distribution_from_dict(d, sim.by_name.get(n) if sim is not None else None)
        for n, d in spec["axes"].items()
    )
    return SampleBlock(spec["design"], spec["points"], names, distributions, seed)


@dataclass(frozen=True)
class ParameterSpace:
    """Grid axes in request order, then the sampled block, then the replicates; the last
    factor varies fastest. ``names`` are the grid axes' keys (a zip axis's group name);
    ``columns`` the parameters a point sets, in the order of its dict."""

    names: tuple[str, ...]
    axes: tuple[GridAxis, ...]
    sample: SampleBlock | None = None
    replicates: int = 1

    @classmethod
    def from_request(
        cls,
        parameters: Mapping[str, Mapping[str, Any]],
        sample: Mapping[str, Any] | None = None,
        replicates: int = 1,
        seed: int = 0,
        simulation: str | None = None,
    ) -> ParameterSpace:
        block = sample_from_dict(sample, seed, simulation) if sample is not None else None
        axes = tuple(axis_from_dict(a) for a in parameters.values())
        return cls(tuple(parameters), axes, block, replicates)

    @property
    def columns(self) -> tuple[str, ...]:
        grid = [m for n, a in zip(self.names, self.axes, strict=True) for m in a.members(n)]
        return (*grid, *(self.sample.names if self.sample is not None else ()))

    @cached_property
    def cells(self) -> int:
        """Points of the grid alone."""
        return math.prod(a.size for a in self.axes)

    @cached_property
    def _plain(self) -> bool:
        """No paired axis: each grid axis sets one parameter, named like the axis."""
        return all(isinstance(a, Axis) for a in self.axes)

    @property
    def block(self) -> int:
        """Points of the sampled block (1 without one)."""
        return self.sample.points if self.sample is not None else 1

    @cached_property
    def size(self) -> int:
        return self.cells * self.block * self.replicates

    def _check(self, i: int) -> None:
        if not 0 <= i < self.size:
            raise IndexError(f"point {i} outside a space of {self.size}")

    def replicate(self, i: int) -> int:
        """Point ``i``'s replicate number r (0 ... replicates - 1)."""
        self._check(i)
        return i % self.replicates

    def digits(self, i: int) -> list[int]:
        """Mixed-radix digits of point ``i``'s grid cell, first axis first."""
        self._check(i)
        return self._cell_digits(i // (self.block * self.replicates))

    def _cell_digits(self, cell: int) -> list[int]:
        digits = [0] * len(self.axes)
        for pos in range(len(self.axes) - 1, -1, -1):
            cell, digits[pos] = divmod(cell, self.axes[pos].size)
        return digits

    def point(self, i: int) -> dict[str, Value]:
        """Point ``i``'s parameter values, computed from ``i`` alone."""
        self._check(i)
        rest = i // self.replicates
        cell, j = divmod(rest, self.block)
        digits = self._cell_digits(cell)
        if self._plain and self.sample is None:  # the common grid: one value per axis
            return {
                n: a.value(d)  # type: ignore[union-attr]
                for n, a, d in zip(self.names, self.axes, digits, strict=True)
            }
        values = [c for a, d in zip(self.axes, digits, strict=True) for c in a.coordinates(d)]
        if self.sample is not None:
            values.extend(self.sample.point(j))
        return dict(zip(self.columns, values, strict=True))

    def iter_points(
        self,
        start: int,
        end: int,
        base: Mapping[str, Value] | None = None,
        floats: frozenset[str] = frozenset(),
    ) -> Iterator[tuple[int, dict[str, Value], int]]:
        """(index, values, replicate) for points ``[start, end)`` in order, stepping an odometer
        (replicate, then sample, then the grid axes from the last) instead of decoding each
        point; a sampled point is computed once for all its replicates.

        With ``base``, each point's dict is a copy of ``base`` overlaid with its values, and a
        value of a column in ``floats`` is made a float when the odometer reaches it: exactly
        ``Simulation.effective_params`` of the plain point, for the cost of one dict a point
        (the worker's loop; a second pass per point was a tenth of a cheap point's time)."""
        if start >= end:
            return
        self._check(start)
        self._check(end - 1)
        columns = self.columns
        axes = self.axes
        widths = [len(a.members(n)) for n, a in zip(self.names, axes, strict=True)]
        firsts = [sum(widths[:pos]) for pos in range(len(axes))]
        grid_width = sum(widths)
        replicates, block, sample = self.replicates, self.block, self.sample
        r = start % replicates
        rest = start // replicates
        cell, j = divmod(rest, block)
        digits, sizes = self._cell_digits(cell), [a.size for a in axes]
        masks = [
            tuple(c in floats for c in columns[f : f + w])
            for f, w in zip(firsts, widths, strict=True)
        ]
        sample_mask = tuple(c in floats for c in columns[grid_width:])
        single = [
            None
            if not isinstance(a, Axis)
            else _value_of(a, mask[0], tabulate=a.size <= end - start)
            for a, mask in zip(axes, masks, strict=True)
        ]

        def coordinates(pos: int, digit: int) -> list[Value]:
            return _as_floats(axes[pos].coordinates(digit), masks[pos])

        def sampled(j: int) -> list[Value]:
            return _as_floats(sample.point(j), sample_mask)  # type: ignore[union-attr]

        # The current point, changed in place where the odometer turns; each point is a copy.
        current = dict(base or {})
        grid = [c for pos, d in enumerate(digits) for c in coordinates(pos, d)]
        current.update(zip(columns[:grid_width], grid, strict=True))
        if sample is not None:
            current.update(zip(sample.names, sampled(j), strict=True))
        last = len(axes) - 1
        for i in range(start, end):
            yield i, current.copy(), r
            r += 1
            if r < replicates:
                continue
            r = 0
            if sample is not None:
                j = j + 1 if j + 1 < block else 0
                current.update(zip(sample.names, sampled(j), strict=True))
                if j:
                    continue
            pos = last
            while pos >= 0:
                digit = digits[pos] + 1
                if digit == sizes[pos]:
                    digit = 0
                digits[pos] = digit
                first, value = firsts[pos], single[pos]
                if value is not None:
                    current[columns[first]] = value(digit)
                else:
                    members = columns[first : first + widths[pos]]
                    current.update(zip(members, coordinates(pos, digit), strict=True))
                if digit:
                    break
                pos -= 1

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The grid axes as the request's ``parameters``."""
        return {n: a.to_dict() for n, a in zip(self.names, self.axes, strict=True)}
