"""glibc's malloc thresholds pinned wherever simulations run, so a point's time does not depend
on what the process did before it.

NumPy takes an array's memory from ``malloc``. glibc serves a request above its mmap threshold
(128 KiB at start) with a fresh ``mmap`` (zeroed pages, a page fault each, unmapped again on
free) and raises that threshold, and its trim threshold with it, when such a block is freed: a
heuristic that ends at 32 MiB. Whether a process's arrays then come from fresh mappings or from
its heap depends on what it happened to free before, down to its imports. Measured here
(``monte_carlo_pi``, its 600 points of ``samples`` 10..100,010 in steps of 166, in grid order,
six fresh processes each, interleaved): 375 page faults and 1.19-1.86 ms a point unpinned, 1.35
faults and 0.69-1.21 ms pinned. ``sweep estimate`` timed in one state and the stage's workers
ran in the other: the estimate missed by up to 1.6x.

Pinned, a process keeps up to ``TRIM_THRESHOLD`` of freed heap instead of returning it, and
serves arrays up to ``MMAP_THRESHOLD`` from its heap: what a process holds anyway once glibc's
heuristic has run its course.

Importing this module pins the thresholds in this process (``mallopt``) and sets glibc's
environment variables for the processes it starts (read when they start): the local stage's
worker processes (their fork server or spawned processes start after ``fanout.local_lambda``
imported this), ``sweep estimate`` (which imports it), and each deployed function (the
same variables are in ``.chalice/config.json``, checked by a test). A variable the user has set
wins. Where the C library has no ``mallopt`` (not glibc), nothing is pinned in this process.
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for it on 64-bit systems
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # where the heuristic puts it beside that
# glibc's variables, and the parameter numbers of mallopt that they set (malloc.h).
VARIABLES = {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD, "MALLOC_TRIM_THRESHOLD_": TRIM_THRESHOLD}
_PARAMS = {"MALLOC_MMAP_THRESHOLD_": -3, "MALLOC_TRIM_THRESHOLD_": -1}


def _pin() -> None:
    """This process's thresholds, as the environment sets them for the processes it starts."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for name, param in _PARAMS.items():
        value = os.environ[name]
        if value.isdigit():
            mallopt(param, int(value))  # refused (0): glibc keeps its own setting


for _name, _value in VARIABLES.items():
    os.environ.setdefault(_name, str(_value))
_pin()
