"""Listing a large folder as several key ranges at once.

A run of 100,000 shards has 100,000+ outcome keys: one listing of them on S3 is 100 pages,
each a round trip (~20 ms), one after the other. Split at boundaries that sort between keys,
the same keys come back from ``ranges`` slices listed concurrently (``ObjectStore.list_range``
starts each at its lower bound), after the folder's first page, so the wall time is about two
pages, whatever the count. The boundaries only balance the work: any sorted list of strings
partitions the key space into slices that together hold every key exactly once, so a boundary
that matches no key (a run with another date, a shard id of seven digits) costs time, never
correctness.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

from chalicelib.storage.stores import ObjectStore

# Shards per slice: one page of success keys on S3 (ListObjectsV2 returns <= 1,000 keys). One
# fewer than a page: a slice starts at its lower bound (StartAfter) and S3 has no upper one, so
# a slice of exactly 1,000 keys learns it is done only from a second page (the first key past
# its bound), while a slice of 999 sees that key on its first: one request a slice, not two.
SHARDS_PER_RANGE = 999
# Keys in a page of an S3 listing (ListObjectsV2's most).
PAGE = 1000


def shard_boundaries(folder: str, shard_count: int, per: int = SHARDS_PER_RANGE) -> list[str]:
    """Boundaries inside a folder of ``shard-NNNNNN…`` keys, every ``per`` shards: each sorts
    just before the first key of its shard (``layout`` formats shard ids as six digits)."""
    return [f"{folder}shard-{lo:06d}" for lo in range(per, shard_count, per)]


def list_keys(store: ObjectStore, prefix: str, boundaries: Sequence[str] = ()) -> list[str]:
    """Every key under ``prefix`` in key order: where the store gains from it
    (``store.request_parallelism``), its first page, then the rest as the slices between
    the boundaries past that page's last key, listed at once; else one listing.

    The first page alone holds a folder of at most a page of keys: a running run's failures
    and retry markers, nearly always none, cost one LIST request each at 100,000 shards, not
    one a slice (100, each paid at S3's LIST price, and the failures' slices each read a page
    of the successes sorted after them). A larger folder pays that page's round trip before
    its slices."""
    cuts = sorted(b for b in set(boundaries) if b.startswith(prefix))
    if store.request_parallelism <= 1 or not cuts:
        return store.list_keys(prefix)
    # islice takes a page's worth; fewer only where the listing ended, whatever the page. A
    # folder of exactly a page is not known to end there: its slices are listed too.
    first = [obj.key for obj in islice(store.list(prefix), PAGE)]
    if len(first) < PAGE:
        return first
    start = first[-1]
    rest = [cut for cut in cuts if cut > start]
    slices = list(zip([start, *rest], [*rest, None], strict=True))

    def one(bounds: tuple[str, str | None]) -> list[str]:
        return [obj.key for obj in store.list_range(prefix, *bounds)]

    with ThreadPoolExecutor(min(store.request_parallelism, len(slices))) as pool:
        return first + [key for part in pool.map(one, slices) for key in part]
