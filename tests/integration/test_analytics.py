"""The SQL in athena/ against real outputs of local runs, on DuckDB through the local engine.

Three runs go through the worker into one data root:
- A (2026-01-01, option_pricing, 80 points in 40 shards): shards 3 and 17 fail by injection;
  shard 5 fails on storage (retryable) then succeeds; shard 9 fails on storage, then Lambda
  gives up (the failure recorder writes RETRIES_EXHAUSTED); shard 11 fails on storage and its
  retry has not run yet (pending); shard 13 fails on storage after claiming its success lock,
  so its retry's success reuses the failed attempt's number (both rows say attempt 1).
- C (same day, monte_carlo_pi, 5 shards): all succeed.
- B (2026-01-02, monte_carlo_pi, 10 shards): shard 0 fails by injection.
Every number a query returns is checked against what these runs must have produced, and the
view shard_status against the API's own rule (chalicelib.storage.shard_states.ShardStates) on
the same files.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from click.testing import CliRunner
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from chalicelib.analytics import glue_schema
from chalicelib.execution.failure_recorder import record_destination
from chalicelib.execution.worker import run_task
from chalicelib.model import ids
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits, SweepRequest
from chalicelib.model.validation import validate_request
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout, manifests
from chalicelib.storage.shard_states import shard_states
from chalicelib.storage.stores import LocalStore, StorageError
from chalicelib.storage.tables import PARTITIONS, SCHEMAS
from scripts.local_runs import manifest_of, run_shards, run_sweep, shard_payload
from sweeps import cli, sql
from sweeps.engines import local as local_engine
from sweeps.engines.local import LocalEngine, to_duckdb
from sweeps.errors import QueryError
from tests.support import FirstCreateFailingStore, destination_record

RUN_A = ids.new_run_id(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
RUN_C = ids.new_run_id(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
RUN_B = ids.new_run_id(datetime(2026, 1, 2, 9, 0, tzinfo=UTC))
DAY1, DAY2 = "2026-01-01", "2026-01-02"
SHARDS_A = 40
INJECTED_A = (3, 17)
RETRIED_THEN_OK, RETRIES_EXHAUSTED, PENDING, LATE_STORAGE_ERROR = 5, 9, 11, 13

BODY_A: dict[str, Any] = {
    "simulation": "option_pricing",
    "parameters": {
        "volatility": {"linspace": {"start": 0.1, "stop": 0.4, "num": 4}},
        "strike": {"range": {"start": 80, "stop": 120, "step": 2}},
        "paths": {"values": [200]},
    },
    "shards": {"count": SHARDS_A},
    "seed": 7,
    "fail_shards": list(INJECTED_A),
}
BODY_B: dict[str, Any] = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"range": {"start": 100, "stop": 110, "step": 1}}},
    "shards": {"count": 10},
    "fail_shards": [0],
}
BODY_C: dict[str, Any] = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"values": [10, 20, 30, 40, 50]}},
    "shards": {"size": 1},
}


@dataclass(frozen=True)
class Dataset:
    root: Path
    request_a: SweepRequest


def build_dataset(root: Path) -> Dataset:
    store = LocalStore(root)
    request_a = validate_request(BODY_A, None)
    manifests.save(store, manifest_of(request_a, RUN_A, DAY1))  # the recorder reads it
    lock_fails = {RETRIED_THEN_OK, RETRIES_EXHAUSTED, PENDING}
    flaky_ids = {*lock_fails, LATE_STORAGE_ERROR}
    run_shards(store, request_a, RUN_A, DAY1, set(range(SHARDS_A)) - flaky_ids)
    flaky = FirstCreateFailingStore(
        root,
        {layout.success_lock(RUN_A, s) for s in lock_fails}
        | {layout.results(RUN_A, LATE_STORAGE_ERROR)},
    )
    for shard_id in sorted(flaky_ids):
        with pytest.raises(StorageError):
            run_task(shard_payload(request_a, RUN_A, DAY1, shard_id), None, flaky, 0)
    # Lambda's retries of shards 5 and 13 succeed; shard 9's all crash; shard 11's has not run.
    for shard_id, attempt in ((RETRIED_THEN_OK, 2), (LATE_STORAGE_ERROR, 1)):
        retried = run_task(shard_payload(request_a, RUN_A, DAY1, shard_id), None, store, 0)
        assert (retried["status"], retried["attempt"]) == ("succeeded", attempt)
    payload = shard_payload(request_a, RUN_A, DAY1, RETRIES_EXHAUSTED)
    assert (
        record_destination(
            destination_record(
                payload,
                response={"errorType": "StorageError", "errorMessage": "SlowDown"},
                failed_at=datetime(2026, 1, 1, 10, 5, tzinfo=UTC),
            ),
            store,
        )["status"]
        == "failed"
    )
    run_sweep(root, BODY_C, RUN_C, DAY1)
    run_sweep(root, BODY_B, RUN_B, DAY2)
    return Dataset(root, request_a)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return build_dataset(tmp_path_factory.mktemp("analytics") / "data")


@pytest.fixture(scope="module")
def engine(dataset: Dataset) -> LocalEngine:
    return LocalEngine(dataset.root)


def outcome_rows(root: Path, run_id: str) -> list[dict[str, Any]]:
    """Outcome rows read straight from the files, with their path's status: the oracle."""
    rows = []
    for obj in LocalStore(root).list(layout.outcomes_prefix(run_id)):
        key = layout.parse_outcome(obj.key)
        assert key is not None
        row = pq.read_table(root / obj.key).to_pylist()[0]
        rows.append(row | {"status": key.status, "dt": key.dt})
    return rows


