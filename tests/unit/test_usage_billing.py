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
import sys, time
from chalicelib import lifetime
time.sleep(0.2)  # INIT: the runtime's start and the handler module's imports
lifetime.initialised()
time.sleep(0.5)  # initialised ahead of its first invocation (proactive), it waits unbilled

@lifetime.invoked
def handler(refused):
    time.sleep(0.05)  # what the first invocation imports lazily, before the handler's clock
    t = time.monotonic_ns()
    return "-" if refused else (t - lifetime.billed_from(t)) // 1_000_000

print(lifetime._Process.init_ns // 1_000_000)
print(handler(sys.argv[1] == "refused"), handler(False))
"""


@pytest.mark.parametrize(
    ("initialization", "first"),
    [("on-demand", "billed"), ("on-demand", "refused"), ("", "not on Lambda")],
)
def test_an_environments_first_invocation_is_billed_with_its_init_and_only_it(
    initialization: str, first: str
) -> None:
    """Lambda bills an on-demand environment's INIT (since August 2025) with its first
    invocation. In a fresh interpreter: INIT (its start and a 0.2 s import) is measured when
    the handler module is imported; the environment then waits 0.5 s (initialised ahead of
    its first invocation: not billed); the first invocation's lazy imports (0.05 s) come
    before the handler's own clock. Billed: INIT + the lazy imports, never the wait. A first
    invocation that leaves no record (a refused delivery) takes the INIT with it: the next is
    billed from its own start. Nowhere but on Lambda (a local stage's process serves many
    functions)."""
    env = {**os.environ, "AWS_LAMBDA_INITIALIZATION_TYPE": initialization}
    out = subprocess.run(
        [sys.executable, "-c", FIRST_TWO, first],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    init_ms, one, two = int(out[0]), out[1], int(out[2])
    assert init_ms >= 200
    if first == "billed":
        assert init_ms + 50 <= int(one) < init_ms + 50 + 250  # the 0.5 s wait is not in it
    elif first == "refused":
        assert one == "-"
    else:
        assert int(one) == 0
    assert two == 0
