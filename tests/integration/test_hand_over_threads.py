"""A leaf dispatcher hands over on many threads only where a hand-over waits for a round trip."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.fanout.invoking import Function
from chalicelib.fanout.local_lambda import LocalInvoker
from chalicelib.storage.stores import LocalStore
from tests.support.inline import Inline, QueueInvoker
from tests.support.store_models import MemoryStore

SWEEP = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"range": {"start": 1, "stop": 41, "step": 1}}},
    "shards": {"count": 40},
}


class Recording(QueueInvoker):
    """A queue whose hand-overs note the thread they ran on, and answer ``network``."""

    def __init__(self, network: bool) -> None:
        super().__init__()
        self.network = network
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        with self._lock:
            if function == "worker":
                self.threads.add(threading.current_thread().name)
            super().invoke(function, payload)

    def waits_on_network(self) -> bool:
        return self.network


@pytest.mark.parametrize("network", [True, False])
def test_a_leaf_uses_its_threads_only_for_hand_overs_that_wait(network: bool) -> None:
    settings = Settings(stage="dev", dispatch_backoff_ms=1, dispatch_threads=8)
    inline = Inline(MemoryStore(), settings)
    inline.invoker = recording = Recording(network)
    run_id = inline.submit(SWEEP)
    assert inline.drain() == 40, run_id
    if network:  # the leaf's own pool: its threads, not the dispatcher's
        assert len(recording.threads) > 1
        assert threading.current_thread().name not in recording.threads
    else:  # every hand-over on the dispatcher's thread
        assert recording.threads == {threading.current_thread().name}


def test_the_local_stage_hands_over_without_waiting(tmp_path: Any) -> None:
    settings = Settings(local_root=tmp_path)
    invoker = LocalInvoker(settings, LocalStore(tmp_path))
    try:
        assert invoker.waits_on_network() is False
        assert QueueInvoker().waits_on_network() is True
    finally:
        invoker.close()
