"""layout's whole-listing readers (``outcome_ids``, ``usage_counts``) give what its per-key
parsers give for every key, whatever else the listing holds."""

from __future__ import annotations

import random
from collections import Counter

from chalicelib.runs.cost import CRASH_TRY_ENDS
from chalicelib.storage import layout

RUN = "20261206T052642552Z-9b1a25527ee4"


def junk(rng: random.Random, key: str) -> str:
    """A key near one of the layout's: cut, stretched, a character changed, a line break."""
    at = rng.randrange(len(key))
    return rng.choice(
        [
            key[:at],
            key + "x",
            key[:at] + rng.choice("x/-~\n0") + key[at + 1 :],
            "other/" + key,
            key.replace("/", "//", 1),
        ]
    )


def outcome_keys(rng: random.Random) -> list[str]:
    keys = []
    for _ in range(3000):
        status = rng.choice(["succeeded", "failed"])
        shard, attempt = rng.randrange(10 ** rng.randrange(1, 8)), rng.randrange(1, 12)
        key = layout.outcome(RUN, status, "2026-12-06", shard, attempt)  # type: ignore[arg-type]
        keys.append(junk(rng, key) if rng.random() < 0.3 else key)
    return keys


def usage_keys(rng: random.Random) -> list[str]:
    whats = ["shard-{}-succeeded", "shard-{}-raised", "shard-{}-crashed", "initial-0-{}"]
    whats += ["shard-{}-xraised", "shard-0{}-crashed", "shard-{}-raisedx"]
    keys = []
    for k in range(3000):
        entry = layout.Usage(
            rng.choice(["worker", "dispatcher", "compactor"]),
            rng.choice(whats).format(rng.randrange(100)),
            rng.choice([1769, 1024]),
            rng.randrange(30),
            rng.randrange(4),
            rng.randrange(9),
            rng.random() < 0.1,
        )
        key = layout.usage_record(RUN, entry, f"u{k}")
        keys.append(junk(rng, key) if rng.random() < 0.3 else key)
    return keys


def test_outcome_ids_are_parse_outcome_of_every_key() -> None:
    rng = random.Random(1)
    for _ in range(5):
        keys = outcome_keys(rng)
        parsed = [p for k in keys if "\n" not in k and (p := layout.parse_outcome(k))]
        succeeded, failed = layout.outcome_ids(keys)
        assert sorted(succeeded) == sorted(p.shard_id for p in parsed if p.status == "succeeded")
        assert sorted(failed) == sorted(
            (p.shard_id, p.attempt) for p in parsed if p.status == "failed"
        )
        assert succeeded and failed


def test_usage_counts_are_usage_fields_of_every_key_with_the_tries_apart() -> None:
    rng = random.Random(2)
    for _ in range(5):
        keys = usage_keys(rng)
        parsed = [u for k in keys if "\n" not in k and (u := layout.parse_usage(k))]

        def apart(u: layout.Usage) -> bool:
            return u.what.endswith(CRASH_TRY_ENDS) and layout.what_shard(u.what) is not None

        counts, tries = layout.usage_counts(keys, CRASH_TRY_ENDS)
        expected = Counter(
            (u.function, u.memory_mb, u.duration_ms, u.s3_reads, u.s3_writes, u.bound)
            for u in parsed
            if not apart(u)
        )
        assert counts == expected
        assert sorted(tries, key=repr) == sorted((u for u in parsed if apart(u)), key=repr)
        assert tries and counts


def test_empty_listings() -> None:
    assert layout.outcome_ids([]) == ([], [])
    assert layout.usage_counts([], CRASH_TRY_ENDS) == (Counter(), [])


def test_parsed_keys_parses_each_key_once_until_full_then_starts_afresh() -> None:
    """A running run's status polled: the keys seen on the last poll are looked up, only the
    new ones parsed, together; past its bound the memo starts afresh with the call's keys."""
    calls: list[list[str]] = []

    def parse(keys: list[str]) -> list[int | None]:
        calls.append(keys)
        return [int(k) if k.isdigit() else None for k in keys]

    memo = layout.ParsedKeys(parse, most=6)
    assert memo(["1", "2", "x"]) == [1, 2, None]
    assert memo(["2", "1", "3", "x"]) == [2, 1, 3, None]
    assert memo(["3", "1"]) == [3, 1]
    assert calls == [["1", "2", "x"], ["3"]]
    keys = [str(k) for k in range(6)]
    assert memo(keys) == list(range(6))  # 4 kept + 3 new > 6: afresh, with these keys
    assert calls[2:] == [["0", "4", "5"]]
    assert memo(["0", "1", "x"]) == [0, 1, None]
    assert calls[3:] == [["x"]]  # "x" was dropped, "0" and "1" kept
