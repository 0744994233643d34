"""The API, dispatchers and workers driven through ``chalice.test.Client`` on moto S3.

Lambda's Invoke is the loopback stand-in (``scripts.invoke_standin``): dispatcher and worker
events are fed back by hand, so the same code paths run as on Lambda.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from unittest import mock

from chalice.local import LambdaContext
from chalice.test import Client

from app import app
from chalicelib import wiring
from chalicelib.config import Settings
from chalicelib.fanout.invoking import LambdaInvoker
from chalicelib.pricing import function_sizes
from chalicelib.storage import layout
from chalicelib.storage.stores import S3Store
from chalicelib.wiring import Runtime
from scripts.invoke_standin import Call, Rule, StandIn
from tests.support import BUCKET

JSON = {"Content-Type": "application/json"}
FIFTY = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"range": {"start": 100, "stop": 10100, "step": 100}}},
    "shards": {"count": 50},
    "seed": 3,
    "fail_shards": [7, 31],
}


def settings(**overrides: Any) -> Settings:
    base = {
        "stage": "dev",
        "backend": "aws",
        "allow_fault_injection": True,  # as the dev stage's config sets it
        "bucket": BUCKET,
        "prefix": "sweeps/test",
        "worker_function": "sweeps-dev-worker",
        "dispatcher_function": "sweeps-dev-dispatcher",
        "dispatch_leaf_shards": 8,
        "dispatch_width": 3,
        "dispatch_backoff_ms": 1,
        "dispatch_threads": 8,
        # chalice.test's Lambda context always has 3 s to live, whatever the config says
        # (workers are given their configured time: ``Harness.run_workers``).
        "deadline_margin_ms": 500,
    }
    return Settings(**(base | overrides))  # type: ignore[arg-type]


class Harness:
    def __init__(self, s3_store: S3Store, rule: Rule | None = None, **overrides: Any) -> None:
        self.store = s3_store
        self.order: list[tuple[str, bool]] = []
        self.dispatched: list[dict[str, Any]] = []
        self.lambda_ = StandIn(rule=rule, on_call=self._seen).start()
        self.settings = settings(**overrides)
        endpoint = self.lambda_.endpoint()
        invoker = LambdaInvoker(
            {"worker": "sweeps-dev-worker", "dispatcher": "sweeps-dev-dispatcher"},
            lambda: endpoint,
            self.settings.worker_reserved_concurrency,  # as chalicelib.wiring builds it
            self.settings.worker_concurrency_fallback,
        )
        wiring.use(Runtime(self.settings, s3_store, invoker))
        self.client = Client(app, stage_name="dev")

    def close(self) -> None:
        wiring.use(None)
        self.lambda_.stop()

    def _seen(self, call: Call) -> None:
        run_id = call.payload.get("run_id") or call.payload.get("dispatch", {}).get("run_id")
        self.order.append((call.function, self.store.exists(layout.manifest(run_id))))

    def post(self, body: Any, path: str = "/sweeps", headers: dict[str, str] = JSON) -> Any:
        raw = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.http.post(path, headers=headers, body=raw)

    def get(self, path: str) -> Any:
        return self.client.http.get(path)

    def run_dispatchers(self) -> int:
        """Feed dispatcher events back until the tree is done; returns how many ran."""
        ran = 0
        while calls := self.lambda_.take("dispatcher"):
            for call in calls:
                self.client.lambda_.invoke("dispatcher", call.payload)
                self.dispatched.append(call.payload)
                ran += 1
        return ran

    def run_workers(self, calls: list[Call] | None = None) -> None:
        """Each worker event through chalice.test, its context given the worker's configured
        timeout as Lambda gives it: chalice.test's 3 s (which dispatchers keep: the pacing
        tests stop an invocation on it) made a shard on a loaded machine fail as TIMEOUT."""
        timeout_ms = function_sizes("dev")["worker"].timeout_s * 1000
        context = partial(LambdaContext, max_runtime_ms=timeout_ms)
        with mock.patch("chalice.test.LambdaContext", context):
            for call in calls if calls is not None else self.lambda_.take("worker"):
                self.client.lambda_.invoke("worker", call.payload)

    def all_keys(self) -> list[str]:
        return [o.key for o in self.store.list("")]


def body_of(response: Any) -> Any:
    return json.loads(response.body)
