"""The typed views ``results_<simulation>`` against the map columns they are built from.

One run of each registered simulation (``tests.support.simulation_cases``) goes through the
real worker into one data root, with an injected failure (whose shard has no results), each
parameter type the simulation declares, and unswept parameters (which read as their defaults).
Every row of each view must equal its row of ``results`` read with pyarrow, with the declared
types; views must not mix simulations.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlglot
from click.testing import CliRunner

from chalicelib.model import ids
from chalicelib.model.sharding import shard_bounds
from chalicelib.model.validation import validate_request
from chalicelib.simulations.declarations import Simulation
from chalicelib.simulations.registry import REGISTRY
from scripts.local_runs import run_sweep
from sweeps import cli, views
from sweeps.engines.local import LocalEngine, to_duckdb
from sweeps.errors import QueryError
from sweeps.sql import render
from tests.support.simulation_cases import FAILED_SHARD, sample_request, swept

# One run per registered simulation, from its declaration (tests/support/simulation_cases.py).
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    name: (ids.new_run_id(datetime(2026, 3, 1, 10, i, tzinfo=UTC)), sample_request(sim))
    for i, (name, sim) in enumerate(REGISTRY.items())
}
PY_TYPES = {"float": float, "int": int, "str": str, "bool": bool}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> LocalEngine:
    root = tmp_path_factory.mktemp("typed-views")
    for run_id, body in RUNS.values():
        run_sweep(root, body, run_id, "2026-03-01")
    return LocalEngine(root)


def expected_rows(root: Path, sim: Simulation, run_id: str) -> list[dict[str, Any]]:
    """The oracle: results files read with pyarrow, maps decoded by the declared types."""
    rows = []
    for path in sorted((root / "results" / f"run_id={run_id}").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            params, metrics = dict(row["params"]), dict(row["metrics"])
            out: dict[str, Any] = {
                "run_id": run_id,
                "point_index": row["point_index"],
                "shard_id": row["shard_id"],
                "source_run_id": row["source_run_id"],
                "replicate": row["replicate"],
            }
            for p in sim.parameters:
                text = params.get(p.name)
                if text is None:
                    out[p.name] = p.default
                elif p.kind == "bool":
                    out[p.name] = text == "true"
                else:
                    out[p.name] = PY_TYPES[p.kind](text)
            out |= {m: metrics[m] for m in sim.metrics}
            rows.append(out)
    return sorted(rows, key=lambda r: r["point_index"])


@pytest.mark.parametrize("name", sorted(RUNS))
def test_each_view_row_equals_the_map_columns(engine: LocalEngine, name: str) -> None:
    sim = REGISTRY[name]
    run_id, _ = RUNS[name]
    view = views.view_name(name)
    result = engine.run(
        f"SELECT * FROM {view} WHERE run_id = '${{run_id}}' ORDER BY point_index", run_id=run_id
    )
    assert result.columns == list(views.columns(sim))
    expected = expected_rows(engine.root, sim, run_id)
    assert expected and result.rows == expected
    for row in result.rows:
        for p in sim.parameters:
            assert type(row[p.name]) is PY_TYPES[p.kind], (p.name, row[p.name])
        assert all(type(row[m]) is float for m in sim.metrics)
    # Nothing of the other simulation's run leaks in.
    everything = engine.run(f"SELECT DISTINCT run_id FROM {view}").rows
    assert everything == [{"run_id": run_id}]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_failed_shard_and_the_defaults(engine: LocalEngine, name: str) -> None:
    sim = REGISTRY[name]
    run_id, body = RUNS[name]
    request = validate_request(body, None)
    start, end = shard_bounds(request.total_points, request.shards, FAILED_SHARD)
    unswept = [p for p in sim.parameters if p not in swept(sim)]
    columns = ", ".join(["shard_id", *(p.name for p in unswept)])
    rows = engine.run(
        f"SELECT {columns} FROM {views.view_name(name)} WHERE run_id = '${{run_id}}'",
        run_id=run_id,
    ).rows
    assert len(rows) == request.total_points - (end - start)
    assert FAILED_SHARD not in {r["shard_id"] for r in rows}
    for p in unswept:
        assert {r[p.name] for r in rows} == {p.default}, p.name


@pytest.mark.parametrize("name", sorted(RUNS))
def test_declared_types_on_duckdb(engine: LocalEngine, name: str) -> None:
    engine.refresh_views()
    described = engine.connection.execute(f"DESCRIBE {views.view_name(name)}").fetchall()
    duck = {t: t for t in ("DOUBLE", "BIGINT", "VARCHAR", "INTEGER", "BOOLEAN")}
    declared = views.columns(REGISTRY[name])
    assert [(c[0], c[1]) for c in described] == [(n, duck[t]) for n, t in declared.items()]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_filter_on_the_view_prunes_both_scans(engine: LocalEngine, name: str) -> None:
    run_id, _ = RUNS[name]
    sql = f"SELECT * FROM {views.view_name(name)} WHERE run_id = '{run_id}'"
    engine.refresh_views()
    plan = engine.connection.sql("EXPLAIN " + to_duckdb(sql)).fetchall()[0][1]
    scanned = [(int(a), int(b)) for a, b in re.findall(r"Scanning Files: (\d+)/(\d+)", plan)]
    assert len(scanned) == 2
    assert all(read < total for read, total in scanned), scanned


def test_the_view_sql_is_athena_sql_that_transpiles() -> None:
    for name, sql in views.typed_views().items():
        tree = sqlglot.parse_one(sql, read="athena")
        assert isinstance(tree, sqlglot.exp.Create) and tree.this.name == name
        to_duckdb(sql)


def test_names_that_cannot_be_columns_are_refused() -> None:
    sim = REGISTRY["monte_carlo_pi"]
    clash = Simulation("clash", sim.fn, sim.parameters, ("samples",))
    with pytest.raises(views.ViewError, match="two columns named 'samples'"):
        views.view_sql(clash)
    with pytest.raises(views.ViewError, match="not a SQL identifier"):
        views.view_name("Bad-Name")


# ------------------------------------------------------------------------------ best_points


def _number_or_text(value: Any) -> Any:
    """A parameter value, compared as a number where it is one (the view's text of a double
    is DuckDB's, the oracle's a Python float)."""
    try:
        return float(value)
    except ValueError:
        return value


@pytest.mark.parametrize("name", sorted(RUNS))
def test_best_points_against_the_files(engine: LocalEngine, name: str) -> None:
    sim = REGISTRY[name]
    run_id, _ = RUNS[name]
    metric = sim.metrics[0]
    result = engine.run("best_points", run_id=run_id, metric=metric)
    assert result.columns == views.BEST_POINTS_COLUMNS
    best: dict[tuple[str, Any], tuple[float, int]] = {}
    seen: dict[tuple[str, Any], int] = {}
    for row in expected_rows(engine.root, sim, run_id):
        for p in sim.parameters:
            key = (p.name, _number_or_text(row[p.name]))
            seen[key] = seen.get(key, 0) + 1
            candidate = (row[metric], row["point_index"])
            best[key] = min(best.get(key, candidate), candidate)
    got = {(r["parameter"], _number_or_text(r["parameter_value"])): r for r in result.rows}
    assert got.keys() == best.keys()
    for key, (value, index) in best.items():
        assert (got[key]["point_index"], got[key]["point_count"]) == (index, seen[key])
        assert got[key]["metric_value"] == value
    assert engine.run("best_points", run_id=run_id, metric="no_such_metric").rows == []


def test_best_points_of_an_unknown_run_is_empty(engine: LocalEngine) -> None:
    other = ids.new_run_id(datetime(2026, 3, 2, tzinfo=UTC))
    result = engine.run("best_points", run_id=other, metric="abs_error")
    assert (result.columns, result.rows) == (views.BEST_POINTS_COLUMNS, [])
    with pytest.raises(QueryError, match="run_id must match"):
        engine.run("best_points", run_id="x' OR '1'='1", metric="abs_error")


@pytest.mark.parametrize("name", sorted(RUNS))
def test_generated_best_points_filters_its_scan_and_prunes(engine: LocalEngine, name: str) -> None:
    """As for the files of athena/: the one scan (of the typed view) filters on the run, and
    DuckDB reads only the run's files through it."""
    text = views.best_points_sql(REGISTRY[name])
    tree = sqlglot.parse_one(text, read="athena")
    scans = [t for t in tree.find_all(sqlglot.exp.Table) if t.name == views.view_name(name)]
    assert len(scans) == 1
    select = scans[0].find_ancestor(sqlglot.exp.Select)
    assert select is not None and "run_id = '${run_id}'" in select.args["where"].sql()
    assert not [g for g in ("map_agg", "element_at", "/") if g in text]
    run_id, _ = RUNS[name]
    duck = to_duckdb(render(text, {"run_id": run_id, "metric": REGISTRY[name].metrics[0]}))
    engine.refresh_views()
    plan = engine.connection.sql("EXPLAIN " + duck).fetchall()[0][1]
    scanned = [(int(a), int(b)) for a, b in re.findall(r"Scanning Files: (\d+)/(\d+)", plan)]
    assert scanned and all(read < total for read, total in scanned), scanned


