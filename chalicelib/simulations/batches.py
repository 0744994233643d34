"""Stream keys of many points at once: the worker's fast path.

``PointStreams.key`` builds a point's key text from cached ``name=value`` fragments: fast while
a grid repeats its values, slow where every value is new (a ``sample`` design), since the
shortest round-trip text of a float with 17 significant digits (``repr``, David Gay's
algorithm) costs about a microsecond a value, more than the rest of the key. ``PointBatches``
makes the texts of a row group's points column by column instead, from each column's distinct
values and each point's code into them (``execution.columns``: computed from the point
indices, no dict read): a distinct value's text is made once, the floats' by one Arrow cast to
string (double-conversion's shortest round-trip digits, the digits ``repr`` gives), and Arrow
lays the texts out and joins them; each text is hashed (``streams.digest``); the worker then
re-keys its one generator per point (``streams.Rekeyed``, as ``PointStreams`` does). The text
is ``streams.key_text``'s exactly, character for character; ``tests/unit/test_simulations.py``
holds the two to the same keys, on random bit patterns too.

Arrow writes the same digits as ``repr`` in another layout, so the cast's text is taken where
the layouts agree and fixed where they differ by a rule:

- both positional (``1e-6 <= |x| < 1e10`` for Arrow, ``1e-4 <= |x| < 1e16`` for ``repr``): the
  same text, except that ``repr`` ends an integral value with ``.0`` (``80.0``, Arrow ``80``);
- both scientific (``|x| < 1e-6`` or ``|x| >= 1e16``): the same text, except that ``repr``
  writes at least two exponent digits (``1e-07``, Arrow ``1e-7``);
- the rest (``1e-6 <= |x| < 1e-4`` and ``1e10 <= |x| < 1e16``) is one ``repr`` a value.

This module loads pyarrow, so it is for the worker and the reuse planner: the registry does
not import it with the simulations (``registry.NOT_SIMULATIONS``), and the API path never does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from hashlib import blake2b as _blake2b
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chalicelib.simulations import streams
from chalicelib.simulations.declarations import Metrics, Simulation, Value

# Where Arrow's and ``repr``'s layouts of a float differ by more than a rule (module docstring).
_ARROW_POSITIONAL = (1e-6, 1e10)
_REPR_POSITIONAL = (1e-4, 1e16)


class AxisTexts[T]:
    """Texts made of a column's values, kept for a whole axis's values: a tuple the same object
    for every group of a process (``execution.columns``), so they are made once. Kept by the
    tuple's identity, with the tuple (so the identity stays its own); at most ``LIMIT``."""

    LIMIT = 64

    def __init__(self) -> None:
        self._kept: dict[tuple[int, object], tuple[Sequence[Value], T]] = {}

    def get(self, values: Sequence[Value], kind: object, make: Callable[[], T]) -> T:
        """``make()``'s texts of ``values`` (``kind`` tells apart two sorts of text of the same
        values), from the kept ones for a whole axis's values."""
        key = (id(values), kind)
        kept = self._kept.get(key)
        if kept is not None and kept[0] is values:
            return kept[1]
        made = make()
        if isinstance(values, tuple):
            if len(self._kept) >= self.LIMIT:
                self._kept.clear()
            self._kept[key] = (values, made)
        return made


