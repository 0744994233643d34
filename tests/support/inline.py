"""A whole deployment in one thread: the API's functions, the dispatcher tree and the workers run
in-process against any store, events queued in order, as Lambda would deliver them.

For tests and benchmarks at sizes where moto or ``chalice local`` would take minutes: the
code paths are the deployed ones (``submit``, ``dispatcher.run_event``, ``worker.run_task``,
``reconcile``); only the transport is a queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from chalicelib.analytics.catalog import NoCatalog
from chalicelib.config import Settings
from chalicelib.execution.compaction import compact_event
from chalicelib.execution.worker import run_task
from chalicelib.fanout.dispatcher import run_event
from chalicelib.fanout.invoking import Function, Invoker, encode
from chalicelib.runs.submit import submit
from chalicelib.storage.stores import ObjectStore


class QueueInvoker(Invoker):
    """Invoke puts the event (through JSON, as a real one travels) on a queue."""

    def __init__(self) -> None:
        self.queue: deque[tuple[Function, dict[str, Any]]] = deque()
        self.sent: dict[Function, int] = {"worker": 0, "dispatcher": 0, "compactor": 0}

    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        import json

        self.queue.append((function, json.loads(encode(payload))))
        self.sent[function] += 1


class Inline:
    """``submit`` then ``drain``: every queued event runs, and what it queues, until none is
    left. ``worker`` may be replaced (e.g. to drop or duplicate deliveries)."""

    def __init__(self, store: ObjectStore, settings: Settings | None = None) -> None:
        self.store = store
        self.settings = settings or Settings(
            stage="dev", dispatch_backoff_ms=1, allow_fault_injection=True
        )
        self.invoker = QueueInvoker()
        self.worker: Callable[[dict[str, Any]], Any] = self.run_worker

    def submit(self, body: dict[str, Any]) -> str:
        answer = submit(self.settings, self.store, self.invoker, body)
        run_id: str = answer["run_id"]
        return run_id

    def run_worker(self, payload: dict[str, Any]) -> Any:
        return run_task(payload, None, self.store, self.settings.deadline_margin_ms)

    def drain(self) -> int:
        """Run every event until the queue is empty; returns how many workers ran."""
        workers = 0
        while self.invoker.queue:
            function, payload = self.invoker.queue.popleft()
            if function == "dispatcher":
                run_event(payload, self.store, self.invoker, self.settings, NoCatalog())
            elif function == "compactor":
                compact_event(payload, self.store, self.settings, NoCatalog())
            else:
                self.worker(payload)
                workers += 1
        return workers