# ------------------------------------------------------------------------------ every file


@pytest.mark.parametrize("name", sql.query_names())
def test_every_file_parses_as_athena_sql_and_transpiles(name: str) -> None:
    text = sql.load_query(name)
    statements = sqlglot.parse(text, read="athena")
    assert len(statements) == 1 and statements[0] is not None
    level = ErrorLevel.IGNORE if name.startswith("ddl_") else ErrorLevel.RAISE
    duck = sqlglot.transpile(text, read="athena", write="duckdb", unsupported_level=level)
    assert len(duck) == 1


@pytest.mark.parametrize("name", ["ddl_outcomes", "ddl_results"])
def test_ddl_runs_on_duckdb_with_the_columns_duckdb_reads_from_real_files(
    name: str, engine: LocalEngine
) -> None:
    """The DDL (minus Hive-only clauses) creates a DuckDB table with the files' own columns."""
    table = name.removeprefix("ddl_")
    rendered = sql.render(sql.load_query(name), {"location": "s3://bucket/prefix"})
    duck = sqlglot.transpile(
        rendered, read="athena", write="duckdb", unsupported_level=ErrorLevel.IGNORE
    )
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ddl")
    con.execute("SET schema = 'ddl'")
    con.execute(duck[0])
    declared = con.execute(f"DESCRIBE ddl.{table}").fetchall()
    engine.refresh_views()
    real = engine.connection.execute(f"DESCRIBE {table}").fetchall()
    files = [(c[0], c[1]) for c in real if c[0] not in PARTITIONS[table]]
    # Hive's timestamp has no zone; Athena reads Parquet's UTC-adjusted millis into it.
    normal = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMP"}
    assert [(c[0], c[1]) for c in declared] == [(n, normal.get(t, t)) for n, t in files]
    assert [c[0] for c in real] == [*SCHEMAS[table].names, *PARTITIONS[table]]
    assert all(c[1] == "VARCHAR" for c in real if c[0] in PARTITIONS[table])


def _view_relations() -> set[str]:
    """The relation each view file creates."""
    names = set()
    for name in sql.view_names():
        create = sqlglot.parse_one(sql.load_query(name), read="athena")
        assert isinstance(create, exp.Create) and create.kind == "VIEW"
        names.add(create.this.name)
    return names


@pytest.mark.parametrize("name", sql.baseline_queries())
def test_per_run_queries_filter_every_scan_on_the_run_partition(name: str) -> None:
    """Athena prunes partitions only if each scan of a table has ``run_id = <the run>``.

    A scan of the view shard_status counts as a scan of outcomes: run_id is one of its grouping
    keys, so the filter is pushed through it to outcomes (checked on DuckDB's plan below)."""
    text = sql.load_query(name)
    tree = sqlglot.parse_one(text, read="athena")
    relations = {*glue_schema.TABLES, *_view_relations()}
    scans = [t for t in tree.find_all(exp.Table) if t.name in relations]
    assert scans
    per_run = "run_id" in sql.placeholders(text)
    for scan in scans:
        select = scan.find_ancestor(exp.Select)
        assert select is not None
        where = select.args.get("where")
        filters = [
            eq
            for eq in (where.find_all(exp.EQ) if where else [])
            if isinstance(eq.this, exp.Column)
            and eq.this.name == "run_id"
            and eq.expression.sql() == "'${run_id}'"
        ]
        assert bool(filters) == per_run, f"{name}: scan of {scan.name}"


