"""A worker validates a run's request once per process, not once per shard; a request that
differs in anything, including the order of its axes, is validated (and parsed) afresh."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.model import events
from chalicelib.model.events import parse_task, task_payload
from chalicelib.model.validation import validate_request

BODY: dict[str, Any] = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"values": [10, 20, 30, 40]}},
    "shards": {"count": 2},
}
RUN_ID = "20261201T100000000Z-0123456789ab"


def payload(body: dict[str, Any], shard: int) -> dict[str, Any]:
    return task_payload(RUN_ID, shard, (2 * shard, 2 * shard + 2), "2026-12-01", body)


def test_shards_of_one_run_share_one_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = validate_request

    def counting(body: Any, limits: Any) -> Any:
        calls.append(body)
        return real(body, limits)

    events._validated.cache_clear()
    monkeypatch.setattr(events, "validate_request", counting)
    tasks = [parse_task(payload(BODY, k)) for k in (0, 1, 0)]
    assert len(calls) == 1 and tasks[0].request is tasks[1].request
    two = BODY | {"parameters": {"a": {"values": [1]}, "b": {"values": [2]}}}
    flipped = BODY | {"parameters": {"b": {"values": [2]}, "a": {"values": [1]}}}
    for body in (two, flipped):
        with pytest.raises(events.InvalidTask):  # monte_carlo_pi takes neither: both invalid
            parse_task(payload(body | {"simulation": "monte_carlo_pi"}, 0))
    assert len(calls) == 3  # each text validated on its own, failures never cached
