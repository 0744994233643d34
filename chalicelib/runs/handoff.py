"""Handing a run (or a redrive) to the dispatcher function from the API handler.

The API hands over one event and answers; it never fans out itself, so the 202 costs the same
for 10 shards as for 100,000.
"""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.fanout.invoking import Backoff, Invoker, send
from chalicelib.model.events import DispatchJob
from chalicelib.model.request import Limits


def limits(settings: Settings) -> Limits:
    return Limits(settings.max_points, settings.max_shards, settings.allow_fault_injection)


def to_dispatcher(settings: Settings, invoker: Invoker, job: DispatchJob) -> str | None:
    """None once handed over, else why not. Few attempts: the client is waiting, and API
    Gateway gives up after 29 s."""
    backoff = Backoff(min(4, settings.dispatch_max_attempts), settings.dispatch_backoff_ms)
    return send(invoker, "dispatcher", job.to_payload(), backoff)
