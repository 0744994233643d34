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
  freshly keyed Philox's state, in place where NumPy's layout is checked to be the known one
  (~0.3 us), else through the bit generator's public ``state`` setter (~1.2 us). Building a
  generator costs ~20 us of Python and C object construction. The generator is lent to one
  call: a simulation must not keep it past its call.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import struct
import sys
from collections.abc import Callable
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

    Re-keying sets the state of a freshly keyed Philox: the key, counter 0, an empty output
    buffer and no cached 32-bit half. Through the bit generator's public ``state`` setter that
    costs ~1.2 us (it reads a dict element by element), as much as all the rest of a point's
    key; so where this process's NumPy lays the state out as ``_PhiloxState`` (the C struct
    ``philox_state`` of numpy/random/src/philox/philox.h, unchanged since NumPy 1.17) the same
    bytes are written in place through ``Philox.ctypes`` (~0.3 us). That layout is NumPy's own,
    not a promise, so it is checked before it is trusted (``_in_place``): the struct must read
    back a distinctive state set through the public setter, and a trial re-keying must give
    the public setter's state and ``fresh_rng``'s draws; on any difference (or a big-endian
    machine) every re-keying goes through the public setter. ``in_place`` says which."""

    def __init__(self) -> None:
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
        fields = _in_place(self.bit_generator)
        self.in_place = fields is not None
        # The process's generator, now at the start of stream ``key`` (a ``digest``).
        self.rng: Callable[[bytes], np.random.Generator] = self._rng_by_setter
        if fields is not None:
            self._key, self._counter, self._rest = fields
            self.rng = self._rng_in_place

    def _rng_by_setter(self, key: bytes) -> np.random.Generator:
        self._inner["key"] = _KEY_WORDS(key)
        self.bit_generator.state = self._state
        return self.generator

    def _rng_in_place(self, key: bytes) -> np.random.Generator:
        # The digest's bytes are the key words little-endian, as ``fresh_rng`` reads them.
        self._key.raw = key
        self._counter.raw = _ZERO_COUNTER
        self._rest.raw = _FRESH_REST
        return self.generator


class _PhiloxState(ctypes.Structure):
    """NumPy's ``philox_state`` (philox.h): pointers to the counter and key, then the output
    buffer's position, the buffer, and the cached 32-bit half."""

    _fields_ = [
        ("counter", ctypes.POINTER(ctypes.c_uint64 * 4)),
        ("key", ctypes.POINTER(ctypes.c_uint64 * 2)),
        ("buffer_pos", ctypes.c_int),
        ("buffer", ctypes.c_uint64 * 4),
        ("has_uint32", ctypes.c_int),
        ("uinteger", ctypes.c_uint32),
    ]


_REST_AT = _PhiloxState.buffer_pos.offset
_ZERO_COUNTER = bytes(32)
# A fresh Philox's fields after the pointers: buffer position 4 (empty), the rest zero.
_FRESH_REST = bytes(_PhiloxState(buffer_pos=4))[_REST_AT:]
_Raw = Any  # a ctypes char array over the state's memory (``.raw`` writes its bytes)


def _in_place(bit_generator: np.random.Philox) -> tuple[_Raw, _Raw, _Raw] | None:
    """The state's key, counter and remaining fields as writable bytes, if this NumPy lays
    the state out as ``_PhiloxState`` (checked as ``Rekeyed`` says); else None."""
    if sys.byteorder != "little":
        return None
    address = bit_generator.ctypes.state_address
    marked: Any = {  # every field distinct and nonzero, so a shifted layout cannot match
        "bit_generator": "Philox",
        "state": {"counter": [11, 12, 13, 14], "key": (15, 16)},
        "buffer": [17, 18, 19, 20],
        "buffer_pos": 2,
        "has_uint32": 1,
        "uinteger": 21,
    }
    bit_generator.state = marked
    seen = _PhiloxState.from_address(address)
    if (seen.buffer_pos, list(seen.buffer), seen.has_uint32, seen.uinteger) != (
        2,
        [17, 18, 19, 20],
        1,
        21,
    ):
        return None  # the fields are not where we think: the pointers are not read either
    counter, key = seen.counter, seen.key
    if not counter or not key or list(counter.contents) != [11, 12, 13, 14]:
        return None
    if list(key.contents) != [15, 16]:
        return None
    fields = (
        (ctypes.c_char * 16).from_address(ctypes.addressof(key.contents)),
        (ctypes.c_char * 32).from_address(ctypes.addressof(counter.contents)),
        (ctypes.c_char * len(_FRESH_REST)).from_address(address + _REST_AT),
    )
    trial = digest("sweeps-stream-v2 layout check")
    fields[0].raw, fields[1].raw, fields[2].raw = trial, _ZERO_COUNTER, _FRESH_REST
    fresh = np.random.Philox(key=int.from_bytes(trial, "little"))
    if repr(bit_generator.state) != repr(fresh.state):
        return None
    draws = np.random.Generator(bit_generator).standard_normal(9)
    if not np.array_equal(draws, np.random.Generator(fresh).standard_normal(9)):
        return None
    return fields


# A digest as Philox's two 64-bit key words, least significant first (as ``fresh_rng``).
_KEY_WORDS = struct.Struct("<QQ").unpack
