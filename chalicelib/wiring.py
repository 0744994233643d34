"""The process's wiring: settings, store, invoker and catalog, built once on first use.

Chalice's todo-app style: ``app.py`` asks for ``current()`` and hands the pieces to the
handlers; tests install their own ``Runtime`` (a temp folder, moto S3, a loopback Invoke
server) with ``use()``. The catalog is built only when a dispatcher first needs it: its module
pulls in pyarrow, which the API path must not. Nothing but ``app.py`` and tests imports this
module: it is the one place that knows every concrete class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.fanout.invoking import Invoker, LambdaInvoker
from chalicelib.storage.pacing import PacedStore
from chalicelib.storage.stores import LocalStore, ObjectStore, S3Store

if TYPE_CHECKING:
    from chalicelib.analytics.catalog import Catalog


@dataclass
class Runtime:
    settings: Settings
    store: ObjectStore
    invoker: Invoker

    @cached_property
    def catalog(self) -> Catalog:
        from chalicelib.analytics.catalog import catalog_for

        return catalog_for(self.settings)


_current: Runtime | None = None


def build(settings: Settings) -> Runtime:
    if settings.backend == "local":
        from chalicelib.api.local_server import answer_without_delay
        from chalicelib.fanout.local_lambda import LocalInvoker

        answer_without_delay()

        local = LocalStore(settings.local_root)
        local_invoker = LocalInvoker(settings, local)
        if settings.local_reconciler:  # chalice local runs no schedules (.chalice: local stage)
            local_invoker.start_reconciler()
        return Runtime(settings, local, local_invoker)
    assert settings.bucket and settings.worker_function and settings.dispatcher_function
    aws.check_sdk()  # a deployed function runs the botocore it shipped, or says which it found
    store = PacedStore(S3Store(settings.bucket, settings.prefix, aws.s3))
    pool = settings.dispatch_threads + 4
    names = {"worker": settings.worker_function, "dispatcher": settings.dispatcher_function}
    if settings.compactor_function:
        names["compactor"] = settings.compactor_function
    invoker = LambdaInvoker(
        names,
        lambda: aws.lambda_endpoint(pool),
        settings.worker_reserved_concurrency,
        settings.worker_concurrency_fallback,
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
