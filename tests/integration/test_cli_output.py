"""What ``sweep`` prints is what it says it prints, without a stage: the local engine over a
data root (empty unless a test writes one), and the command through click's runner or, where
the process itself matters, as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chalicelib.config import PROJECT_ROOT


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