def test_all_baseline_queries_are_covered_by_this_module() -> None:
    assert set(sql.baseline_queries()) == {
        "run_summary",
        "failure_rate",
        "failure_by_error",
        "coverage",
        "daily_failure_rate",
        "run_cost",
    }
    assert sql.generated_queries() == ["best_points"]  # over the typed views: test_typed_views
    assert sql.view_names() == ["view_shard_status"]
    assert _view_relations() == {"shard_status"}
    assert set(sql.query_names()) == {
        *sql.baseline_queries(),
        *sql.view_names(),
        "ddl_outcomes",
        "ddl_results",
        "ddl_usage",
        "ddl_reuse",
    }


def _code(name: str) -> str:
    """A file's SQL without its comments, lowercased."""
    return "\n".join(line.split("--")[0] for line in sql.load_query(name).splitlines()).lower()


def test_the_final_status_rule_is_written_only_in_the_view() -> None:
    """No query repeats the rule: none looks at retryable or counts success outcomes itself."""
    for name in sql.baseline_queries():
        code = _code(name)
        assert "retryable" not in code, name
        assert not re.search(r"\bstatus\s*=\s*'succeeded'", code), name
    assert "retryable" in _code("view_shard_status")


# ------------------------------------------------------------------------------ the view


def _manifest(run_id: str, request: SweepRequest) -> Manifest:
    limits = Limits(max_points=10**6, max_shards=10**4, allow_fault_injection=True)
    return Manifest.new(run_id, datetime(2026, 1, 1, tzinfo=UTC), "test", request, limits)


def test_the_view_agrees_with_the_python_rule_of_the_api(
    engine: LocalEngine, dataset: Dataset
) -> None:
    """shard_status's final_status equals ShardStates.state (what GET /sweeps/<id> reports)
    for every shard with an outcome. ShardStates reads retry markers where the view reads
    retryable; the worker writes a marker exactly for a retryable failure. (The API also counts
    a redriven shard as pending, which the tables cannot know; no run here was redriven.)"""
    rows = engine.run("SELECT * FROM shard_status ORDER BY run_id, shard_id").rows
    store = LocalStore(dataset.root)
    requests = {
        RUN_A: dataset.request_a,
        RUN_B: validate_request(BODY_B, None),
        RUN_C: validate_request(BODY_C, None),
    }
    assert sorted({r["run_id"] for r in rows}) == sorted(requests)
    for run_id, request in requests.items():
        states, _ = shard_states(store, _manifest(run_id, request))
        got = {r["shard_id"]: r["final_status"] for r in rows if r["run_id"] == run_id}
        # Shards with no outcome are pending to the API and absent from the view.
        with_outcome = {
            k: states.state(k)
            for k in range(states.count)
            if k in states.succeeded or k in states.latest_failure
        }
        assert got == with_outcome, run_id
    by_state = {
        s: sorted(r["shard_id"] for r in rows if r["run_id"] == RUN_A and r["final_status"] == s)
        for s in ("failed", "pending")
    }
    assert by_state == {"failed": sorted([*INJECTED_A, RETRIES_EXHAUSTED]), "pending": [PENDING]}


def test_the_view_columns_against_the_files(engine: LocalEngine, dataset: Dataset) -> None:
    result = engine.run("SELECT * FROM shard_status WHERE run_id = '${run_id}'", run_id=RUN_A)
    assert result.columns == [
        "run_id",
        "dt",
        "shard_id",
        "attempts",
        "successes",
        "points",
        "last_failure_retryable",
        "last_error_code",
        "final_status",
    ]
    by_shard: dict[int, list[dict[str, Any]]] = {}
    for row in outcome_rows(dataset.root, RUN_A):
        by_shard.setdefault(row["shard_id"], []).append(row)
    expected = []
    for shard_id, attempts in sorted(by_shard.items()):
        failures = [r for r in attempts if r["status"] == "failed"]
        latest = max(failures, key=lambda r: r["attempt"]) if failures else None
        expected.append(
            {
                "run_id": RUN_A,
                "dt": DAY1,
                "shard_id": shard_id,
                "attempts": len(attempts),
                "successes": sum(r["status"] == "succeeded" for r in attempts),
                "points": max(r["point_count"] for r in attempts),
                "last_failure_retryable": latest["retryable"] if latest else None,
                "last_error_code": latest["error_code"] if latest else None,
                "final_status": _final_status(attempts),
            }
        )
    assert sorted(result.rows, key=lambda r: r["shard_id"]) == expected
    assert len(expected) == SHARDS_A
    shard_9 = next(r for r in expected if r["shard_id"] == RETRIES_EXHAUSTED)
    assert (shard_9["attempts"], shard_9["last_error_code"]) == (2, "RETRIES_EXHAUSTED")


