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
  freshly keyed Philox's state through the bit generator's public ``state`` setter. Building a
  generator costs ~20 us of Python and C object construction; re-keying one about one. The
  generator is lent to one call: a simulation must not keep it past its call.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
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

    Setting the state resets the counter to 0 and empties Philox's output buffer and its
    cached 32-bit half, which is exactly a freshly keyed Philox's state. The state is given as
    plain tuples and lists: the setter reads them element by element, and Python ints read
    several times faster than NumPy scalars. (Writing the C state in place through
    ``Philox.ctypes`` was measured at ~0.3 us against ~1.2 us, but it rests on NumPy's private
    struct layout; the public setter already keeps the fast path under 3 us a point.)"""

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

    def rng(self, key: bytes) -> np.random.Generator:
        """The process's generator, now at the start of stream ``key`` (a ``digest``)."""
        self._inner["key"] = _KEY_WORDS(key)
        self.bit_generator.state = self._state
        return self.generator


# A digest as Philox's two 64-bit key words, least significant first (as ``fresh_rng``).
_KEY_WORDS = struct.Struct("<QQ").unpack
