"""Stream v2: a point's random numbers depend on the point, never on its place in a grid.

A point's generator is keyed by (simulation, version, seed, the point's effective parameters,
replicate), written as one canonical text (``key_text``) and hashed with BLAKE2b to the 128-bit
key of a NumPy ``Philox`` bit generator. Philox is counter-based: it encrypts a counter under
the key, so every key is its own stream. NumPy's guidance on parallel streams
(https://numpy.org/doc/stable/reference/random/parallel.html, "Independent streams") says of
it: "The seed determines the key that is used for the encryption. Unique keys create unique,
independent streams. Philox lets you bypass the seeding algorithm to directly set the 128-bit
key. Similar, but different, keys will still create independent streams." Keys come from a
cryptographic hash, so two distinct points share a key with probability ~ n^2 / 2^129
(about 3e-27 for 10^12 points): independent by construction.

Two ways to build the same generator, bit for bit:

- ``fresh_rng(text)`` (behind ``declarations.point_rng``): a new ``Generator(Philox(key))``, for
  anyone reproducing a stored point outside the service;
- ``Rekeyed``: one ``Philox`` per evaluator whose key and counter are reset per point to a
  freshly keyed Philox's state (written into its C state where NumPy's layout is checked and
  proved, else through the public ``state`` setter). Building a generator costs ~20 us of
  Python and C object construction; re-keying one a fraction of a microsecond. The generator is
  lent to one call: a simulation must not keep it past its call.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import re
import struct
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

STREAM = "sweeps-stream-v2"
# A parameter value as the function receives it (declarations.Value, which imports this module).
Value = int | float | str | bool
SEPARATOR = "\x1f"  # not in any simulation name, version, parameter name or canonical value
VERSION_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


def canonical(value: Value) -> str:
    """One text per value the function receives: floats as their shortest round-trip repr
    (``80.0``; ``-0.0`` stays apart from ``0.0``), ints in decimal, booleans as JSON, strings
    JSON-quoted (so no string can contain the separator or look like a number)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def prefix_text(simulation: str, version: str, seed: int) -> str:
    return f"{STREAM}{SEPARATOR}{simulation}{SEPARATOR}{version}{SEPARATOR}{seed}"


def key_text(
    simulation: str, version: str, seed: int, params: dict[str, Value], replicate: int = 0
) -> str:
    """The canonical text of a point's stream key: names sorted, each ``name=value``, and
    ``replicate=r`` last when r > 0 (r = 0 is the plain point).

    ``params`` are the effective parameters exactly as the function receives them (defaults
    overlaid, float parameters as floats): ``Simulation.effective_params`` makes them."""
    parts = [prefix_text(simulation, version, seed)]
    parts += [f"{name}={canonical(params[name])}" for name in sorted(params)]
    if replicate:
        parts.append(f"replicate={replicate}")
    return SEPARATOR.join(parts)