@pytest.mark.parametrize(
    "name",
    [n for n in sql.baseline_queries() if "run_id" in sql.placeholders(sql.load_query(n))],
)
def test_per_run_queries_read_only_the_runs_files_on_duckdb(
    engine: LocalEngine, dataset: Dataset, name: str
) -> None:
    """DuckDB's plan: every Parquet scan, through the view or not, is pruned to run C's files
    (5 of each table), out of every run's."""
    params: dict[str, object] = {"run_id": RUN_C}
    params |= {"shard_count": 5} if name == "coverage" else {}
    duck = to_duckdb(sql.strip_header(sql.render(sql.load_query(name), params)))
    engine.refresh_views()
    plan = engine.connection.sql("EXPLAIN " + duck).fetchall()[0][1]
    scanned = [(int(a), int(b)) for a, b in re.findall(r"Scanning Files: (\d+)/(\d+)", plan)]
    assert scanned
    # total == 5: the listing itself was pruned to the run's folder (run_cost's plan).
    assert all(read <= 5 <= total for read, total in scanned), scanned


# ------------------------------------------------------------------------------ numbers


def _final_status(rows: list[dict[str, Any]]) -> str:
    if any(r["status"] == "succeeded" for r in rows):
        return "succeeded"
    latest = max((r for r in rows if r["status"] == "failed"), key=lambda r: r["attempt"])
    return "pending" if latest["retryable"] else "failed"


def test_run_summary(engine: LocalEngine, dataset: Dataset) -> None:
    result = engine.run("run_summary", run_id=RUN_A)
    assert result.columns == [
        "status",
        "shards",
        "points",
        "attempts",
        "max_attempts",
        "min_duration_ms",
        "avg_duration_ms",
        "p95_duration_ms",
        "max_duration_ms",
    ]
    got = {r["status"]: r for r in result.rows}
    counts = {
        s: (r["shards"], r["points"], r["attempts"], r["max_attempts"]) for s, r in got.items()
    }
    assert counts == {
        "succeeded": (36, 72, 38, 2),  # shards 5 and 13: a storage failure, then a success
        "failed": (3, 6, 4, 2),  # 3 and 17 injected; 9: storage failure, retries exhausted
        "pending": (1, 2, 1, 1),  # 11: a retryable failure, nothing after it yet
    }
    # Durations against the files themselves.
    rows = outcome_rows(dataset.root, RUN_A)
    by_shard: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_shard.setdefault(row["shard_id"], []).append(row)
    for status, summary in got.items():
        durations = [
            r["duration_ms"]
            for attempts in by_shard.values()
            if _final_status(attempts) == status
            for r in attempts
        ]
        assert summary["min_duration_ms"] == min(durations)
        assert summary["max_duration_ms"] == max(durations)
        assert summary["avg_duration_ms"] == pytest.approx(sum(durations) / len(durations))
        assert min(durations) <= summary["p95_duration_ms"] <= max(durations)


def test_failure_rate_per_run_across_runs(engine: LocalEngine) -> None:
    rows = engine.run("failure_rate").rows
    assert [r["run_id"] for r in rows] == sorted([RUN_A, RUN_B, RUN_C])
    got = {r["run_id"]: r for r in rows}
    assert got[RUN_A] | {"failure_rate": 0} == {
        "run_id": RUN_A,
        "dt": DAY1,
        "shards": 40,
        "succeeded": 36,
        "failed": 3,
        "pending": 1,
        "failure_rate": 0,
    }
    assert got[RUN_A]["failure_rate"] == pytest.approx(3 / 40)
    assert (got[RUN_B]["shards"], got[RUN_B]["failed"], got[RUN_B]["dt"]) == (10, 1, DAY2)
    assert got[RUN_B]["failure_rate"] == pytest.approx(0.1)
    assert (got[RUN_C]["shards"], got[RUN_C]["failed"], got[RUN_C]["failure_rate"]) == (5, 0, 0)


