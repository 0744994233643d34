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
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from chalicelib.model.space import ParameterSpace
from chalicelib.simulations.batches import PointBatches
from chalicelib.simulations.declarations import Value

# A column: its distinct coordinates (as the space gives them) and each point's index into them.
Column = tuple[list[Value], Any]

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
        used, codes = np.unique((cell // stride) % axis.size, return_inverse=True)
        coordinates = [axis.coordinates(d) for d in used.tolist()]
        for m, name in enumerate(axis.members(space.names[position])):
            found[name] = ([c[m] for c in coordinates], codes)
        stride *= axis.size
    if space.sample is not None:
        sample = space.sample
        used, codes = np.unique((index // space.replicates) % sample.points, return_inverse=True)
        points = [sample.point(j) for j in used.tolist()]
        for m, name in enumerate(sample.names):
            found[name] = ([p[m] for p in points], codes)
    return {name: found[name] for name in space.columns}


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
    distinct: list[str] = []
    for k, (values, inverse) in enumerate(columns.values()):
        codes[:, k] = inverse + len(distinct)
        distinct.extend(map(format_value, values))
    return pa.array(distinct, pa.string()).take(pa.array(codes.reshape(-1)))


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
