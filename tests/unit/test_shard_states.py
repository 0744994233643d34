"""``ShardStates.by_state`` puts each shard under the state ``state`` gives it, in ascending
lists, asking ``state`` only of shards with a failed attempt."""

from __future__ import annotations

import random

import pytest

from chalicelib.storage.shard_states import ShardStates


def random_states(rng: random.Random) -> ShardStates:
    count = rng.randrange(0, 400)
    states = ShardStates(count)
    for k in range(count):
        roll = rng.random()
        if roll < 0.5:
            states.succeeded.add(k)
        if rng.random() < 0.3:  # a failed attempt, succeeded later or not
            attempt = rng.randrange(1, 4)
            states.latest_failure[k] = attempt
            if rng.random() < 0.3:
                states.retrying.add((k, attempt))
            if rng.random() < 0.3:
                states.redriven_after[k] = rng.randrange(0, 5)
    return states


def test_by_state_is_state_of_every_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    real = ShardStates.state
    asked: list[int] = []

    def state(self: ShardStates, k: int) -> str:
        asked.append(k)
        return real(self, k)

    for _ in range(300):
        states = random_states(rng)
        expected: dict[str, list[int]] = {"succeeded": [], "failed": [], "pending": []}
        for k in range(states.count):
            expected[real(states, k)].append(k)
        asked.clear()
        monkeypatch.setattr(ShardStates, "state", state)
        assert states.by_state() == expected
        monkeypatch.setattr(ShardStates, "state", real)
        assert set(asked) <= set(states.latest_failure)
