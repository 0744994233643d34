"""Independent store requests issued at once, where the store gains from it.

On S3 each request is a round trip (~20 ms); a read made of six independent requests one after
the other costs six of them, issued together about one. A local folder gains nothing from
threads (the GIL serialises the work), so there each call runs at once, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
    its exception). Every call issued has ended when the block is left."""
    if store.list_parallelism <= 1:

        def now(call: Callable[[], T]) -> Callable[[], T]:
            try:
                value = call()
            except Exception as exc:
                error = exc

                def fail() -> T:
                    raise error

                return fail
            return lambda: value

        yield now
        return
    with ThreadPoolExecutor(min(WIDTH, store.list_parallelism)) as pool:

        def later(call: Callable[[], T]) -> Callable[[], T]:
            return pool.submit(call).result

        yield later
