"""The process's wiring: settings, store, invoker and catalog, built once on first use.

Chalice's todo-app style: handlers ask for ``current()``; tests install their own ``Runtime``
(a temp folder, moto S3, a recording Lambda client) with ``use()``. The catalog is built only
when a dispatcher first needs it: its module pulls in pyarrow, which the API path must not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from chalicelib import clients
from chalicelib.invoking import Invoker, LambdaInvoker
from chalicelib.settings import Settings
from chalicelib.stores import LocalStore, ObjectStore, S3Store

if TYPE_CHECKING:
    from chalicelib.catalog import Catalog


@dataclass
class Runtime:
    settings: Settings
    store: ObjectStore
    invoker: Invoker

    @cached_property
    def catalog(self) -> Catalog:
        from chalicelib.catalog import catalog_for

        return catalog_for(self.settings)


_current: Runtime | None = None


def build(settings: Settings) -> Runtime:
    if settings.backend == "local":
        from chalicelib.local_backend import LocalInvoker

        return Runtime(settings, LocalStore(settings.local_root), LocalInvoker(settings))
    assert settings.bucket and settings.worker_function and settings.dispatcher_function
    store = S3Store(settings.bucket, settings.prefix, clients.s3)
    pool = settings.dispatch_threads + 4
    invoker = LambdaInvoker(
        {"worker": settings.worker_function, "dispatcher": settings.dispatcher_function},
        lambda: clients.lambda_endpoint(pool),
    )
    return Runtime(settings, store, invoker)


def current() -> Runtime:
    global _current
    if _current is None:
        _current = build(Settings.from_env())
    return _current


def use(runtime: Runtime | None) -> None:
    """Install a runtime (tests), or clear it so the next ``current()`` rebuilds from env."""
    global _current
    _current = runtime
