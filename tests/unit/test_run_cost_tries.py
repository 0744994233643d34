"""runs.cost.charged: one billed invocation per try, however the try died."""

from __future__ import annotations

from chalicelib.runs.cost import charged
from chalicelib.storage.layout import Usage


def raised(shard: int, ms: int = 40, writes: int = 2) -> Usage:
    return Usage("worker", f"shard-{shard}-raised", 1769, ms, 1, writes)


def crashed(shard: int) -> Usage:
    return Usage("worker", f"shard-{shard}-crashed", 1769, 900_000, 0, 0, True)


def test_a_raised_try_that_a_retry_made_good_keeps_its_measured_duration() -> None:
    ok = Usage("worker", "shard-3-succeeded", 1769, 50, 3, 4)
    assert sorted(charged([raised(3), ok]), key=str) == sorted([raised(3), ok], key=str)


def test_tries_that_died_without_a_record_are_still_each_charged_once() -> None:
    # three tries: the first raised (its record), two timed out (none); the recorder saw three
    billed = charged([raised(5), crashed(5), crashed(5), crashed(5)])
    assert [e.duration_ms for e in billed] == [900_000] * 3 and all(e.bound for e in billed)
    assert sum(e.s3_reads + e.s3_writes for e in billed) == 3  # the raised try's requests


def test_two_crashed_deliveries_of_one_shard_are_six_tries_not_twelve() -> None:
    entries = [raised(2), crashed(2)] * 6  # a redrive crashed again: 2 x 3 tries
    assert len(charged(entries)) == 6
