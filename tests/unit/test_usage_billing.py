"""usage.record bills an invocation as Lambda does: its measured duration rounded up to 1 ms."""

from __future__ import annotations

import os
import subprocess
import sys
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


FIRST_TWO = """
import time
time.sleep(0.3)  # what a runtime's start and a handler's imports take before it runs
from chalicelib.execution import usage
for _ in range(2):
    t = time.monotonic_ns()
    print((t - usage.billed_from(t)) // 1_000_000)
"""


@pytest.mark.parametrize(("initialization", "billed"), [("on-demand", True), ("", False)])
def test_an_environments_first_invocation_is_billed_from_its_process_start(
    initialization: str, billed: bool
) -> None:
    """Lambda bills the INIT phase of an on-demand environment (since August 2025), and its
    first invocation's lazy imports come before the handler's own clock: that invocation is
    billed from the process's start (read from /proc in a fresh interpreter that slept
    0.3 s before the handler ran); the next one from its own start; and nowhere but on
    Lambda (a local stage's process serves many functions)."""
    env = {**os.environ, "AWS_LAMBDA_INITIALIZATION_TYPE": initialization}
    out = subprocess.run(
        [sys.executable, "-c", FIRST_TWO], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    first, second = int(out[0]), int(out[1])
    if billed:
        assert first >= 300
    else:
        assert first == 0
    assert second == 0
