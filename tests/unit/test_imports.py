"""The API handler's cold start stays light: its path never imports pyarrow or duckdb.

Each check runs in a clean interpreter (cwd = the project root), because this test process has
long since imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.config import PROJECT_ROOT
from scripts.fake_stage import AWS_ENV

HEAVY = ("pyarrow", "duckdb")


def loaded_after(code: str, extra_env: dict[str, str]) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of HEAVY are in sys.modules afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEP_", "PYTHON"))}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"} | extra_env
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, bool] = json.loads(done.stdout.splitlines()[-1])
    return loaded


API_PATH = """
import app
from chalicelib import wiring
rt = wiring.current()
assert rt.settings.backend == {backend!r}, rt.settings.backend
"""

# The routes themselves, without any network: a 400 from validation and the simulation list.
API_REQUESTS = """
from chalice.test import Client
client = Client(app.app, stage_name="local", project_dir=".")
bad = client.http.post("/sweeps", headers={"Content-Type": "application/json"}, body="{}")
assert bad.status_code == 400, bad.status_code
assert client.http.get("/simulations").status_code == 200
"""


def test_api_path_on_aws_imports_neither_pyarrow_nor_duckdb() -> None:
    loaded = loaded_after(API_PATH.format(backend="aws"), AWS_ENV)
    assert loaded == {"pyarrow": False, "duckdb": False}


@pytest.mark.parametrize("backend", ["aws", "local"])
def test_api_requests_import_neither_pyarrow_nor_duckdb(backend: str, tmp_path: Path) -> None:
    env = (
        AWS_ENV
        if backend == "aws"
        else {"SWEEP_BACKEND": "local", "SWEEP_LOCAL_ROOT": str(tmp_path)}
    )
    loaded = loaded_after(API_PATH.format(backend=backend) + API_REQUESTS, env)
    assert loaded == {"pyarrow": False, "duckdb": False}


def test_the_check_can_fail_dispatcher_imports_pyarrow() -> None:
    """Sanity: the probe does see pyarrow when a module that needs it is imported."""
    loaded = loaded_after("import chalicelib.fanout.dispatcher", AWS_ENV)
    assert loaded["pyarrow"] is True