def test_failure_by_error_code(engine: LocalEngine) -> None:
    rows = engine.run("failure_by_error", run_id=RUN_A).rows
    assert [
        (r["error_code"], r["failed_attempts"], r["shards_affected"], r["failed_shards"])
        for r in rows
    ] == [
        ("INJECTED_FAILURE", 2, 2, 2),
        ("RETRIES_EXHAUSTED", 1, 1, 1),
        ("STORAGE_ERROR", 4, 4, 0),  # retryable: counted as attempts, never as final
    ]
    assert [r["failure_rate"] for r in rows] == pytest.approx([2 / 40, 1 / 40, 0.0])
    assert engine.run("failure_by_error", run_id=RUN_C).rows == []


def test_daily_failure_rate_across_runs(engine: LocalEngine) -> None:
    rows = engine.run("daily_failure_rate").rows
    assert [(r["dt"], r["runs"], r["shards"], r["failed"], r["pending"]) for r in rows] == [
        (DAY1, 2, 45, 3, 1),
        (DAY2, 1, 10, 1, 0),
    ]
    assert [r["failure_rate"] for r in rows] == pytest.approx([3 / 45, 1 / 10])


def test_coverage_of_the_runs_as_produced(engine: LocalEngine) -> None:
    assert engine.run("coverage", run_id=RUN_A, shard_count=SHARDS_A).rows == [
        {"shard_id": PENDING, "problem": "pending", "attempts": 1, "successes": 0}
    ]
    assert engine.run("coverage", run_id=RUN_B, shard_count=10).rows == []
    assert engine.run("coverage", run_id=RUN_C, shard_count=5).rows == []
    # Outcomes for shards beyond the count the caller claims are reported, not ignored.
    extra = engine.run("coverage", run_id=RUN_C, shard_count=3).rows
    assert [(r["shard_id"], r["problem"]) for r in extra] == [(3, "unexpected"), (4, "unexpected")]


