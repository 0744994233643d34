"""What ``sweep`` prints is what it says it prints, without a stage: the local engine over a
data root (empty unless a test writes one), and the command through click's runner or, where
the process itself matters, as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chalicelib.config import PROJECT_ROOT
from sweeps import cli


def test_the_local_engine_never_draws_duckdbs_progress_bar(tmp_path: Path) -> None:
    """DuckDB turns its progress bar on in a process it takes for an interactive one (no
    ``__main__.__file__``: ``python -c``, a REPL, a notebook) and draws it on stdout, into a
    query's JSON or CSV; pytest's process is not one, so the engine is opened in ``python -c``."""
    probe = (
        "import sys; from sweeps.engines.local import LocalEngine; "
        "con = LocalEngine(sys.argv[1]).connection; "
        "print(con.sql(\"SELECT current_setting('enable_progress_bar')\").fetchall()[0][0])"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.strip() == "False"


# A loopback API nothing answers on: the commands below never call it (the local engine reads
# --root), and one that did would fail instead of reaching some other stage.
NO_API = "http://127.0.0.1:9"


def sweep(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli.main, ["--api", NO_API, *args], input=stdin)


def test_json_output_is_strict_json_with_nan_and_infinities_as_null(tmp_path: Path) -> None:
    sql = (
        "SELECT CAST('NaN' AS DOUBLE) AS nan, CAST('Infinity' AS DOUBLE) AS inf, "
        "-CAST('Infinity' AS DOUBLE) AS minus_inf, CAST(0.25 AS DOUBLE) AS quarter, "
        "ARRAY[CAST('NaN' AS DOUBLE), CAST(1 AS DOUBLE)] AS list"
    )
    answer = sweep("query", sql, "--root", str(tmp_path), "--format", "json")
    assert answer.exit_code == 0, answer.output

    def refuse(token: str) -> None:
        raise AssertionError(f"not JSON: {token}")

    rows = json.loads(answer.stdout, parse_constant=refuse)
    assert rows == [
        {"nan": None, "inf": None, "minus_inf": None, "quarter": 0.25, "list": [None, 1.0]}
    ]


def test_table_cells_and_headers_are_printed_as_they_are_not_as_markup(tmp_path: Path) -> None:
    values = ["see [foo] here", "path [/tmp] missing", "[red]x[/red]", ":smile:"]
    columns = ", ".join(f"'{v}' AS \"[bold]c{i}\"" for i, v in enumerate(values))
    answer = sweep("query", f"SELECT {columns}", "--root", str(tmp_path))
    assert answer.exit_code == 0, answer.output
    for i, value in enumerate(values):
        assert value in answer.stdout
        assert f"[bold]c{i}" in answer.stdout


@pytest.mark.parametrize("others", [10, 60])
def test_a_table_wider_than_the_console_folds_its_cells_and_keeps_ids_whole(
    tmp_path: Path, others: int
) -> None:
    """Piped, the console is 200 columns: ten wide columns fold theirs to fit and sixty cannot
    (the table is then printed wider); either way the run id is on one line, nothing is cut
    with an ellipsis, and every value can be read back from its column's lines."""
    run_id = "20261207T062635030Z-3146be1da33c"
    values = [f"a-rather-long-value-without-spaces-{i}" for i in range(others)]
    columns = ", ".join(f"'{v}' AS c{i}" for i, v in enumerate(values))
    answer = sweep("query", f"SELECT '{run_id}' AS run_id, {columns}", "--root", str(tmp_path))
    assert answer.exit_code == 0, answer.output
    assert "…" not in answer.stdout
    lines = [line for line in answer.stdout.splitlines() if line.startswith("│")]
    assert run_id in lines[0]
    cells = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines]
    assert ["".join(column) for column in zip(*cells, strict=True)] == [run_id, *values]
