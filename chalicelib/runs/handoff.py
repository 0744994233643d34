"""Handing a run (or a redrive) to the dispatcher function from the API handler.

The API hands over one event and answers; it never fans out itself, so the 202 costs the same
for 10 shards as for 100,000.
"""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.fanout.invoking import Backoff, Invoker, send
from chalicelib.model.events import DispatchJob
from chalicelib.model.request import Limits

# Invoke attempts the API handler makes at most (SWEEP_DISPATCH_MAX_ATTEMPTS may allow more).
API_MAX_ATTEMPTS = 4


def limits(settings: Settings) -> Limits:
    return Limits(settings.max_points, settings.max_shards, settings.allow_fault_injection)


def to_dispatcher(settings: Settings, invoker: Invoker, job: DispatchJob) -> str | None:
    """None once handed over, else why not. Few attempts: the client is waiting, and API
    Gateway gives up after 29 s."""
    backoff = Backoff.from_settings(settings, at_most=API_MAX_ATTEMPTS)
    return send(invoker, "dispatcher", job.to_payload(), backoff)
