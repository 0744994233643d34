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
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from PIL import Image

from chalicelib import pricing
from scripts.local_stack import local_server
from sweeps import cli
from sweeps.engines.local import LocalEngine
from tests.support import CONTRACT_EXAMPLE
from tests.support.cli_text import (
    PROGRESS_POINTS,
    cost_figures,
    estimate_figures,
    price_bounds,
)

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
    # No reuse asked: every succeeded point was evaluated, so status prints no split (the
    # progress bar, a fixed layout, still does).
    assert "points 134 of 162\n" in watched.stdout and "reused" not in watched.stdout
    assert PROGRESS_POINTS.findall(watched.stderr)[-1] == ("0", "134")


def stable_status(sweep: Sweep, run: str) -> tuple[dict[str, Any], Result]:
    """``sweep status RUN`` and GET /sweeps/RUN's JSON as it was when the command ran: read
    before and after it, until both reads agree (a complete run's cost still grows once its
    compactor has run)."""
    for _ in range(50):
        before = requests.get(f"{sweep.base}/sweeps/{run}", timeout=30).json()
        printed = sweep("status", run)
        assert printed.exit_code == 0, printed.output
        if requests.get(f"{sweep.base}/sweeps/{run}", timeout=30).json() == before:
            return before, printed
        time.sleep(0.2)
    raise AssertionError(f"{run}'s status kept changing")


def test_a_reusing_run_submitted_with_its_estimate(sweep: Sweep, run_id: str) -> None:
    """The README's widened grid (seed 7, like the contract's example: its 134 succeeded
    points are reusable), submitted with ``--estimate``: the estimate's figures, its count of
    reusable points equal to what the run then reused, the progress bar's split, and status's
    split and cost equal to the API's JSON."""
    wider = Path(cli.__file__).resolve().parent.parent / "examples" / "option-pricing-wider.json"
    answer = sweep.local("submit", str(wider), "--estimate", "--wait", "--interval", "0.2")
    assert answer.exit_code == 0, answer.output
    run = answer.stdout.strip()
    status, printed = stable_status(sweep, run)
    assert status["complete"] and status["request"]["reuse"] is True
    reused, evaluated = status["points_reused"], status["points_evaluated"]
    assert (reused, evaluated) == (134, 306 - 134)

    estimated = estimate_figures(answer.stderr)
    assert (estimated["points"], estimated["shards"]) == (306, 12)
    assert (estimated["reusable"], estimated["to_evaluate"]) == (reused, evaluated)
    assert estimated["requests"] == 12 + 1 + 2  # workers, the dispatcher, the compactor's two
    assert 0 < estimated["worker_s"] <= estimated["worker_max_s"]
    workers_gb_s = 12 * estimated["worker_s"] * estimated["memory_mb"] / 1024
    assert estimated["gb_s"] >= workers_gb_s * 0.99  # 3 decimals printed
    assert estimated["s3_requests"] > 12  # each worker's writes, at least
    low, high = price_bounds(estimated["gb_s"], estimated["requests"], estimated["s3_requests"])
    assert low * 0.99 - 1e-6 <= estimated["usd"] <= high * 1.01 + 1e-6
    assert estimated["prices"] == status["cost"]["prices"]
    assert estimated["warning"] is None
    # The bar's last picture, then status's summary, with the run's own counts.
    assert PROGRESS_POINTS.findall(answer.stderr)[-1] == (str(reused), str(evaluated))
    line = f"points 306 of 306 ({reused} reused, {evaluated} evaluated)"
    assert line in answer.stderr and line in printed.stdout

    cost, shown = status["cost"], cost_figures(printed.stdout)
    assert cost["invocations"] >= 12 + 1 and cost["upper_bound"] is False
    assert shown == {
        "usd": float(f"{cost['usd']:.6f}"),
        "bound": None,
        "gb_s": float(f"{cost['lambda_gb_s']:.3f}"),
        "invocations": cost["invocations"],
        "s3_requests": cost["s3_requests"],
        "prices": cost["prices"],
    }
    assert cost["prices"].startswith(pricing.PRICES.id)

    watched = sweep("status", run, "--watch")
    assert watched.exit_code == 0, watched.output
    assert PROGRESS_POINTS.findall(watched.stderr)[-1] == (str(reused), str(evaluated))


def test_a_reusing_run_that_found_nothing_still_shows_its_split(sweep: Sweep) -> None:
    """A seed no other run used: nothing to reuse, and status says so (0 reused) rather than
    leaving the question it asked unanswered."""
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [10, 20, 30, 40]}},
        "shards": {"count": 2},
        "seed": 8675309,
        "reuse": True,
    }
    answer = sweep("submit", "-", "--wait", "--interval", "0.2", stdin=json.dumps(body))
    assert answer.exit_code == 0, answer.output
    status, printed = stable_status(sweep, answer.stdout.strip())
    assert (status["points_reused"], status["points_evaluated"]) == (0, 4)
    assert "points 4 of 4 (0 reused, 4 evaluated)" in printed.stdout
    assert PROGRESS_POINTS.findall(answer.stderr)[-1] == ("0", "4")


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
    assert json.loads(as_json.stdout) == expected.rows  # numbers as JSON numbers, as on Athena
    # (attempts: 2 or 4 failed ones, as the redrive test ran before on this worker or not)
    counts = {r["status"]: (r["shards"], r["points"], r["attempts"]) for r in expected.rows}
    assert {s: c[:2] for s, c in counts.items()} == {"succeeded": (10, 134), "failed": (2, 28)}
    assert all(type(n) is int for row in counts.values() for n in row)

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
    listed = sweep("submit", "-", stdin="[]")  # JSON, but not an object: the API says so
    assert listed.exit_code == 1, listed.output
    assert listed.stderr.splitlines()[0].startswith("error: HTTP 400 invalid_request: ")
    assert listed.stderr.splitlines()[1].strip().startswith("/: ")
    missing = sweep("status", "20261126T000000000Z-000000000000")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: HTTP 404 ")
    # A name given twice is the API's problem at its pointer (json would keep the last):
    twice = '{"simulation": "monte_carlo_pi", "seed": 1, "seed": 2, "parameters": {}}'
    for command in ("submit", "estimate"):
        repeated = sweep(command, "-", stdin=twice)
        assert repeated.exit_code == 1, repeated.output
        assert repeated.stderr.splitlines()[0].startswith("error: invalid_request: <stdin>: ")
        assert repeated.stderr.splitlines()[1].strip().startswith("/seed: ")
    # sweep estimate judges a request locally, and says so as the API would:
    bad = {"simulation": "monte_carlo_pi", "parameters": {}, "shards": {"count": 0}}
    judged = sweep("estimate", "-", stdin=json.dumps(bad))
    assert judged.exit_code == 1, judged.output
    assert judged.stderr.splitlines()[0].startswith("error: invalid_request: ")
    assert any(line.strip().startswith("/shards/count: ") for line in judged.stderr.splitlines())


@pytest.mark.parametrize("body", ['"x"', "5", "null", '"examples/lhs.json"'])
def test_a_request_file_holding_a_json_scalar_is_the_body_sent(sweep: Sweep, body: str) -> None:
    """Not a path to read: the string "examples/lhs.json" (a file there is, from the tests'
    folder) is a body the API refuses, as it refuses every body that is not an object."""
    answer = sweep("submit", "-", stdin=body)
    assert answer.exit_code == 1, answer.output
    assert answer.stdout == ""
    assert answer.stderr.splitlines()[0] == (
        "error: HTTP 400 invalid_request: the request body must be a JSON object"
    )


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