def digest(text: str) -> bytes:
    """The 16-byte key of a stream: also the point's identity in the reuse index."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def fresh_rng(text: str) -> np.random.Generator:
    """A new generator for a key text: Philox keyed by the digest read little-endian (NumPy
    splits an integer key into 64-bit words, least significant first)."""
    return np.random.Generator(np.random.Philox(key=int.from_bytes(digest(text), "little")))


class Rekeyed:
    """One ``Philox`` generator re-keyed per point; bit-identical to ``fresh_rng``.

    A freshly keyed Philox holds the key, its counter at 0, an empty output buffer
    (``buffer_pos`` 4, the buffer zeroed) and no cached 32-bit half. Re-keying writes exactly
    that state, by one of two routes, chosen once per generator:

    - ``"direct"`` (~0.3 us a point): the 96 bytes from ``buffer_pos`` through the counter are
      written through a ``memoryview`` of the bit generator's C state, at the address NumPy
      publishes (``Philox.ctypes.state_address``). The struct's first two fields point at the
      key and the counter, which NumPy keeps right after the 64-byte struct (``_philox.pxd``);
      those two pointers are read and checked before anything is written, and the route is
      proved once per process (``_direct_route_proved``). The digest's bytes are written as
      they are: on a little-endian machine they are the two little-endian 64-bit key words
      ``fresh_rng`` reads.
    - ``"public"`` (~1.2 us), wherever a check fails (another layout, a big-endian machine):
      the bit generator's ``state`` setter, given plain tuples and lists (it reads them element
      by element, and Python ints read several times faster than NumPy scalars).

    The golden and property tests hold both routes to ``fresh_rng``."""

    def __init__(self, *, direct: bool = True) -> None:
        self.bit_generator = np.random.Philox(key=0)
        self.generator = np.random.Generator(self.bit_generator)
        self._inner: dict[str, Any] = {"counter": [0, 0, 0, 0], "key": (0, 0)}
        self._state: Any = {
            "bit_generator": "Philox",
            "state": self._inner,
            "buffer": [0, 0, 0, 0],
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
        view = _state_view(self.bit_generator) if direct and _direct_route_proved() else None
        self._view = view if view is not None else memoryview(b"")
        self.route = "public" if view is None else "direct"
        # The generator at the start of stream ``key`` (a ``digest``): the route's own method,
        # so a point pays no test for it.
        self.rng: Callable[[bytes], np.random.Generator] = (
            self._rng_public if view is None else self._rng_direct
        )

    def _rng_public(self, key: bytes) -> np.random.Generator:
        self._inner["key"] = _KEY_WORDS(key)
        self.bit_generator.state = self._state
        return self.generator

    def _rng_direct(self, key: bytes) -> np.random.Generator:
        self._view[:] = _FRESH_HEAD + key + _FRESH_COUNTER
        return self.generator


# A digest as Philox's two 64-bit key words, least significant first (as ``fresh_rng``).
_KEY_WORDS = struct.Struct("<QQ").unpack
# NumPy's ``philox_state``: counter and key pointers, ``int buffer_pos`` (padded to 8), a
# buffer of four uint64, ``int has_uint32``, ``uint32 uinteger``; the key (two uint64) and the
# counter (four) follow it in the bit generator object.
_STRUCT_BYTES = 64
# A fresh state's bytes from ``buffer_pos`` to the key, and the counter after the key.
_FRESH_HEAD = struct.pack("<i4x4QiI", 4, 0, 0, 0, 0, 0, 0)
_FRESH_COUNTER = bytes(32)
_DIRECT_BYTES = len(_FRESH_HEAD) + 16 + len(_FRESH_COUNTER)


def _state_view(bit_generator: np.random.Philox) -> memoryview | None:
    """The writable bytes of ``bit_generator``'s state from ``buffer_pos`` through its counter,
    or None unless its key and counter pointers say NumPy's layout is the one above."""
    if sys.byteorder != "little":
        return None
    try:
        base = int(bit_generator.ctypes.state_address)
    except (AttributeError, ImportError):  # no ctypes in this Python
        return None
    counter_at, key_at = struct.unpack("<QQ", ctypes.string_at(base, 16))
    if key_at != base + _STRUCT_BYTES or counter_at != key_at + 16:
        return None
    return memoryview((ctypes.c_char * _DIRECT_BYTES).from_address(base + 16)).cast("B")


@functools.cache
def _direct_route_proved() -> bool:
    """Once per process: a used generator re-keyed by the direct route reads back (through the
    public ``state`` getter) as a freshly keyed Philox, and draws what ``fresh_rng`` draws, in
    every width (doubles, normals, 32-bit halves, bounded integers)."""
    probe = Rekeyed(direct=False)
    view = _state_view(probe.bit_generator)
    if view is None:
        return False
    probe._view = view
    for text in ("sweeps-rekeyed-self-test", "", "\x1f"):
        _draws(probe.generator)  # leave a used state behind: buffer, counter, a cached half
        got = probe._rng_direct(digest(text))
        want = fresh_rng(text)
        if not _same_state(probe.bit_generator.state, want.bit_generator.state):
            return False
        if any(not np.array_equal(a, b) for a, b in zip(_draws(got), _draws(want), strict=True)):
            return False
    return True


def _draws(generator: np.random.Generator) -> list[Any]:
    return [
        generator.integers(0, 2**32, 3, dtype=np.uint32),  # leaves a cached 32-bit half
        generator.random(5),
        generator.standard_normal(5),
        generator.integers(0, 1000, 3),
        generator.integers(0, 2**32, 1, dtype=np.uint32),
    ]


def _same_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    inner = all(np.array_equal(a["state"][k], b["state"][k]) for k in ("counter", "key"))
    fields = ("buffer", "buffer_pos", "has_uint32", "uinteger")
    return inner and all(np.array_equal(a[k], b[k]) for k in fields)
