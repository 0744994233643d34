"""The ``sweep`` command against a real ``chalice local --stage local`` over HTTP.

Most commands run in-process through click's runner (the same code the console script runs);
one runs as the installed ``.venv/bin/sweep``, to prove ``make setup`` installed it.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from scripts.local_stack import local_server
from sweeps import cli
from sweeps.engines.local import LocalEngine
from tests.support import CONTRACT_EXAMPLE

pytestmark = pytest.mark.e2e


class Sweep:
    def __init__(self, base: str, data: Path) -> None:
        self.base = base
        self.data = data
        self.runner = CliRunner()

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        return self.runner.invoke(
            cli.main, ["--api", self.base, *args], input=stdin, catch_exceptions=False
        )

    def local(self, *args: str) -> Result:
        """A command that reads the local data root."""
        return self(*args, "--root", str(self.data))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    data = tmp_path_factory.mktemp("cli-stage") / "data"
    with local_server(data, data.parent / "server.log") as base:
        yield Sweep(base, data)


@pytest.fixture(scope="module")
def run_id(sweep: Sweep) -> str:
    """The contract's example (two injected failures), submitted from stdin and waited for."""
    answer = sweep("submit", "-", "--wait", "--interval", "0.2", stdin=json.dumps(CONTRACT_EXAMPLE))
    assert answer.exit_code == 0, answer.output
    run = answer.stdout.strip()
    assert "\n" not in run  # stdout is the run id alone, for $(sweep submit ...)
    assert "10 succeeded, 2 failed, 0 pending of 12" in answer.stderr
    assert "failed shards: 3, 5" in answer.stderr
    return run


def test_status(sweep: Sweep, run_id: str) -> None:
    answer = sweep("status", run_id, "--json")
    assert answer.exit_code == 0
    status = json.loads(answer.stdout)
    assert status["shards"] == {"succeeded": 10, "failed": 2, "pending": 0}
    assert status["complete"] and status["failed_shards"] == [3, 5]
    watched = sweep("status", run_id, "--watch")
    assert watched.exit_code == 0
    assert "complete; shards 10 succeeded, 2 failed" in watched.stdout


def test_redrive_fails_the_injected_shards_again(sweep: Sweep, run_id: str) -> None:
    answer = sweep("redrive", run_id, "--wait", "--interval", "0.2")
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout)["redriven"] == [3, 5]
    status = json.loads(sweep("status", run_id, "--json").stdout)
    assert status["complete"] and status["failed_shards"] == [3, 5]
    attempts = LocalEngine(sweep.data).run(
        "SELECT max(attempts) AS n FROM shard_status WHERE run_id = '${run_id}'", run_id=run_id
    )
    assert attempts.rows == [{"n": 2}]


