"""Keyed randomness addressed by index: uniforms and permutations computed from a key directly.

A sampled design must give point ``j`` its coordinates without computing points ``0..j-1`` and
without holding anything per point, so a shard of a 10^7-point design costs what its own points
cost. Both pieces here are pure functions of their key and index: ``unit`` hashes (key, index)
to a uniform in (0, 1), and ``KeyedPermutation`` is a bijection on ``[0, n)`` (a small Feistel
network over the next even power of two, cycle-walked back into range), so ``perm(j)`` costs a
few hashes and the permutation is never materialised. blake2b keys both, so nothing depends on
Python's salted ``hash()`` or on the process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# 53 random bits, offset by half a step: every value is strictly inside (0, 1).
_BITS = 53
_SCALE = 1.0 / (1 << _BITS)
ROUNDS = 6


def key_bytes(*parts: object) -> bytes:
    """A blake2b key (at most 64 bytes) naming one stream: its parts joined unambiguously."""
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=32).digest()


def unit(key: bytes, index: int) -> float:
    """A uniform in (0, 1) owned by (key, index): 53 bits of blake2b, centred in their cell."""
    digest = hashlib.blake2b(index.to_bytes(16, "big"), key=key, digest_size=8).digest()
    return ((int.from_bytes(digest, "big") >> (64 - _BITS)) + 0.5) * _SCALE


@dataclass(frozen=True)
class KeyedPermutation:
    """A keyed bijection on ``[0, size)``, evaluated one index at a time.

    A balanced Feistel network over ``2 * half`` bits is a bijection on ``[0, 4**half)`` whatever
    its round function; ``4**half`` is the smallest such domain holding ``size``, at most 4
    times larger, so cycle walking (re-encrypting until the value lands below ``size``) takes
    fewer than 4 steps on average and always ends: it follows the cycle of a permutation."""

    key: bytes
    size: int
    half: int = field(init=False)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("a permutation needs at least one element")
        bits = max(2, (self.size - 1).bit_length())
        object.__setattr__(self, "half", (bits + 1) // 2)

    def _round(self, number: int, value: int) -> int:
        data = bytes((number,)) + value.to_bytes(8, "big")
        digest = hashlib.blake2b(data, key=self.key, digest_size=8).digest()
        return int.from_bytes(digest, "big") & ((1 << self.half) - 1)

    def _encrypt(self, x: int) -> int:
        half = self.half
        left, right = x >> half, x & ((1 << half) - 1)
        for number in range(ROUNDS):
            left, right = right, left ^ self._round(number, right)
        return (left << half) | right

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(f"{index} outside [0, {self.size})")
        if self.size == 1:
            return 0
        value = self._encrypt(index)
        while value >= self.size:
            value = self._encrypt(value)
        return value
