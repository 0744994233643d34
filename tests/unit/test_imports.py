"""Cold paths stay light: the API handler's never imports pyarrow or duckdb, and a status poll
of the ``sweep`` command (or ``import sweeps``) loads none of pyarrow, numpy, duckdb, sqlglot.

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
CLIENT_HEAVY = ("pyarrow", "numpy", "duckdb", "sqlglot")


def loaded_after(
    code: str, extra_env: dict[str, str], heavy: tuple[str, ...] = HEAVY
) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of ``heavy`` are in sys.modules afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEP_", "PYTHON"))}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"} | extra_env
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {heavy!r}}}))"
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
        # The requests alone: the local stage's reconciler thread (on by default) reads Parquet.
        else {
            "SWEEP_BACKEND": "local",
            "SWEEP_LOCAL_ROOT": str(tmp_path),
            "SWEEP_LOCAL_RECONCILER": "false",
        }
    )
    loaded = loaded_after(API_PATH.format(backend=backend) + API_REQUESTS, env)
    assert loaded == {"pyarrow": False, "duckdb": False}


def test_the_check_can_fail_dispatcher_imports_pyarrow() -> None:
    """Sanity: the probe does see pyarrow when a module that needs it is imported."""
    loaded = loaded_after("import chalicelib.fanout.dispatcher", AWS_ENV)
    assert loaded["pyarrow"] is True


# The status commands against a loopback HTTP server that answers as the API does (the
# contract's GET /sweeps/{run_id} and GET /sweeps bodies): what is measured is the import set
# of the command's code path, not the API, which tests/e2e/test_cli.py runs for real.
STATUS_PATH = """
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
RUN = "20261126T100000000Z-0123456789ab"
STATUS = {"run_id": RUN, "label": "x", "simulation": "option_pricing",
    "created_at": "2026-11-26T10:00:00.000Z", "total_points": 162, "shard_count": 12,
    "dispatch": {"dispatched": 12, "failed": 0},
    "shards": {"succeeded": 10, "failed": 2, "pending": 0}, "complete": True,
    "failed_shards": [3, 5], "points_succeeded": 134, "cancelled": False}
LISTING = {"runs": [{k: STATUS[k] for k in ("run_id", "label", "simulation", "created_at",
    "shard_count", "complete", "cancelled")}], "next": None}

class Answer(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(LISTING if self.path.startswith("/sweeps?") else STATUS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"
from click.testing import CliRunner
from sweeps import Client, cli
for argv in (["status", RUN], ["status", RUN, "--watch"], ["status", RUN, "--json"], ["runs"]):
    answer = CliRunner().invoke(cli.main, ["--api", base, *argv], catch_exceptions=False)
    assert answer.exit_code == 0, answer.output
    assert RUN in answer.output, answer.output
assert Client(base).run(RUN).status()["complete"]
assert [r.shard_count for r in Client(base).runs()] == [12]
"""


def test_a_status_poll_of_the_client_loads_no_heavy_library() -> None:
    loaded = loaded_after(STATUS_PATH, {}, CLIENT_HEAVY)
    assert loaded == dict.fromkeys(CLIENT_HEAVY, False)


def test_the_client_check_can_fail_a_query_loads_duckdb(tmp_path: Path) -> None:
    code = f"from sweeps import Client\nClient(local_root={str(tmp_path)!r}).query('SELECT 1 AS n')"
    loaded = loaded_after(code, {}, CLIENT_HEAVY)
    assert loaded["duckdb"] and loaded["sqlglot"] and loaded["pyarrow"]
