"""Usage records: each invocation a run causes leaves one key saying what it was billed for.

A worker, dispatcher or failure-recorder invocation writes ``usage/run_id=<id>/<key>.json``
with its function, memory, measured duration (rounded up to 1 ms) and S3 requests in the key
itself (``layout.Usage``), so a run's cost is one listing (``runs.cost``), and the same as one
row of the table ``usage`` in the file (a JSON line: ``tables.usage_lines``), so the
``run_cost`` query prices it too. Recording is best effort: a record that cannot be written
makes the cost an underestimate, never fails the work.
"""

from __future__ import annotations

import os
import time
import uuid

from chalicelib.lifetime import billed_from
from chalicelib.logs import logger
from chalicelib.pricing import FunctionSize, function_sizes
from chalicelib.storage import layout
from chalicelib.storage.stores import CountingStore, ObjectStore
from chalicelib.storage.tables import usage_lines


def configured(function: str) -> FunctionSize:
    """``function``'s memory and timeout on the running stage (``SWEEP_STAGE``, the local
    stage by default), as its config sets them."""
    return function_sizes(os.environ.get("SWEEP_STAGE", "local"))[function]


def memory_mb(function: str) -> int:
    """The running function's configured memory: Lambda's own variable, else the stage
    config (the local stage, whose stand-in runs each function in a plain process)."""
    own = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if own and own.isdigit():
        return int(own)
    return configured(function).memory_mb


def record(store: CountingStore, run_id: str, function: str, what: str, started_ns: int) -> None:
    """This invocation's record; ``started_ns`` is its ``time.monotonic_ns()`` at the start.

    Billed as Lambda bills: the duration rounded up to 1 ms, at least 1 (from
    ``lifetime.billed_from``: an on-demand environment's first invocation includes its
    INIT). Integer nanoseconds keep a whole number of ms whole: with float seconds, 3 ms
    measured as ``t + 0.003 - t`` came out as 3.0000000000001 ms and was billed 4."""
    duration_ms = max(1, -(-(time.monotonic_ns() - billed_from(started_ns)) // 1_000_000))
    store.writes += 1  # the record's own PUT
    entry = layout.Usage(
        function, what, memory_mb(function), duration_ms, store.reads, store.writes
    )
    write(store.inner, run_id, entry)


def write(store: ObjectStore, run_id: str, entry: layout.Usage, unique: str | None = None) -> None:
    """``unique`` names the record among its kind (default: a random name); a writer that may
    run twice for one invocation (a destination record delivered twice) gives the same name
    each time, so the second PUT replaces the first instead of charging it again."""
    try:
        key = layout.usage_record(run_id, entry, unique or uuid.uuid4().hex[:12])
        store.put(key, usage_lines([entry]))
    except Exception:
        logger.warning("usage record not written; the run's cost misses it", exc_info=True)
