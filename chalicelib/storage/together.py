"""Independent store requests issued at once, where the store gains from it.

On S3 each request is a round trip (~20 ms); a read made of six independent requests one after
the other costs six of them, issued together about one. A local folder gains nothing from
threads (the GIL serialises the work), so there each call runs when its value is first asked
for, and a call whose value nobody asks for never runs: status issues the compactor records'
listing for the case it needs them (a summary's cost to check), and a running run's status
never asks; on a local folder that listing reads the whole usage folder of the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Protocol, TypeVar

from chalicelib.storage.stores import ObjectStore

T = TypeVar("T")


class Issue(Protocol):
    """Starts a call; returns how to wait for its value."""

    def __call__(self, call: Callable[[], T], /) -> Callable[[], T]: ...


# Requests one read issues together: status's are six or seven.
WIDTH = 8


@contextmanager
def together(store: ObjectStore) -> Iterator[Issue]:
    """``issue(call)`` starts ``call`` and returns how to wait for its value (which re-raises
    its exception). Every call issued has ended when the block is left; on a store that gains
    nothing from threads, a call runs on the first wait for it (once), or not at all."""
    if store.request_parallelism <= 1:
        yield _Lazy
        return
    with ThreadPoolExecutor(min(WIDTH, store.request_parallelism)) as pool:

        def later(call: Callable[[], T]) -> Callable[[], T]:
            return pool.submit(call).result

        yield later


class _Lazy[T]:
    """A call run on the first wait for its value, which every later wait returns (or whose
    exception every wait re-raises)."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call: Callable[[], T] | None = call
        self._value: T | None = None
        self._error: Exception | None = None

    def __call__(self) -> T:
        if self._call is not None:
            call, self._call = self._call, None
            try:
                self._value = call()
            except Exception as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def read_ahead[R](
    store: ObjectStore, keys: Iterable[str], read: Callable[[str], R], most: int | None = None
) -> Generator[R]:
    """``read`` of each key (``store.get``, or a reader of its own), in the keys' order, with up
    to ``store.request_parallelism`` reads in flight (or ``most``, if fewer): the compactor
    reads every per-shard file of a run (200,000 at 100,000 shards), which one round trip at a
    time (~20 ms on S3) would take over an hour, past its function's timeout. At most that
    many objects are held before they are taken (a caller reading files that may be large
    says how many it can hold). On a folder (one request at a time) each is read when taken."""
    width = store.request_parallelism if most is None else min(most, store.request_parallelism)
    if width <= 1:
        yield from map(read, keys)
        return
    with ThreadPoolExecutor(width) as pool:
        pending: deque[Future[R]] = deque()
        try:
            for key in keys:
                pending.append(pool.submit(read, key))
                if len(pending) >= width:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for left in pending:  # the caller stopped early (or a read failed)
                left.cancel()
