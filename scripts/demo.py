"""``make demo``: a whole sweep on the embedded local stack, then its results in SQL.

Starts ``chalice local --stage local``, POSTs the contract's example sweep (with two injected
shard failures), follows the run with a progress bar, then runs the baseline Athena queries on
DuckDB over the Parquet the run wrote under ``.sweep-data/``.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.request import Request, urlopen

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chalicelib.config import Settings
from client.query import LocalEngine, QueryResult
from scripts.local_stack import local_server

SWEEP: dict[str, Any] = {
    "simulation": "option_pricing",
    "parameters": {
        "volatility": {"linspace": {"start": 0.1, "stop": 0.5, "num": 9}},
        "strike": {"range": {"start": 80, "stop": 121, "step": 5}},
        "option": {"values": ["call", "put"]},
        "paths": {"values": [20000]},
    },
    "shards": {"count": 12},
    "seed": 7,
    "label": "vol-strike-grid",
    "fail_shards": [3, 5],
}


def call(base: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = Request(
        base + path,
        data=data,
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def show(console: Console, title: str, result: QueryResult) -> None:
    table = Table(title=title, title_justify="left")
    for column in result.columns:
        table.add_column(column)
    for row in result.rows:
        table.add_row(
            *(
                f"{v:.4g}" if isinstance(v, float) else str(v)
                for v in (row[c] for c in result.columns)
            )
        )
    console.print(table)


def main() -> None:
    console = Console(width=140)
    root = Settings.from_env().local_root
    with local_server(root, root / "chalice-local.log") as base:
        console.print(f"[bold]chalice local[/] serving {base}; data under {root}")
        accepted = call(base, "/sweeps", SWEEP)
        console.print(f"POST /sweeps -> 202 {json.dumps(accepted)}")
        run_id = accepted["run_id"]
        with Progress(
            TextColumn("shards"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task("run", total=accepted["shard_count"])
            while not (status := call(base, f"/sweeps/{run_id}"))["complete"]:
                done = status["shards"]["succeeded"] + status["shards"]["failed"]
                progress.update(bar, completed=done)
                time.sleep(0.2)
            progress.update(bar, completed=accepted["shard_count"])
        console.print_json(json.dumps(status))
    engine = LocalEngine(root)
    show(
        console,
        "run summary (athena/run_summary.sql on DuckDB)",
        engine.run("run_summary", run_id=run_id),
    )
    show(console, "failure rate per run (athena/failure_rate.sql)", engine.run("failure_rate"))
    show(
        console,
        "failures by error code (athena/failure_by_error.sql)",
        engine.run("failure_by_error", run_id=run_id),
    )
    show(
        console,
        "best points by abs_error (athena/best_points.sql)",
        engine.run("best_points", run_id=run_id, metric="abs_error"),
    )


if __name__ == "__main__":
    main()
