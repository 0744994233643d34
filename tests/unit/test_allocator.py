"""glibc's malloc thresholds are pinned wherever simulations run (chalicelib.simulations.
allocator): on the local stage's workers, in ``sweep estimate``, and on every deployed function.

Checked by where a process's next 8 MiB block lands (``/proc/self/maps``): above the mmap
threshold it is a mapping of its own, below it a part of the heap. A fresh process (glibc's
128 KiB start) maps it; a process that imported an entry point, or was started by one, takes it
from its heap, as a process whose threshold was pinned at 32 MiB must."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chalicelib.config import PROJECT_ROOT
from chalicelib.simulations import allocator

PROBE = """
import ctypes, importlib, sys
if sys.argv[1]:
    importlib.import_module(sys.argv[1])
block = bytearray(8 << 20)
at = ctypes.addressof((ctypes.c_char * len(block)).from_buffer(block))
for line in open("/proc/self/maps"):
    span, *rest = line.split()
    lo, hi = (int(x, 16) for x in span.split("-"))
    if lo <= at < hi:
        print(rest[-1] if len(rest) == 5 else "anonymous")
"""

# A child started by a process that imported the entry point: the variables reach it.
CHILD = """
import importlib, subprocess, sys
importlib.import_module(sys.argv[1])
probe = sys.argv[2]
print(subprocess.run([sys.executable, "-c", probe, ""], capture_output=True, text=True,
      check=True).stdout.strip())
"""

linux_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc's malloc on Linux",
)


def run(*argv: str, **preset: str) -> str:
    """``python -c *argv`` without this process's malloc variables, with ``preset``'s."""
    env = {k: v for k, v in os.environ.items() if k not in allocator.VARIABLES} | preset
    done = subprocess.run(
        [sys.executable, "-c", *argv],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@linux_glibc
def test_a_fresh_process_maps_a_large_block() -> None:
    assert run(PROBE, "") == "anonymous"  # the probe tells the two apart


@linux_glibc
@pytest.mark.parametrize(
    "module",
    ["chalicelib.simulations.allocator", "sweeps.estimate", "chalicelib.fanout.local_lambda"],
)
def test_importing_the_entry_point_pins_the_thresholds(module: str) -> None:
    assert run(PROBE, module) == "[heap]"


@linux_glibc
def test_processes_the_entry_point_starts_are_pinned_too() -> None:
    assert run(CHILD, "chalicelib.fanout.local_lambda", PROBE) == "[heap]"


def test_a_users_own_setting_wins() -> None:
    code = (
        "import chalicelib.simulations.allocator, os; print(os.environ['MALLOC_MMAP_THRESHOLD_'])"
    )
    assert run(code, MALLOC_MMAP_THRESHOLD_="1048576") == "1048576"


def test_every_deployed_function_gets_the_same_variables() -> None:
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    env = config["environment_variables"]
    assert {name: env.get(name) for name in allocator.VARIABLES} == {
        name: str(value) for name, value in allocator.VARIABLES.items()
    }