DESIGNED_RUN = ids.new_run_id(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
DESIGNED: dict[str, Any] = {
    "simulation": "option_pricing",
    "parameters": {
        "scenario": {"zip": {"spot": [90, 110], "rate": [0.01, 0.03]}},
        "paths": {"values": [20]},
    },
    "sample": {
        "design": "lhs",
        "points": 5,
        "axes": {
            "volatility": {"loguniform": {"low": 0.05, "high": 0.8}},
            "option": {"choice": {"values": ["call", "put"]}},
        },
    },
    "replicates": 2,
    "shards": {"count": 3},
    "seed": 5,
}


def test_paired_sampled_and_replicated_points_are_ordinary_typed_columns(
    tmp_path: Path,
) -> None:
    request = run_sweep(tmp_path, DESIGNED, DESIGNED_RUN, "2026-03-01")
    engine = LocalEngine(tmp_path)
    sim = REGISTRY["option_pricing"]
    result = engine.run(
        "SELECT * FROM results_option_pricing WHERE run_id = '${run_id}' ORDER BY point_index",
        run_id=DESIGNED_RUN,
    )
    assert result.rows == expected_rows(tmp_path, sim, DESIGNED_RUN)
    assert len(result.rows) == request.total_points == 2 * 5 * 2
    space = request.space
    for row in result.rows:
        i = row["point_index"]
        assert row["replicate"] == i % 2 == space.replicate(i)
        point = space.point(i)
        assert {k: row[k] for k in point} == point  # the typed value is the value evaluated
    # replicates differ in their streams, not in their values
    first, second = result.rows[0], result.rows[1]
    assert first["volatility"] == second["volatility"] and first["price"] != second["price"]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_name_query_list_prints_runs_as_a_name(engine: LocalEngine, name: str) -> None:
    """`sweep query --list` prints the views too, so each is a NAME `sweep query` takes: a
    typed view's rows of one run with --run (the rows `Run.results()` reads), or of every
    run without; the view shard_status likewise."""
    run_id, _ = RUNS[name]
    runner = CliRunner()
    listed = runner.invoke(cli.main, ["query", "--list"]).stdout.split()
    view = views.view_name(name)
    assert view in listed and "shard_status" in listed
    root = ["--root", str(engine.root)]
    one = runner.invoke(cli.main, ["query", view, "--run", run_id, "--format", "json", *root])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout) == json.loads(
        json.dumps(expected_rows(engine.root, REGISTRY[name], run_id))
    )
    every = runner.invoke(cli.main, ["query", view, "--format", "csv", *root])
    assert every.exit_code == 0, every.output
    assert len(every.stdout.splitlines()) == 1 + len(
        expected_rows(engine.root, REGISTRY[name], run_id)
    )
    status = runner.invoke(
        cli.main, ["query", "shard_status", "--run", run_id, "--format", "json", *root]
    )
    assert status.exit_code == 0, status.output
    assert {r["run_id"] for r in json.loads(status.stdout)} == {run_id}
    unknown = runner.invoke(cli.main, ["query", "results_no_such_simulation", *root])
    assert unknown.exit_code == 1 and "results_no_such_simulation" in unknown.stderr
