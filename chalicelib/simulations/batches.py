"""Stream keys of many points at once: the worker's fast path when values never repeat.

``PointStreams.key`` builds a point's key text from cached ``name=value`` fragments: fast while
a grid repeats its values, slow where every value is new (a ``sample`` design), since the
shortest round-trip text of a float with 17 significant digits (``repr``, David Gay's
algorithm) costs about a microsecond a value, more than the rest of the key. ``PointBatches``
makes the texts of a row group's points column by column instead, the floats by one Arrow
cast to string (double-conversion's shortest round-trip digits, the digits ``repr`` gives),
and hashes each text (``streams.digest``); the worker then re-keys its one generator per point
(``streams.Rekeyed``, as ``PointStreams`` does). The text is ``streams.key_text``'s exactly,
character for character; ``tests/unit/test_simulations.py`` holds the two to the same keys,
on random bit patterns too.

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
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chalicelib.simulations import streams
from chalicelib.simulations.declarations import Metrics, Simulation, Value

# Where Arrow's and ``repr``'s layouts of a float differ by more than a rule (module docstring).
_ARROW_POSITIONAL = (1e-6, 1e10)
_REPR_POSITIONAL = (1e-4, 1e16)
# Up to this many points, ``keys`` makes each point's text on its own (``streams.key_text``,
# about 3.4 us a point of option_pricing here) instead of by columns, whose Arrow calls cost
# a fixed 15-50 us a batch: 5.5 us a point in a batch of 10, 2.2 in one of 32 (2026-12-07).
FEW_POINTS = 16


class PointBatches:
    """The stream keys of many points of one (simulation, seed) at once, bit-identical to
    ``PointStreams.key`` and ``point_rng`` (``streams.key_text`` then ``streams.digest``),
    and the one re-keyed generator they are for: ``rng_at(key)``.

    ``keys`` takes effective parameters (``Simulation.effective_params``, or
    ``ParameterSpace.iter_points`` with ``base=defaults, floats=float_names``); points whose
    names are not the declaration's are keyed one by one from the generic text. ``values``
    is the worker's per-point call: the metric values, in declared order, of a point whose key
    is known. The generator is lent for one call: a function must not keep it."""

    def __init__(self, sim: Simulation, seed: int, few: int = FEW_POINTS) -> None:
        self.sim, self.seed, self.few = sim, seed, few
        self._names = tuple(sorted(p.name for p in sim.parameters))
        self._columns = tuple(itemgetter(name) for name in self._names)
        self._prefix = streams.prefix_text(sim.name, sim.version, seed)
        self._hasher = _blake2b(self._prefix.encode(), digest_size=16)
        self._rekeyed = streams.Rekeyed()
        self.rng_at: Callable[[bytes], np.random.Generator] = self._rekeyed.rng

    def keys(self, points: Sequence[Mapping[str, Value]], replicates: Sequence[int]) -> list[bytes]:
        """Each point's 16-byte stream key (``streams.digest`` of its key text), in order;
        ``replicates[i]`` is point i's replicate (r > 0 joins its key). A batch of ``few``
        points or fewer is keyed point by point, the same keys at less cost."""
        if not points:
            return []
        if len(points) <= self.few or set(map(len, points)) != {len(self._names)}:
            return [self._generic(p, r) for p, r in zip(points, replicates, strict=True)]
        try:
            texts = self._texts(points, replicates)
        except KeyError:  # a name of the declaration missing: not effective parameters
            return [self._generic(p, r) for p, r in zip(points, replicates, strict=True)]
        keys: list[bytes] = []
        add, copy = keys.append, self._hasher.copy
        for text in texts:
            hasher = copy()
            hasher.update(text)
            add(hasher.digest())
        return keys

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

    def _texts(
        self, points: Sequence[Mapping[str, Value]], replicates: Sequence[int]
    ) -> list[bytes]:
        """The key texts after the prefix, ``\\x1fname=value`` per name in sorted order then
        ``\\x1freplicate=r`` when r > 0, joined by Arrow: a column the batch holds constant
        (a default, a grid axis the group does not turn) is one literal, not an array."""
        parts: list[Any] = []
        literal = ""
        for name, column in zip(self._names, self._columns, strict=True):
            literal += f"{streams.SEPARATOR}{name}="
            text = _canonical_column(list(map(column, points)))
            if isinstance(text, str):
                literal += text
            else:
                parts += [pa.scalar(literal), text]
                literal = ""
        if any(replicates):
            texts = {r: f"{streams.SEPARATOR}replicate={r}" if r else "" for r in set(replicates)}
            parts += [pa.scalar(literal), pa.array(list(map(texts.__getitem__, replicates)))]
            literal = ""
        if not parts:  # every column constant: one text for all
            return [literal.encode()] * len(points)
        joined = pc.binary_join_element_wise(*parts, pa.scalar(literal), "")
        texts_: list[bytes] = joined.cast(pa.binary()).to_pylist()
        return texts_


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
