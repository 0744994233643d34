"""Keyed randomness addressed by index: uniforms and permutations computed from a key directly.

A sampled design must give point ``j`` its coordinates without computing points ``0..j-1`` and
without holding anything per point, so a shard of a 10^7-point design costs what its own points
cost. Both pieces here are pure functions of a 64-bit key and an index: ``unit`` mixes (key,
index) into a uniform in (0, 1), and ``KeyedPermutation`` is a bijection on ``[0, n)`` (a small
Feistel network over the next even power of two, cycle-walked back into range), so ``perm(j)``
costs a few mixes and the permutation is never materialised.

Keys come from blake2b of their names (``stream_key``), so nothing depends on Python's salted
``hash()`` or on the process. The per-index work is splitmix64's finaliser, a bijection on 64-bit
integers with full avalanche: statistically strong, a few integer operations, not a
cryptographic guarantee (designs need none).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

_MASK = (1 << 64) - 1
_BITS = 53
_SCALE = 1.0 / (1 << _BITS)
ROUNDS = 4  # Luby-Rackoff: four rounds of a good round function make a strong permutation


def stream_key(*parts: object) -> int:
    """A 64-bit key naming one stream: blake2b of its parts, joined unambiguously."""
    text = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def mix(z: int) -> int:
    """splitmix64's finaliser: a bijection on [0, 2^64) in which every input bit moves every
    output bit."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def unit(key: int, index: int) -> float:
    """A uniform in (0, 1) owned by (key, index): 53 mixed bits, centred in their cell.

    ``index`` is mixed before it meets the key, so streams of different keys are unrelated
    rather than shifted copies of one sequence."""
    z = mix(key ^ mix(index & _MASK))
    return ((z >> (64 - _BITS)) + 0.5) * _SCALE


@dataclass(frozen=True)
class KeyedPermutation:
    """A keyed bijection on ``[0, size)``, evaluated one index at a time.

    A balanced Feistel network over ``2 * half`` bits is a bijection on ``[0, 4**half)`` whatever
    its round function; ``4**half`` is the smallest such domain holding ``size``, at most 4
    times larger, so cycle walking (re-encrypting until the value lands below ``size``) takes
    fewer than 4 steps on average and always ends: it follows the cycle of a permutation."""

    key: int
    size: int
    half: int = field(init=False)
    _round_keys: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("a permutation needs at least one element")
        bits = max(2, (self.size - 1).bit_length())
        object.__setattr__(self, "half", (bits + 1) // 2)
        keys = tuple(mix((self.key + r * 0x9E3779B97F4A7C15) & _MASK) for r in range(ROUNDS))
        object.__setattr__(self, "_round_keys", keys)

    def _encrypt(self, x: int) -> int:
        half = self.half
        low = (1 << half) - 1
        left, right = x >> half, x & low
        for round_key in self._round_keys:
            left, right = right, left ^ (mix(round_key ^ right) & low)
        return (left << half) | right

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(f"{index} outside [0, {self.size})")
        value = self._encrypt(index)
        while value >= self.size:
            value = self._encrypt(value)
        return value
