"""This process's life as Lambda bills it: how long its INIT took, and which invocation is its
first.

Lambda bills the INIT phase of an on-demand execution environment (ZIP functions on managed
runtimes, since 1 August 2025) with its first invocation. INIT ends when the handler module
has been imported (``initialised``, the last line of ``app.py``); what a first invocation
imports lazily afterwards is part of that invocation. An environment may also be initialised
ahead of its first invocation (Lambda's proactive initialisation), and may serve refused
deliveries that leave no usage record: so the INIT is added to the environment's first
invocation as its measured length, never as the time since the process started, and only to
the invocation that is the first (``invoked`` counts them at the handler's entry).

Pyarrow-free, so ``app.py`` can import it without loading what only some functions need.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class _Process:
    init_ns: int | None = None  # the INIT's length, once the handler module is imported
    invocations = 0
    entered_ns = 0  # when the current invocation entered its handler
    init_billed = False


def process_started_ns() -> int | None:
    """When this process started, on the ``time.monotonic_ns()`` clock (Linux's /proc: the
    start in clock ticks since boot, against the boot-time clock); None where unreadable."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime
        age = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - ticks * 10**9 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.monotonic_ns() - max(0, age)


def initialised() -> None:
    """The handler module is imported: INIT is over; its length is kept."""
    started = process_started_ns()
    if started is not None and _Process.init_ns is None:
        _Process.init_ns = time.monotonic_ns() - started


def invoked[Handler: Callable[..., Any]](handler: Handler) -> Handler:
    """``handler``, counting its invocations and noting when each entered it."""

    @functools.wraps(handler)
    def counted(*args: Any, **kwargs: Any) -> Any:
        _Process.invocations += 1
        _Process.entered_ns = time.monotonic_ns()
        return handler(*args, **kwargs)

    return counted  # type: ignore[return-value]  # same call signature as handler


def billed_from(started_ns: int) -> int:
    """Where an invocation's billed time starts, on the ``time.monotonic_ns()`` clock: at
    ``started_ns`` (its handler's own clock), except for an on-demand environment's first
    invocation (``AWS_LAMBDA_INITIALIZATION_TYPE``): from its entry into the handler (the
    lazy imports before ``started_ns``: a worker's numpy and pyarrow, about 0.6 s), less its
    INIT's length. Only on Lambda, and once: a local stage's process serves many functions."""
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "on-demand":
        return started_ns
    if _Process.invocations != 1 or _Process.init_billed:
        return started_ns
    _Process.init_billed = True
    entered = min(_Process.entered_ns, started_ns)
    return entered - (_Process.init_ns or 0)
