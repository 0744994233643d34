"""``mypy --strict`` passes for a user's script that uses ``sweeps.Client`` (the package ships
``py.typed``), and rejects one that misuses it: the types reach the user's code.

mypy runs from a temporary directory with an empty configuration, so it sees ``sweeps`` as an
installed package (the venv's editable install), as a user's project would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chalicelib.config import PROJECT_ROOT

USER_SCRIPT = '''
"""A notebook user's script."""

from datetime import datetime

import sweeps
from sweeps import ApiError, Client, Run, RunRecord


def newest(client: Client) -> RunRecord | None:
    return next(iter(client.runs()), None)


def main() -> int:
    client = Client()
    try:
        run: Run = client.submit({"simulation": "option_pricing"}, wait=True, timeout=60)
    except ApiError as exc:
        print(exc.status, exc.code, [p["message"] for p in exc.problems])
        return 1
    status = run.status()
    done: bool = status["complete"]
    failed: list[int] = status["failed_shards"]
    pending: int = status["shards"]["pending"]
    table = run.results()
    print(table.num_rows, done, failed, pending, client.query("run_summary", run=run))
    record = newest(client)
    if record is not None:
        when: datetime = record.created_at
        print(when.isoformat(), record.shard_count + 1)
    print(run.redrive(include_pending=True)["redriven"], sweeps.WaitTimeout.__name__)
    return 0
'''

MISUSE = """
from sweeps import Client

record = next(iter(Client().runs()))
count: str = record.shard_count
flag: int = Client().run("x").status()["complete"] + "x"
Client().submit({}, wait="yes")
"""


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    (tmp_path / "user.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "mypy.ini", "user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_package_is_typed() -> None:
    assert (PROJECT_ROOT / "sweeps" / "py.typed").is_file()


def test_a_user_script_passes_mypy_strict(tmp_path: Path) -> None:
    done = mypy(tmp_path, USER_SCRIPT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found in 1 source file" in done.stdout


def test_a_misuse_is_caught(tmp_path: Path) -> None:
    done = mypy(tmp_path, MISUSE)
    assert done.returncode == 1
    assert 'expression has type "int", variable has type "str"' in done.stdout
    assert 'Unsupported operand types for + ("bool" and "str")' in done.stdout
    assert 'Argument "wait" to "submit" of "Client" has incompatible type "str"' in done.stdout