class PointBatches:
    """The stream keys of many points of one (simulation, seed) at once, bit-identical to
    ``PointStreams.key`` and ``point_rng`` (``streams.key_text`` then ``streams.digest``),
    and the one re-keyed generator they are for: ``rng_at(key)``.

    ``column_keys`` takes a group's points column by column (``execution.columns``); ``keys``
    takes a few points' effective parameters (``Simulation.effective_params``, or
    ``ParameterSpace.iter_points`` with ``base=defaults, floats=float_names``) and keys them
    one by one from the generic text. ``values`` is the worker's per-point call: the metric
    values, in declared order, of a point whose key is known. The generator is lent for one
    call: a function must not keep it."""

    def __init__(self, sim: Simulation, seed: int) -> None:
        self.sim, self.seed = sim, seed
        self._names = tuple(sorted(p.name for p in sim.parameters))
        self._prefix = streams.prefix_text(sim.name, sim.version, seed)
        self._hasher = _blake2b(self._prefix.encode(), digest_size=16)
        self._rekeyed = streams.Rekeyed()
        self._texts: AxisTexts[str | pa.Array] = AxisTexts()
        self.rng_at: Callable[[bytes], np.random.Generator] = self._rekeyed.rng

    def keys(self, points: Sequence[Mapping[str, Value]], replicates: Sequence[int]) -> list[bytes]:
        """Each point's 16-byte stream key (``streams.digest`` of its key text), in order;
        ``replicates[i]`` is point i's replicate (r > 0 joins its key). Point by point: for
        a few points (Arrow's calls in ``column_keys`` cost a fixed 15-50 us a group, more
        than keying each of up to ````execution.columns.FEW_POINTS```` points)."""
        return [self._generic(p, r) for p, r in zip(points, replicates, strict=True)]

    def column_keys(
        self, columns: Mapping[str, tuple[Sequence[Value], Any]], replicates: Any
    ) -> list[bytes] | None:
        """The keys of points given column by column: ``columns[name]`` is the parameter's
        distinct values (as a space gives them: a float parameter's are made floats here, as
        ``effective_params`` does) and each point's code into them (an integer array);
        ``replicates`` is each point's replicate (an integer array, one per point). A declared
        parameter that is no column takes its default. None when a column is not a declared
        parameter or a parameter without a default is missing: the points are not this
        simulation's, and the caller keys them one by one (``keys``)."""
        defaults, floats = self.sim.defaults, self.sim.float_names
        if not set(columns) <= set(self._names):
            return None
        parts: list[Any] = []
        literal = ""
        for name in self._names:
            literal += f"{streams.SEPARATOR}{name}="
            if name not in columns:
                if name not in defaults:
                    return None
                literal += streams.canonical(defaults[name])
                continue
            values, codes = columns[name]
            text = self._canonical(values, name in floats)
            if isinstance(text, str):
                literal += text
            elif len(codes) and (codes == codes[0]).all():  # one value in this group
                literal += text[int(codes[0])].as_py()
            else:
                parts += [pa.scalar(literal), text.take(pa.array(codes))]
                literal = ""
        if np.any(replicates):  # replicate 0's key has no replicate text
            used, codes = np.unique(replicates, return_inverse=True)
            texts = [f"{streams.SEPARATOR}replicate={r}" if r else "" for r in used.tolist()]
            parts += [pa.scalar(literal), pa.array(texts, pa.string()).take(pa.array(codes))]
            literal = ""
        if not parts:  # every column constant: one text for all
            return self._digests([literal.encode()] * len(replicates))
        joined = pc.binary_join_element_wise(*parts, pa.scalar(literal), "")
        return self._digests(joined.cast(pa.binary()).to_pylist())

    def _canonical(self, values: Sequence[Value], as_floats: bool) -> str | pa.Array:
        """``_canonical_column`` of a column's values (made floats for a float parameter),
        made once for a whole axis's values (``AxisTexts``)."""
        return self._texts.get(
            values,
            as_floats,
            lambda: _canonical_column([float(v) for v in values] if as_floats else list(values)),
        )

    def values(self) -> Callable[[dict[str, Value], bytes], list[float]]:
        """``values(params, key)``: the metric values of a point, as floats in declared order,
        its generator re-keyed to ``key`` (from ``keys``)."""
        fn, names, rng_at = self.sim.fn, self.sim.metrics, self.rng_at

        def values(params: dict[str, Value], key: bytes) -> list[float]:
            raw: Metrics = fn(params, rng_at(key))
            return [float(raw[m]) for m in names]

        return values

    def _generic(self, params: Mapping[str, Value], replicate: int) -> bytes:
        text = streams.key_text(self.sim.name, self.sim.version, self.seed, dict(params), replicate)
        return streams.digest(text)

    def _digests(self, texts: list[bytes]) -> list[bytes]:
        """``streams.digest`` of the prefix then each text: a copy of a hasher already fed the
        prefix, so the prefix is hashed once."""
        keys: list[bytes] = []
        add, copy = keys.append, self._hasher.copy
        for text in texts:
            hasher = copy()
            hasher.update(text)
            add(hasher.digest())
        return keys


def _canonical_column(values: list[Value]) -> str | pa.Array:
    """``streams.canonical`` of each value of one parameter, as one text when they are all
    the same value of the same type, else as an Arrow string array."""
    types = set(map(type, values))
    if types == {float}:
        return _float_texts(values)
    if len(types) == 1:  # ints, strings or booleans: equal values print alike
        distinct = {v: streams.canonical(v) for v in set(values)}
        if len(distinct) == 1:
            return next(iter(distinct.values()))
        return pa.array(list(map(distinct.__getitem__, values)), pa.string())
    return pa.array(list(map(streams.canonical, values)), pa.string())  # mixed: each its own


def _float_texts(values: list[Value]) -> str | pa.Array:
    """``repr`` of each float, by the rules of the module docstring."""
    floats = np.array(values, dtype=np.float64)
    bits = floats.view(np.int64)
    if (bits == bits[0]).all():  # bit for bit: 0.0 and -0.0 differ
        return repr(floats[0].item())
    texts = pc.cast(pa.array(floats), pa.string())
    size = np.abs(floats)
    nonzero = size != 0
    arrow_positional = (size >= _ARROW_POSITIONAL[0]) & (size < _ARROW_POSITIONAL[1])
    repr_positional = (size >= _REPR_POSITIONAL[0]) & (size < _REPR_POSITIONAL[1])
    positional = (repr_positional & arrow_positional) | ~nonzero
    integral = positional & (floats == np.trunc(floats))
    if integral.any():
        texts = pc.if_else(pa.array(integral), pc.binary_join_element_wise(texts, ".0", ""), texts)
    scientific = nonzero & ~repr_positional & ~arrow_positional
    if scientific.any():  # one exponent digit padded to two, as repr does
        padded = pc.replace_substring_regex(texts, pattern=r"e([+-])(\d)$", replacement=r"e\10\2")
        texts = pc.if_else(pa.array(scientific), padded, texts)
    apart = nonzero & (repr_positional != arrow_positional)
    if apart.any():
        where = np.flatnonzero(apart)
        own = pa.array([repr(values[i]) for i in where.tolist()], pa.string())
        texts = pc.replace_with_mask(texts, pa.array(apart), own)
    return texts
