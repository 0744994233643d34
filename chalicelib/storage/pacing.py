"""Riding out S3's SlowDown: any store, its requests retried with backoff while it throttles.

Thousands of workers finishing together write under one prefix; S3 sustains ~3,500 writes/s
per prefix and answers 503 SlowDown above that while it scales the prefix up (aws-facts).
botocore retries a few times and then its standard mode runs out of retry quota (~100
throttles per client); a worker that gave up then would fail its shard, and Lambda's own
retries (1 and 2 minutes later) come back in the same burst. ``PacedStore`` retries each
throttled request itself with capped exponential backoff and full jitter, so the burst
spreads out and every request lands; only a request throttled for longer than ``budget_s``
(120 s by default, well inside a worker's 900 s) surfaces as a StorageError. The budget is
time, not a count of attempts: while a prefix is saturated, which request gets the next free
slot is luck, and a fixed count starves the unlucky ones.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

from chalicelib.storage.stores import ObjectStore, S3Store, SlowDown, StoredObject

T = TypeVar("T")


class PacedStore(ObjectStore):
    def __init__(
        self,
        inner: ObjectStore,
        budget_s: float = 120.0,
        base_s: float = 0.05,
        cap_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.request_parallelism = inner.request_parallelism
        self.budget_s = budget_s
        self.clock = clock
        self.base_s = base_s
        self.cap_s = cap_s
        self.sleep = sleep
        self.throttled = 0  # requests answered SlowDown and retried, for logs and benchmarks

    def _paced(self, call: Callable[[], T]) -> T:
        give_up = self.clock() + self.budget_s
        attempt = 0
        while True:
            try:
                return call()
            except SlowDown:
                if self.clock() >= give_up:
                    raise
                self._wait(attempt)
                attempt += 1

    def _wait(self, attempt: int) -> None:
        self.throttled += 1
        self.sleep(random.random() * min(self.cap_s, self.base_s * (1 << min(attempt, 20))))

    def put(self, key: str, data: bytes) -> None:
        self._paced(lambda: self.inner.put(key, data))

    def create(self, key: str, data: bytes) -> bool:
        return self._paced(lambda: self.inner.create(key, data))

    def create_file(self, key: str, path: Path) -> bool:
        return self._paced(lambda: self.inner.create_file(key, path))

    def scratch(self) -> Path:
        return self.inner.scratch()

    def get(self, key: str) -> bytes:
        return self._paced(lambda: self.inner.get(key))

    def get_file(self, key: str, path: Path) -> None:
        self._paced(lambda: self.inner.get_file(key, path))

    def exists(self, key: str) -> bool:
        return self._paced(lambda: self.inner.exists(key))

    def delete(self, key: str) -> None:
        self._paced(lambda: self.inner.delete(key))

    def delete_many(self, keys: Iterable[str]) -> None:
        """The inner store's batched delete (S3: one DeleteObjects a 1,000 keys), each batch
        paced as the one request it is: without this, a compaction's clean-up on a deployed
        stage fell back to one DELETE a key (100,000 for a 100,000-shard run, past the
        compactor's timeout). A throttled batch is sent again whole: deleting is idempotent."""
        for batch in itertools.batched(keys, S3Store.DELETE_BATCH):
            self._paced(partial(self.inner.delete_many, batch))

    def list(self, prefix: str) -> Iterator[StoredObject]:
        return self.list_range(prefix, None, None)

    def list_after(self, prefix: str, start_after: str) -> Iterator[StoredObject]:
        return self.list_range(prefix, start_after, None)

    def list_range(
        self, prefix: str, after: str | None, until: str | None
    ) -> Iterator[StoredObject]:
        """Lazily, page by page; a page throttled half-way resumes after the last key seen."""
        give_up = self.clock() + self.budget_s
        attempt = 0
        while True:
            try:
                for obj in self.inner.list_range(prefix, after, until):
                    yield obj
                    after = obj.key
                return
            except SlowDown:
                if self.clock() >= give_up:
                    raise
                self._wait(attempt)
                attempt += 1

    def describe(self) -> str:
        return self.inner.describe()
