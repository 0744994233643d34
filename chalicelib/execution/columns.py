"""A row group's parameters column by column, computed from its point indices alone.

A point's parameters follow from its index (``model.space``), so a group of consecutive points
needs no dict per point to know them: each column is its distinct coordinates in the group and
each point's code into them, a few array operations whatever the group's size. The worker
makes a group's stream keys (``batches.PointBatches.column_keys``) and its results' parameter
strings (``param_strings``) from one such decoding; the reuse planner makes keys the same way.
The points' dicts (``ParameterSpace.iter_points``) are made for the simulation function only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from chalicelib.model.space import Axis, GridAxis, LinspaceAxis, ParameterSpace, RangeAxis
from chalicelib.simulations.batches import AxisTexts, PointBatches
from chalicelib.simulations.declarations import Value

# A column: coordinates (as the space gives them) and each point's index into them: the
# group's distinct ones, or every coordinate of a whole axis (``_whole_axis``).
Column = tuple[Sequence[Value], Any]

# Up to this many points, a group is handled point by point (its dicts' values formatted,
# ``PointBatches.keys``) rather than by columns, whose array operations cost a fixed ~40 us a
# call (parameter strings of 16 points: 42 us one by one against 47 by columns, 24 points 62
# against 50; keys: 3.4 us a point one by one, 5.5 by columns in a group of 10; 2026-12-07).
FEW_POINTS = 16


def group_columns(space: ParameterSpace, start: int, end: int) -> dict[str, Column]:
    """Every column of points ``[start, end)``, in ``space.columns`` order.

    A grid axis's digit of point i is ``(cell // stride) % size`` with ``cell = i // (block *
    replicates)`` (the last factor varies fastest, as ``iter_points`` steps them), and a
    sampled point's block index is ``(i // replicates) % block``; only the distinct ones the
    group uses are looked up (a zip axis's members share their codes)."""
    index = np.arange(start, end, dtype=np.int64)
    found: dict[str, Column] = {}
    cell = index // (space.block * space.replicates)
    stride = 1
    for position in range(len(space.axes) - 1, -1, -1):
        axis = space.axes[position]
        digits = (cell // stride) % axis.size
        members = axis.members(space.names[position])
        whole = _whole_axis(axis, members)
        if whole is not None:
            for name, values in zip(members, whole, strict=True):
                found[name] = (values, digits)
        else:
            used, codes = np.unique(digits, return_inverse=True)
            coordinates = [axis.coordinates(d) for d in used.tolist()]
            for m, name in enumerate(members):
                found[name] = ([c[m] for c in coordinates], codes)
        stride *= axis.size
    if space.sample is not None:
        sample = space.sample
        used, codes = np.unique((index // space.replicates) % sample.points, return_inverse=True)
        points = [sample.point(j) for j in used.tolist()]
        for m, name in enumerate(sample.names):
            found[name] = ([p[m] for p in points], codes)
    return {name: found[name] for name in space.columns}


# Linspace and range axes up to this many coordinates are decoded whole, once per process:
# a group's codes are then its digits, and the texts made of an axis's values (its stream key
# fragments, its parameter strings) are made once for every group and shard that uses it, not
# once a group (a 100-point shard of a 1,000 x 100 grid paid ~0.1 ms for them; issue 16).
WHOLE_AXIS = 65_536


def _whole_axis(axis: GridAxis, members: tuple[str, ...]) -> tuple[tuple[Value, ...], ...] | None:
    """Each member's value at every coordinate of ``axis`` (the same tuples, the same objects,
    for every group of a process: ``PointBatches.column_keys`` and ``param_strings`` keep their
    texts by them); None for an axis decoded group by group (values and zip axes, whose
    equality does not tell 1 from 1.0 or True, and axes over ``WHOLE_AXIS``)."""
    if not isinstance(axis, RangeAxis | LinspaceAxis) or axis.size > WHOLE_AXIS:
        return None
    return _decoded(repr(axis), axis, len(members))


@lru_cache(maxsize=16)
def _decoded(key: str, axis: Axis, width: int) -> tuple[tuple[Value, ...], ...]:
    """Keyed by the axis's repr, which tells 0.0 from -0.0 and 50 from 50.0 (its equality
    does not)."""
    coordinates = [axis.coordinates(d) for d in range(axis.size)]
    return tuple(tuple(c[m] for c in coordinates) for m in range(width))


def replicates_of(space: ParameterSpace, start: int, end: int) -> Any:
    """Each point's replicate (0 without replicates), as an integer array."""
    return np.arange(start, end, dtype=np.int64) % space.replicates


# A point as ``ParameterSpace.iter_points`` gives it: (index, effective parameters, replicate).
Point = tuple[int, dict[str, Value], int]


def keyed_points(
    batches: PointBatches,
    space: ParameterSpace,
    start: int,
    end: int,
    columns: dict[str, Column] | None = None,
    keep: Any = None,
) -> tuple[Iterable[Point], list[bytes]]:
    """Points ``[start, end)`` (those where the boolean array ``keep`` is true, when given)
    with their effective parameters, decoded lazily (each dict can be dropped after its use),
    and their stream keys, as ``PointBatches.keys`` makes them from the dicts. The keys come
    from the group's columns (``columns``: when already decoded); a group of a few points is
    keyed point by point from its dicts, and so is a space whose columns are not its
    simulation's parameters (``PointBatches.column_keys`` refuses them; the validator does
    too). None at all when ``keep`` keeps none."""
    sim = batches.sim
    points: Iterable[Point] = space.iter_points(start, end, sim.defaults, sim.float_names)
    if keep is not None:
        if not keep.any():
            return (), []
        points = itertools.compress(points, keep.tolist())
    if end - start > FEW_POINTS:
        columns = columns if columns is not None else group_columns(space, start, end)
        replicates = replicates_of(space, start, end)
        if keep is not None:
            columns = {name: (values, codes[keep]) for name, (values, codes) in columns.items()}
            replicates = replicates[keep]
        keys = batches.column_keys(columns, replicates)
        if keys is not None:
            return points, keys
    few = list(points)
    return few, batches.keys([values for _, values, _ in few], [r for _, _, r in few])


def column_keys(
    batches: PointBatches,
    space: ParameterSpace,
    start: int,
    end: int,
    columns: dict[str, Column] | None = None,
    keep: Any = None,
) -> list[bytes]:
    """The stream keys alone of ``keyed_points``."""
    return keyed_points(batches, space, start, end, columns, keep)[1]


def param_strings(
    space: ParameterSpace, start: int, end: int, columns: dict[str, Column] | None = None
) -> pa.Array:
    """Every point's parameter strings (``format_value``), row-major in ``space.columns``
    order, as one Arrow array: each column's distinct coordinates formatted once and laid out
    by Arrow's ``take`` (``columns``: the group's, when already decoded). A group of a few
    points (``FEW_POINTS``) formats each point's values instead."""
    if end - start <= FEW_POINTS:
        return pa.array(
            [format_value(v) for i in range(start, end) for v in space.point(i).values()],
            pa.string(),
        )
    columns = columns if columns is not None else group_columns(space, start, end)
    codes = np.empty((end - start, len(columns)), dtype=np.int64)
    distinct: list[pa.Array] = []
    offset = 0
    for k, (values, inverse) in enumerate(columns.values()):
        codes[:, k] = inverse + offset
        texts = _formatted_column(values)
        distinct.append(texts)
        offset += len(texts)
    return pa.concat_arrays(distinct).take(pa.array(codes.reshape(-1)))


# Whole axes' formatted values (``_whole_axis``), made once a process.
_FORMATTED: AxisTexts[pa.Array] = AxisTexts()


def _formatted_column(values: Sequence[Value]) -> pa.Array:
    """``format_value`` of each value, as an Arrow string array."""
    return _FORMATTED.get(
        values, None, lambda: pa.array(list(map(format_value, values)), pa.string())
    )


def format_value(value: Value) -> str:
    """Parameter values as strings in the results map, readable back without ambiguity."""
    if isinstance(value, float) and value == 0:
        return repr(value)  # 0.0 and -0.0 are one cache key but print differently
    return _formatted(value)


@lru_cache(maxsize=65536, typed=True)
def _formatted(value: Value) -> str:
    """Cached: a grid repeats few distinct values, and repr of a float costs a microsecond."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)