def test_coverage_finds_a_deleted_shard_and_a_planted_duplicate_success(
    dataset: Dataset, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(dataset.root, root)
    store = LocalStore(root)
    gone, doubled = 20, 21
    for obj in store.list(layout.outcomes_prefix(RUN_A)):
        parsed = layout.parse_outcome(obj.key)
        assert parsed is not None
        if parsed.shard_id == gone:
            (root / obj.key).unlink()
        if parsed.shard_id == doubled:
            twin = layout.outcome(RUN_A, "succeeded", DAY1, doubled, parsed.attempt + 1)
            shutil.copyfile(root / obj.key, root / twin)
    (root / layout.results(RUN_A, gone)).unlink()
    rows = LocalEngine(root).run("coverage", run_id=RUN_A, shard_count=SHARDS_A).rows
    assert rows == [
        {"shard_id": PENDING, "problem": "pending", "attempts": 1, "successes": 0},
        {"shard_id": gone, "problem": "missing", "attempts": 0, "successes": 0},
        {"shard_id": doubled, "problem": "duplicate_success", "attempts": 2, "successes": 2},
    ]


def test_coverage_builds_shard_ids_past_one_thousand(tmp_path: Path) -> None:
    rows = LocalEngine(tmp_path).run("coverage", run_id=RUN_A, shard_count=2503).rows
    assert [r["shard_id"] for r in rows] == list(range(2503))
    assert {r["problem"] for r in rows} == {"missing"}


def test_best_points_reads_the_typed_view(engine: LocalEngine) -> None:
    """Its numbers are checked in test_typed_views; here, that it runs among the others."""
    rows = engine.run("best_points", run_id=RUN_A, metric="abs_error").rows
    assert {r["parameter"] for r in rows} == {p.name for p in REGISTRY["option_pricing"].parameters}
    # 36 succeeded shards of 2 points: a single-valued axis counts every point once.
    assert [r["point_count"] for r in rows if r["parameter"] == "paths"] == [72]
    assert engine.run("best_points", run_id=RUN_A, metric="no_such_metric").rows == []


# ------------------------------------------------------------------------------ the engine


def test_an_empty_data_root_gives_empty_results(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / "nothing-yet")
    assert engine.run("run_summary", run_id=RUN_A).rows == []
    assert engine.run("daily_failure_rate").rows == []
    assert engine.run("best_points", run_id=RUN_A, metric="abs_error").rows == []
    view = engine.run("SELECT * FROM shard_status")
    assert (len(view.columns), view.rows) == (9, [])


def test_new_files_are_seen_by_the_next_query(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path)
    assert engine.run("failure_rate").rows == []
    run_sweep(tmp_path, BODY_C, RUN_C, DAY1)
    assert [r["shards"] for r in engine.run("failure_rate").rows] == [5]


def test_a_data_root_emptied_since_the_last_query_gives_empty_results(tmp_path: Path) -> None:
    run_sweep(tmp_path, BODY_C, RUN_C, DAY1)
    engine = LocalEngine(tmp_path)
    assert len(engine.run("failure_rate").rows) == 1
    shutil.rmtree(tmp_path / "outcomes")
    assert engine.run("failure_rate").rows == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"run_id": "x' OR '1'='1"}, "run_id must match"),
        ({"run_id": None}, "needs run_id"),
        ({"run_id": RUN_A, "shard_count": 3}, "takes no shard_count"),
    ],
)
def test_parameters_are_validated_before_anything_runs(
    engine: LocalEngine, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        engine.run("run_summary", **params)


@pytest.mark.parametrize("bad", [0, -1, True, "40", 10**8])
def test_shard_count_must_be_a_sane_integer(engine: LocalEngine, bad: object) -> None:
    with pytest.raises(QueryError, match="shard_count"):
        engine.run("coverage", run_id=RUN_A, shard_count=bad)


def test_sql_text_runs_too_and_what_duckdb_lacks_is_an_error(engine: LocalEngine) -> None:
    rows = engine.run("SELECT count(*) AS n FROM results WHERE run_id = '${run_id}'", run_id=RUN_B)
    assert rows.rows == [{"n": 9}]
    with pytest.raises(QueryError, match="DuckDB"):
        engine.run("SELECT format_datetime(started_at, 'yyyy') FROM outcomes")
    with pytest.raises(QueryError, match="no query"):
        engine.run("no_such_query")


def test_counts_and_sums_come_back_as_athenas_bigint(engine: LocalEngine) -> None:
    """Athena types count_if and sum over integers as bigint; DuckDB as HUGEINT, which Arrow
    gives as decimal128(38, 0) (Python Decimal: JSON strings in `sweep query --format json`).
    The local engine answers Athena's types: int64, never a decimal."""
    result = engine.run(
        "SELECT count(*) AS n, count_if(shard_id > 1) AS some, sum(point_index) AS total,"
        " sum(CASE WHEN replicate = 0 THEN 1 ELSE 0 END) AS plain"
        " FROM results WHERE run_id = '${run_id}'",
        run_id=RUN_C,
    )
    assert {f.name: str(f.type) for f in result.table.schema} == {
        "n": "int64",
        "some": "int64",
        "total": "int64",
        "plain": "int64",
    }
    assert result.rows == [{"n": 5, "some": 3, "total": 10, "plain": 5}]
    assert all(type(v) is int for v in result.rows[0].values())
    for name, params in (
        ("failure_rate", {}),
        ("daily_failure_rate", {}),
        ("run_summary", {"run_id": RUN_A}),
        ("coverage", {"run_id": RUN_A, "shard_count": SHARDS_A}),
        ("SELECT * FROM shard_status WHERE run_id = '${run_id}'", {"run_id": RUN_A}),
    ):
        table = engine.run(name, **params).table
        decimals = [f.name for f in table.schema if str(f.type).startswith("decimal")]
        assert decimals == [], name


@pytest.mark.parametrize("table", ["outcomes", "results"])
def test_a_table_read_through_the_engine_has_the_contracts_types(
    engine: LocalEngine, table: str
) -> None:
    """`SELECT *` answers the contract's columns with its types (timestamp(ms, UTC), as the
    files hold it and Athena reads it, not DuckDB's microseconds), then the partition
    columns as strings."""
    answer = engine.run(f"SELECT * FROM {table} WHERE run_id = '${{run_id}}'", run_id=RUN_A).table
    expected = [(f.name, f.type) for f in SCHEMAS[table]]
    expected += [(p, pa.string()) for p in PARTITIONS[table]]
    assert [(f.name, f.type) for f in answer.schema] == expected
    if table == "outcomes":
        stamps = engine.run("SELECT now() AS now, min(started_at) AS first FROM outcomes").table
        assert [f.type for f in stamps.schema] == [pa.timestamp("ms", tz="UTC")] * 2


# Constructs sqlglot passes through unchanged although DuckDB differs (docs/analytics.md).
KNOWN_GAPS = ("map_agg", "at_timezone", "format_datetime", "parse_datetime", "date_diff", "$path")


@pytest.mark.parametrize("name", [*sql.baseline_queries(), *sql.view_names()])
def test_queries_stay_in_the_subset_both_engines_agree_on(name: str) -> None:
    text = sql.load_query(name)
    code = _code(name)
    assert not [g for g in KNOWN_GAPS if g in code]
    # Trino's integer / truncates, DuckDB's does not: every division must be over doubles.
    for div in sqlglot.parse_one(text, read="athena").find_all(exp.Div):
        sides = (div.this, div.expression)
        doubles = [
            s
            for s in sides
            if (isinstance(s, exp.Cast) and s.to.is_type("double"))
            or (isinstance(s, exp.Literal) and not s.is_string and not s.is_int)
        ]
        assert doubles, f"{name}: integer division {div.sql()}"


def test_cli_prints_a_query(dataset: Dataset) -> None:
    runner = CliRunner()
    argv = ["query", "failure_by_error", "--root", str(dataset.root), "--run", RUN_A]
    answer = runner.invoke(cli.main, argv)
    assert answer.exit_code == 0, answer.output
    assert "INJECTED_FAILURE" in answer.stdout and "(3 rows)" in answer.stderr
    # coverage needs the shard count; without --shard-count it asks the API, here unreachable.
    argv = ["--api", "http://127.0.0.1:9", "query", "coverage", "--root", str(dataset.root)]
    answer = runner.invoke(cli.main, [*argv, "--run", RUN_A])
    assert answer.exit_code == 1 and answer.stderr.startswith("error: unreachable")


def test_cli_names_a_default_data_root_that_does_not_exist(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sweep query`` installed outside the repository, with no SWEEP_LOCAL_ROOT, would read an
    empty folder: it says so and exits 1, as ``Client`` does, instead of printing 0 rows. A root
    given with --root, or set in SWEEP_LOCAL_ROOT and present, is read."""
    runner = CliRunner()
    monkeypatch.setenv("SWEEP_LOCAL_ROOT", str(tmp_path / "missing"))
    argv = ["query", "failure_by_error", "--run", RUN_A]
    answer = runner.invoke(cli.main, argv)
    assert answer.exit_code == 1, answer.output
    assert "no local data root" in answer.stderr and "SWEEP_LOCAL_ROOT" in answer.stderr
    assert runner.invoke(cli.main, [*argv, "--root", str(dataset.root)]).exit_code == 0
    monkeypatch.setenv("SWEEP_LOCAL_ROOT", str(dataset.root))
    assert "INJECTED_FAILURE" in runner.invoke(cli.main, argv).stdout


def test_cli_leaves_views_to_the_local_engine() -> None:
    runner = CliRunner()
    answer = runner.invoke(cli.main, ["query", "--create-views"])
    assert answer.exit_code == 2
    assert "--create-views needs --engine athena" in answer.stderr
    listed = runner.invoke(cli.main, ["query", "--list"]).stdout.split()
    assert listed == [*sql.all_queries(), *sql.view_relations()]
    assert sql.view_relations()[0] == "shard_status"  # the name SQL reads, not the file's
    assert "results_option_pricing" in listed


def test_a_file_gone_between_listing_and_reading_is_listed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reuse merge replacing its family's generation, or a clean-up, can remove a file
    after the engine listed it and before DuckDB binds the view over it: the query lists
    again and answers, instead of failing (seen once in CI: "No files found")."""
    run_sweep(tmp_path, BODY_C, RUN_C, DAY1)
    real = local_engine.table_files
    gone = str(tmp_path / "outcomes" / "run_id=gone" / "vanished.parquet")
    calls: list[str] = []

    def listed_then_gone(root: Path, table: str, listings: Any = None) -> list[str]:
        calls.append(table)
        files = real(root, table, listings)
        return [*files, gone] if table == "outcomes" and calls.count("outcomes") == 1 else files

    monkeypatch.setattr(local_engine, "table_files", listed_then_gone)
    engine = LocalEngine(tmp_path)
    assert [r["shards"] for r in engine.run("failure_rate").rows] == [5]
    assert calls.count("outcomes") == 2
