"""Listing a large folder as several key ranges at once.

A run of 100,000 shards has 100,000+ outcome keys: one listing of them on S3 is 100 pages,
each a round trip (~20 ms), one after the other. Split at boundaries that sort between keys,
the same keys come back from ``ranges`` slices listed concurrently (``ObjectStore.list_range``
starts each at its lower bound), so the wall time is about one slice's pages, whatever the
count. The boundaries only balance the work: any sorted list of strings partitions the key
space into slices that together hold every key exactly once, so a boundary that matches no
key (a run with another date, a shard id of seven digits) costs time, never correctness.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from chalicelib.storage.stores import ObjectStore

# Shards per slice: one page of success keys on S3 (ListObjectsV2 returns <= 1,000 keys). One
# fewer than a page: a slice starts at its lower bound (StartAfter) and S3 has no upper one, so
# a slice of exactly 1,000 keys learns it is done only from a second page (the first key past
# its bound), while a slice of 999 sees that key on its first: one request a slice, not two.
SHARDS_PER_RANGE = 999


def shard_boundaries(folder: str, shard_count: int, per: int = SHARDS_PER_RANGE) -> list[str]:
    """Boundaries inside a folder of ``shard-NNNNNN…`` keys, every ``per`` shards: each sorts
    just before the first key of its shard (``layout`` formats shard ids as six digits)."""
    return [f"{folder}shard-{lo:06d}" for lo in range(per, shard_count, per)]


def list_keys(store: ObjectStore, prefix: str, boundaries: Sequence[str] = ()) -> list[str]:
    """Every key under ``prefix`` in key order, listed as ``len(boundaries) + 1`` slices at
    once where the store gains from it (``store.request_parallelism``), else in one listing."""
    cuts = sorted(b for b in set(boundaries) if b.startswith(prefix))
    if store.request_parallelism <= 1 or not cuts:
        return store.list_keys(prefix)
    slices = list(zip([None, *cuts], [*cuts, None], strict=True))

    def one(bounds: tuple[str | None, str | None]) -> list[str]:
        return [obj.key for obj in store.list_range(prefix, *bounds)]

    with ThreadPoolExecutor(min(store.request_parallelism, len(slices))) as pool:
        return [key for part in pool.map(one, slices) for key in part]
