"""Stores that behave like S3 where it matters for scale, for tests and benchmarks.

``MemoryStore`` is a dict with S3's semantics (conditional create, ordered listings);
``S3LatencyStore`` adds S3's cost model (each request a round trip, listings in pages of 1,000
keys, a bounded number of requests in flight: what the client's connection pool allows);
``SlowDownStore`` answers SlowDown, as S3 does while a prefix scales, for every request above a
sustained rate per prefix.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from chalicelib.storage.stores import ObjectStore, SlowDown, StoredObject, prefix_span


class MemoryStore(ObjectStore):
    """Objects in a dict; listings sort the keys once per change, not once per call."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._sorted: list[str] | None = None

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            if key not in self.objects:
                self._sorted = None
            self.objects[key] = data

    def create(self, key: str, data: bytes) -> bool:
        """As both real stores answer: a key that already holds ``data`` counts as made (a
        retry of this create), so a claim is exclusive only with unique bytes."""
        with self._lock:
            if key in self.objects:
                return self.objects[key] == data
            self.objects[key] = data
            self._sorted = None
            return True

    def get(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise KeyError(key) from None

    def _keys(self) -> list[str]:
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(self.objects)
            return self._sorted

    def list(self, prefix: str) -> Iterator[StoredObject]:
        return self.list_after(prefix, "")

    def list_after(self, prefix: str, start_after: str) -> Iterator[StoredObject]:
        keys = self._keys()  # a snapshot: writes replace the sorted list, never change it
        at, end = prefix_span(keys, prefix, start_after)
        yield from map(StoredObject, keys[at:end])

    def exists(self, key: str) -> bool:
        return key in self.objects

    def delete(self, key: str) -> None:
        with self._lock:
            if self.objects.pop(key, None) is not None:
                self._sorted = None

    def describe(self) -> str:
        return "memory"


class S3LatencyStore(MemoryStore):
    """S3's cost model: every request takes ``latency_s``, a listing page holds ``page`` keys,
    and at most ``in_flight`` requests run at once (the client's connection pool)."""

    def __init__(self, latency_s: float = 0.020, page: int = 1000, in_flight: int = 32) -> None:
        super().__init__()
        self.latency_s = latency_s
        self.page = page
        self.request_parallelism = in_flight
        self._slots = threading.BoundedSemaphore(in_flight)
        self._count = threading.Lock()
        self.requests = 0
        self.running = 0
        self.most_in_flight = 0  # the most requests that were in flight together

    def _request(self) -> None:
        with self._slots:
            with self._count:
                self.requests += 1
                self.running += 1
                self.most_in_flight = max(self.most_in_flight, self.running)
            time.sleep(self.latency_s)
            with self._count:
                self.running -= 1

    def put(self, key: str, data: bytes) -> None:
        self._request()
        super().put(key, data)

    def create(self, key: str, data: bytes) -> bool:
        self._request()
        return super().create(key, data)

    def get(self, key: str) -> bytes:
        self._request()
        return super().get(key)

    def exists(self, key: str) -> bool:
        self._request()
        return super().exists(key)

    def delete(self, key: str) -> None:
        self._request()
        super().delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        """DeleteObjects: a request per 1,000 keys."""
        for batch in itertools.batched(keys, 1000):
            self._request()
            for key in batch:
                MemoryStore.delete(self, key)

    def list_after(self, prefix: str, start_after: str) -> Iterator[StoredObject]:
        """Pages of ``page`` keys, each a request made when the caller wants its first key.
        A page starts where the last ended, found by bisection, as S3 starts a listing at
        its StartAfter key or continuation token: neither walks the keys before it."""
        keys = self._keys()
        at, end = prefix_span(keys, prefix, start_after)
        while True:
            self._request()
            page = keys[at : min(at + self.page, end)]
            yield from map(StoredObject, page)
            at += len(page)
            if at >= end:
                return

    def list_range(
        self, prefix: str, after: str | None, until: str | None
    ) -> Iterator[StoredObject]:
        """``ObjectStore.list_range``'s requests exactly (pages from ``after``, until a page
        holds a key past ``until`` or the prefix ends), without its per-key Python: the
        model charges S3's round trips, not this process's walk over its own list."""
        keys = self._keys()
        at, end = prefix_span(keys, prefix, after or "")
        while True:
            self._request()
            page = keys[at : min(at + self.page, end)]
            stop = len(page) if until is None else bisect.bisect_right(page, until)
            yield from map(StoredObject, page[:stop])
            at += len(page)
            if stop < len(page) or at >= end:
                return


class SlowDownStore(MemoryStore):
    """Answers SlowDown (``stores.SlowDown``, as ``S3Store`` raises it once botocore's own
    retries are spent) for every request above ``rate`` per second on one prefix (the key up
    to its last ``/``; listings count on their prefix), over a sliding one-second window: what
    S3 does while it scales a prefix up. Counts how many requests it refused."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.rate = rate
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._gate = threading.Lock()
        self.refused = 0

    def _admit(self, key: str) -> None:
        prefix = key.rsplit("/", 1)[0]
        now = self.clock()
        with self._gate:
            recent = self._recent.setdefault(prefix, deque())
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) >= self.rate:
                self.refused += 1
                raise SlowDown(f"{key}: SlowDown (Please reduce your request rate.)")
            recent.append(now)

    def put(self, key: str, data: bytes) -> None:
        self._admit(key)
        super().put(key, data)

    def create(self, key: str, data: bytes) -> bool:
        self._admit(key)
        return super().create(key, data)

    def get(self, key: str) -> bytes:
        self._admit(key)
        return super().get(key)

    def exists(self, key: str) -> bool:
        self._admit(key)
        return super().exists(key)

    def delete(self, key: str) -> None:
        self._admit(key)
        super().delete(key)

    def list_after(self, prefix: str, start_after: str) -> Iterator[StoredObject]:
        self._admit(prefix + "*")
        return super().list_after(prefix, start_after)
