"""Simulations run with one numerical-library thread per process (chalicelib.simulations.
math_threads): on the local stage's workers, in ``sweep estimate``, and on every deployed
function. Checked by counting the threads a process has after a large ``np.dot`` (OpenBLAS
starts its pool then): importing the module must leave as many as an explicit single-thread
setting does, and fewer than two threads would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chalicelib.config import PROJECT_ROOT
from chalicelib.simulations import math_threads

PROBE = """
import importlib, os, sys
importlib.import_module(sys.argv[1])
import numpy as np
np.dot(np.ones(1_000_000), np.ones(1_000_000))
print(len(os.listdir("/proc/self/task")))
"""


def threads_after_dot(module: str, **preset: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in math_threads.VARIABLES} | preset
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip())


@pytest.mark.skipif(
    (os.cpu_count() or 1) < 2 or not os.path.isdir("/proc/self/task"),
    reason="needs two cores and Linux's /proc",
)
@pytest.mark.parametrize("module", ["sweeps.estimate", "chalicelib.fanout.local_lambda"])
def test_importing_the_entry_point_leaves_numpy_one_thread(module: str) -> None:
    one = threads_after_dot(module, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    two = threads_after_dot(module, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
    assert two > one  # the probe sees OpenBLAS's pool at all
    assert threads_after_dot(module) == one


def test_a_users_own_setting_wins() -> None:
    env = {k: v for k, v in os.environ.items() if k not in math_threads.VARIABLES}
    env["OPENBLAS_NUM_THREADS"] = "4"
    code = "import chalicelib.simulations.math_threads as m, os; print(os.environ[m.VARIABLES[0]])"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "4", done.stderr


def test_every_deployed_function_gets_the_same_variables() -> None:
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    env = config["environment_variables"]
    assert {name: env.get(name) for name in math_threads.VARIABLES} == dict.fromkeys(
        math_threads.VARIABLES, "1"
    )
