"""A success being written while another writer records the shard's final failure.

A worker claims its shard's success lock, then uploads the results (seconds on S3) before its
outcome lands. Lambda delivers events at least once: a second delivery that starts meanwhile
and finds the run cancelled records a final CANCELLED (it sees no success outcome yet). Status
must not find the run complete then, store its summary with the shard failed, and have the
success land after it: the shard is pending until the success lands or its writer's time is
over (``storage.summary.successes_on_their_way``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.execution.worker import run_task
from chalicelib.runs.cancel import cancel
from chalicelib.runs.status import status
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore
from tests.support.inline import Inline

SHARD = 4
BODY = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"range": {"start": 10, "stop": 250, "step": 1}}},
    "shards": {"count": 24},
}


class PausingStore(LocalStore):
    """Holds the create of shard SHARD's results file until ``go`` is set."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.uploading, self.go = threading.Event(), threading.Event()

    def create(self, key: str, data: bytes) -> bool:
        if key.startswith("results/") and key.endswith(f"shard-{SHARD:06d}.parquet"):
            self.uploading.set()
            self.go.wait(30)
        return super().create(key, data)


@dataclass
class Held:
    """A run whose every shard but SHARD succeeded; SHARD's event, not yet delivered."""

    store: LocalStore
    run_id: str
    event: dict[str, Any]


@pytest.fixture
def held(tmp_path: Path) -> Held:
    store = LocalStore(tmp_path)
    inline = Inline(store)
    events: list[dict[str, Any]] = []

    def worker(payload: dict[str, Any]) -> Any:
        if payload["shard_id"] == SHARD:
            events.append(payload)
            return None
        return inline.run_worker(payload)

    inline.worker = worker
    run_id = inline.submit(BODY)
    inline.drain()
    return Held(store, run_id, events[0])


@pytest.fixture
def first_copy_uploading(held: Held, tmp_path: Path) -> Iterator[tuple[PausingStore, list[Any]]]:
    """The first delivery of SHARD's event, held while it uploads its results."""
    pausing = PausingStore(tmp_path)
    answers: list[Any] = []
    copy = threading.Thread(
        target=lambda: answers.append(run_task(held.event, None, pausing, 1000))
    )
    copy.start()
    assert pausing.uploading.wait(30)
    yield pausing, answers
    pausing.go.set()
    copy.join(30)


def test_a_success_on_its_way_keeps_the_run_running_until_it_lands(
    held: Held, first_copy_uploading: tuple[PausingStore, list[Any]]
) -> None:
    pausing, answers = first_copy_uploading
    cancel(held.store, held.run_id)
    second = run_task(held.event, None, held.store, 1000)
    assert second["status"] == "failed" and second["error_code"] == "CANCELLED"

    during = status(held.store, held.run_id)
    assert during["complete"] is False
    assert during["shards"] == {"succeeded": 23, "failed": 0, "pending": 1}
    assert not held.store.exists(layout.summary(held.run_id))

    pausing.go.set()
    for _ in range(300):
        if answers:
            break
        time.sleep(0.1)
    assert answers and answers[0]["status"] == "succeeded"
    after = status(held.store, held.run_id)
    assert after["complete"] is True and after["failed_shards"] == []
    assert after["shards"] == {"succeeded": 24, "failed": 0, "pending": 0}


@pytest.mark.parametrize(
    "claim",
    [
        {"attempt": 1, "writing_until_ms": 1},  # its writer's time is over: it died
        {"attempt": 1},  # written before locks said until when
    ],
)
def test_a_claim_whose_writer_is_gone_does_not_hold_the_run(
    held: Held, claim: dict[str, int]
) -> None:
    """A worker that claimed the lock and died (its retries too): the final failure another
    writer recorded stands, and the run completes at once."""
    held.store.put(layout.success_lock(held.run_id, SHARD), json.dumps(claim).encode())
    cancel(held.store, held.run_id)
    assert run_task(held.event, None, held.store, 1000)["error_code"] == "CANCELLED"
    done = status(held.store, held.run_id)
    assert done["complete"] is True and done["failed_shards"] == [SHARD]