def test_query_in_each_format(sweep: Sweep, run_id: str) -> None:
    expected = LocalEngine(sweep.data).run("run_summary", run_id=run_id)
    as_json = sweep.local("query", "run_summary", "--run", run_id, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == json.loads(json.dumps(expected.rows, default=str))
    assert {r["status"]: r["shards"] for r in expected.rows} == {"succeeded": 10, "failed": 2}

    as_csv = sweep.local("query", "run_summary", "--run", run_id, "--format", "csv")
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(rows[0]) == expected.columns
    assert [(r["status"], r["shards"]) for r in rows] == [
        (r["status"], str(r["shards"])) for r in expected.rows
    ]

    table = sweep.local("query", "best_points", "--run", run_id, "--metric", "abs_error")
    assert table.exit_code == 0
    assert "parameter_value" in table.stdout and "volatility" in table.stdout

    # coverage takes its shard count from the API; final failures are not coverage problems.
    coverage = sweep.local("query", "coverage", "--run", run_id, "--format", "json")
    assert coverage.exit_code == 0, coverage.output
    assert [r["shard_id"] for r in json.loads(coverage.stdout)] == []  # failed is not a gap

    typed = sweep.local(
        "query",
        "SELECT count(*) AS n FROM results_option_pricing WHERE run_id = '${run_id}'",
        "--run",
        run_id,
        "--format",
        "csv",
    )
    assert typed.stdout.split() == ["n", "134"]


def test_plots_are_pngs_of_the_expected_size(sweep: Sweep, run_id: str, tmp_path: Path) -> None:
    heatmap = tmp_path / "heat.png"
    answer = sweep.local(
        "plot", run_id, "--x", "strike", "--y", "volatility", "--metric", "abs_error",
        "--where", "option=call", "-o", str(heatmap),
    )  # fmt: skip
    assert answer.exit_code == 0, answer.output
    assert answer.stdout.strip() == str(heatmap)
    with Image.open(heatmap) as image:
        assert (image.format, image.size) == ("PNG", (800, 600))
        image.load()

    lines = tmp_path / "lines.png"
    answer = sweep.local("plot", run_id, "--x", "strike", "--metric", "price", "-o", str(lines))
    assert answer.exit_code == 0, answer.output
    with Image.open(lines) as image:
        assert image.size == (800, 600)

    wrong = sweep.local("plot", run_id, "--x", "nope", "--metric", "price", "-o", str(lines))
    assert wrong.exit_code == 1
    assert "'nope' is not a parameter of option_pricing" in wrong.stderr


def test_the_readme_tour_of_spaces(sweep: Sweep, tmp_path: Path) -> None:
    """The paired-axes and LHS examples submitted from their files, as the README shows, and
    the LHS run plotted: a scatter, volatility (loguniform) on a log axis."""
    examples = Path(cli.__file__).resolve().parent.parent / "examples"
    paired = sweep("submit", str(examples / "paired-axes.json"), "--wait", "--interval", "0.2")
    assert paired.exit_code == 0, paired.output
    assert "3 succeeded, 0 failed, 0 pending of 3" in paired.stderr
    lhs = sweep("submit", str(examples / "lhs.json"), "--wait", "--interval", "0.2")
    assert lhs.exit_code == 0, lhs.output
    picture = tmp_path / "lhs.png"
    answer = sweep.local(
        "plot", lhs.stdout.strip(), "--x", "spot", "--y", "volatility", "--metric", "price",
        "--where", "option=call", "-o", str(picture),
    )  # fmt: skip
    assert answer.exit_code == 0, answer.output
    assert "(scatter, 100 points, 800x600)" in answer.stderr
    with Image.open(picture) as image:
        assert image.size == (800, 600)


def test_a_rejected_request_prints_its_problems_and_exits_1(sweep: Sweep) -> None:
    bad = dict(CONTRACT_EXAMPLE, shards={"count": 0}, seed=-1)
    answer = sweep("submit", "-", stdin=json.dumps(bad))
    assert answer.exit_code == 1
    assert answer.stdout == ""
    lines = answer.stderr.splitlines()
    assert lines[0].startswith("error: HTTP 400 invalid_request: ")
    assert any(line.strip().startswith("/shards/count: ") for line in lines[1:])
    assert any(line.strip().startswith("/seed: ") for line in lines[1:])
    missing = sweep("status", "20261126T000000000Z-000000000000")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: HTTP 404 ")


def test_usage_errors_exit_2(sweep: Sweep) -> None:
    assert sweep("query", "run_summary", "--format", "xml").exit_code == 2
    assert sweep("submit").exit_code == 2
    assert sweep("submit", "-", stdin="{not json").exit_code == 2


def test_runs_lists_newest_first(sweep: Sweep, run_id: str) -> None:
    listed = sweep("runs")
    assert listed.exit_code == 0, listed.output
    assert run_id in listed.stdout


def test_cancel_stops_a_running_sweep_and_refuses_a_complete_one(sweep: Sweep, run_id: str) -> None:
    # Slow enough to be running when cancelled: 40 shards of 3 million paths (about 60 ms each
    # here) on 2 processes, about 1.2 s in all, against a cancel sent tens of ms after the
    # submit. At 300,000 paths the whole run took about 0.2 s here, and less on a faster CI.
    slow = {
        "simulation": "option_pricing",
        "parameters": {
            "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 40}},
            "paths": {"values": [3_000_000]},
        },
        "shards": {"count": 40},
        "label": "to-cancel",
    }
    other = sweep("submit", "-", stdin=json.dumps(slow)).stdout.strip()
    cancelled = sweep("cancel", other)
    assert cancelled.exit_code == 0, cancelled.output
    assert sweep("cancel", other).exit_code == 0  # twice is harmless
    deadline = time.monotonic() + 120
    while not (status := json.loads(sweep("status", other, "--json").stdout))["complete"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["cancelled"] is True
    assert status["shards"]["failed"] > 0  # shards not yet started were CANCELLED
    refused = sweep("cancel", run_id)  # complete: the API answers 409, printed as an error
    assert refused.exit_code == 1
    assert refused.stderr.strip()


def test_the_installed_console_script(sweep: Sweep, run_id: str) -> None:
    script = Path(sys.executable).with_name("sweep")
    done = subprocess.run(
        [str(script), "--api", sweep.base, "status", run_id, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",  # from anywhere, not only the checkout
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["run_id"] == run_id
