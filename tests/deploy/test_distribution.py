"""The ``sweeps`` distribution as a user gets it: the wheel built from the project, installed
(not editable) into a clean virtual environment outside the repository, its dependencies from
the pip cache or PyPI, works from an unrelated directory: ``sweep --help``, ``sweep estimate``
(which runs the worker the wheel carries), and against a local stage started from the
repository, submit, status, wait, results and query on the local engine through
``sweeps.Client`` and through the installed ``sweep``; a status poll there still loads no
pyarrow or numpy.

Needs PyPI (or the pip cache) for the dependencies; the build itself is offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from chalicelib.config import PROJECT_ROOT
from scripts.local_stack import local_server

pytestmark = pytest.mark.install

SOURCES = ("pyproject.toml", "sweeps", "chalicelib", "athena")

USER_SCRIPT = """
import json, sys
import chalicelib, sweeps
from sweeps import Client

client = Client()
run = client.submit(sys.argv[1], wait=True, timeout=240, poll=0.3)
status = run.status()
table = run.results()
summary = client.query("run_summary", run=run, engine="local")
print(json.dumps({
    "sweeps": sweeps.__file__,
    "chalicelib": chalicelib.__file__,
    "run_id": run.run_id,
    "complete": status["complete"],
    "failed_shards": status["failed_shards"],
    "rows": table.num_rows,
    "types": {f.name: str(f.type) for f in table.schema},
    "summary": dict(zip(summary.column("status").to_pylist(),
                        summary.column("shards").to_pylist())),
}))
"""


# A status poll of the installed client, then which heavy libraries it loaded.
LIGHT_POLL = """
import json, sys
from sweeps import Client
status = Client().run(sys.argv[1]).status()
heavy = ("pyarrow", "numpy", "duckdb", "sqlglot", "chalicelib.execution")
loaded = [m for m in heavy if m in sys.modules]
print(json.dumps({"complete": status["complete"], "loaded": loaded}))
"""


def pins(path: Path) -> dict[str, str]:
    """name → version of every ``name==version`` line of a requirements file."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)(\[[^]]*\])?==([^\s#]+)", line):
            found[match.group(1).lower()] = match.group(3)
    return found


def test_the_dependencies_are_the_versions_the_project_runs_with() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = dict(d.lower().split("==") for d in project["dependencies"])
    installed = pins(PROJECT_ROOT / "requirements.txt") | pins(
        PROJECT_ROOT / "requirements-dev.txt"
    )
    assert {name: installed.get(name) for name in declared} == declared


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("PYTHON", "VIRTUAL_ENV", "SWEEP_", "AWS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | extra


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.timeout(1200)
def test_a_clean_install_of_the_wheel_works_outside_the_repository(tmp_path: Path) -> None:
    # The wheel, built from a copy of its sources (the build writes build/ and egg-info).
    source = tmp_path / "source"
    for name in SOURCES:
        origin = PROJECT_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    dist = tmp_path / "dist"
    env = clean_env()
    build = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)]
    run([sys.executable, "-m", *build, str(source)], tmp_path, env)
    (wheel,) = dist.glob("sweeps-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sql = {f"sweeps/athena/{p.name}" for p in (PROJECT_ROOT / "athena").glob("*.sql")}
    assert sql <= names and "sweeps/py.typed" in names
    assert "chalicelib/simulations/registry.py" in names
    assert "chalicelib/wiring.py" not in names
    assert "chalicelib/execution/worker.py" in names and "chalicelib/pricing.py" in names
    assert not any(n.startswith(("chalicelib/fanout/", "chalicelib/api/")) for n in names)

    # A clean environment outside the repository, the wheel installed with its dependencies.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python, sweep = venv / "bin" / "python", venv / "bin" / "sweep"
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp_path, env, timeout=900)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(PROJECT_ROOT / "examples" / "option-pricing.json", work / "request.json")

    helped = run([str(sweep), "--help"], work, env)
    assert all(c in helped for c in ("submit", "status", "query", "plot", "runs"))
    estimated = json.loads(run([str(sweep), "estimate", "request.json", "--json"], work, env))
    assert estimated["points"] == 162 and estimated["shards"] == 12
    assert estimated["worker_seconds_per_shard"] > 0 and estimated["usd"] > 0

    data = tmp_path / "data"
    with local_server(data, tmp_path / "server.log") as base:
        env = clean_env(SWEEP_API_URL=base, SWEEP_LOCAL_ROOT=str(data))
        answer = json.loads(run([str(python), "-c", USER_SCRIPT, "request.json"], work, env))
        cli_status = json.loads(run([str(sweep), "status", answer["run_id"], "--json"], work, env))
        poll = json.loads(run([str(python), "-c", LIGHT_POLL, answer["run_id"]], work, env))
        cli_query = run(
            [str(sweep), "query", "run_summary", "--run", answer["run_id"], "--format", "json"],
            work,
            env,
        )

    assert Path(answer["sweeps"]).is_relative_to(venv)  # not the repository's copy
    assert Path(answer["chalicelib"]).is_relative_to(venv)
    assert answer["complete"] and answer["failed_shards"] == [3, 5]
    assert answer["rows"] == 134
    assert answer["types"]["volatility"] == "double" and answer["types"]["paths"] == "int64"
    assert answer["summary"] == {"succeeded": 10, "failed": 2}
    assert cli_status["complete"] and cli_status["failed_shards"] == [3, 5]
    assert poll == {"complete": True, "loaded": []}
    by_status = {r["status"]: r["shards"] for r in json.loads(cli_query)}
    assert by_status == {"succeeded": 10, "failed": 2}
