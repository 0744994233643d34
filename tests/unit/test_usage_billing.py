"""usage.record bills an invocation as Lambda does: its measured duration rounded up to 1 ms."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from chalicelib.execution import usage
from chalicelib.storage import layout
from chalicelib.storage.stores import CountingStore, LocalStore

RUN_ID = "20261126T100000000Z-usage0000000"
STARTED_NS = 123_456_789_000_000  # any monotonic reading: only differences count


@pytest.mark.parametrize(
    ("took_ns", "billed_ms"),
    [
        (1_200_000, 2),  # 1.2 ms: up, not to the nearest
        (300_000, 1),  # 0.3 ms: up to the 1 ms minimum, not down to 0
        (3_000_000, 3),  # exactly 3 ms: 3, not 4
        (3_000_001, 4),  # a nanosecond over: the next ms
        (0, 1),  # nothing measurable is still an invocation of 1 ms
    ],
)
def test_a_duration_is_billed_rounded_up_to_the_ms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, took_ns: int, billed_ms: int
) -> None:
    """The clock is the module's ``time.monotonic_ns``, set to read ``took_ns`` after the
    start: no sleeping, so the figure is exact. The record is read back from its key, as
    the run's cost reads it."""
    clock = types.SimpleNamespace(monotonic_ns=lambda: STARTED_NS + took_ns)
    monkeypatch.setattr(usage, "time", clock)
    store = LocalStore(tmp_path)
    counting = CountingStore(store)
    counting.reads, counting.writes = 3, 2  # what the invocation asked of S3 before its record
    usage.record(counting, RUN_ID, "worker", "shard-0-succeeded", STARTED_NS)
    (obj,) = store.list(layout.usage_prefix(RUN_ID))
    entry = layout.parse_usage(obj.key)
    assert entry == layout.Usage(
        "worker", "shard-0-succeeded", usage.memory_mb("worker"), billed_ms, 3, 3
    )  # the record's own PUT is one more write
