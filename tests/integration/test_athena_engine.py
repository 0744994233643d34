"""The Athena engine: call sequence and polling against moto, pagination and the error paths
moto cannot produce (reasons, AthenaError) with botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest
from botocore import xform_name
from botocore.stub import Stubber
from click.testing import CliRunner
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager

from chalicelib import aws
from sweeps import cli, sql
from sweeps.engines.athena import AthenaEngine
from sweeps.errors import QueryError, QueryFailed, QueryTimeout

REGION = "us-east-1"
WORKGROUP = "sweeps"
DATABASE = "sweeps_db"
RUN_ID = "20260101T100000000Z-0123456789ab"


class Recorder:
    """Wraps a client and records (operation, parameters) of every API call, in order, from
    botocore's own events: calls made through a paginator are recorded too."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("before-parameter-build.athena", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((xform_name(model.name), dict(params)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def athena() -> Iterator[Recorder]:
    with mock_aws():
        client = boto3.client("athena", region_name=REGION)
        client.create_work_group(
            Name=WORKGROUP,
            Configuration={
                "ResultConfiguration": {"OutputLocation": "s3://sweeps-results/athena/"},
                "EnforceWorkGroupConfiguration": True,
            },
        )
        yield Recorder(client)
    state_manager.unset_transition("athena::execution")


def backend() -> Any:
    return athena_backends[DEFAULT_ACCOUNT_ID][REGION]


def queue_result(header: list[str], types: list[str], rows: list[list[str | None]]) -> None:
    def cells(values: list[str | None]) -> dict[str, Any]:
        return {"Data": [{"VarCharValue": v} if v is not None else {} for v in values]}

    backend().query_results_queue.append(
        QueryResults(
            rows=[cells(list(header)), *(cells(r) for r in rows)],
            column_info=[
                {"Name": h, "Label": h, "Type": t, "Nullable": "UNKNOWN"}
                for h, t in zip(header, types, strict=True)
            ],
        )
    )


def polls_per_state(n: int) -> None:
    """moto advances QUEUED → RUNNING → SUCCEEDED once every ``n`` GetQueryExecution calls."""
    state_manager.set_transition("athena::execution", {"progression": "manual", "times": n})


def make_engine(client: Any, sleeps: list[float], **kwargs: Any) -> AthenaEngine:
    options: dict[str, Any] = {"poll_initial_s": 0.5, "poll_max_s": 2.0, "sleep": sleeps.append}
    return AthenaEngine(WORKGROUP, DATABASE, lambda: client, **(options | kwargs))


def test_a_query_runs_in_the_workgroup_polls_and_reads_typed_rows(athena: Recorder) -> None:
    polls_per_state(1)
    queue_result(
        ["status", "shards", "avg_duration_ms", "done"],
        ["varchar", "bigint", "double", "boolean"],
        [["succeeded", "36", "4.5", "true"], ["failed", "3", None, "false"]],
    )
    sleeps: list[float] = []
    result = make_engine(athena, sleeps).run("run_summary", run_id=RUN_ID)

    assert athena.operations == [
        "start_query_execution",
        "get_query_execution",  # QUEUED → RUNNING
        "get_query_execution",  # RUNNING → SUCCEEDED
        "get_query_results",
    ]
    _, start = athena.calls[0]
    assert start["WorkGroup"] == WORKGROUP
    assert start["QueryExecutionContext"] == {"Database": DATABASE}
    assert f"WHERE run_id = '{RUN_ID}'" in start["QueryString"]
    assert "${" not in start["QueryString"]
    assert sleeps == [0.5]
    assert athena.calls[-1][1] == {"QueryExecutionId": result.query_id, "MaxResults": 1000}

    assert result.columns == ["status", "shards", "avg_duration_ms", "done"]
    assert result.rows == [  # the header row is not data
        {"status": "succeeded", "shards": 36, "avg_duration_ms": 4.5, "done": True},
        {"status": "failed", "shards": 3, "avg_duration_ms": None, "done": False},
    ]
    types = {f.name: str(f.type) for f in result.table.schema}  # typed by ColumnInfo
    assert types == {
        "status": "string",
        "shards": "int64",
        "avg_duration_ms": "double",
        "done": "bool",
    }
    assert result.table.to_pylist() == result.rows
    execution = backend().executions[result.query_id]
    assert execution.workgroup.name == WORKGROUP
    assert execution.context == {"Database": DATABASE}


def test_a_typed_views_columns_keep_their_widths(athena: Recorder) -> None:
    """``Run.results()`` on Athena answers the types the local engine does: the view's
    shard_id and replicate are INTEGER (int32), not widened to int64; a REAL is float32."""
    polls_per_state(1)
    queue_result(
        ["point_index", "shard_id", "replicate", "strike", "small", "tiny", "ratio"],
        ["bigint", "integer", "integer", "double", "smallint", "tinyint", "real"],
        [["5", "2", "0", "90.0", "7", "1", "0.5"]],
    )
    result = make_engine(athena, []).execute("SELECT 1")
    assert {f.name: str(f.type) for f in result.table.schema} == {
        "point_index": "int64",
        "shard_id": "int32",
        "replicate": "int32",
        "strike": "double",
        "small": "int16",
        "tiny": "int8",
        "ratio": "float",
    }
    assert result.table.to_pylist() == result.rows
    assert result.rows == [
        {
            "point_index": 5,
            "shard_id": 2,
            "replicate": 0,
            "strike": 90.0,
            "small": 7,
            "tiny": 1,
            "ratio": 0.5,
        }
    ]


def test_timestamps_and_dates_are_typed_as_the_local_engine_gives_them(athena: Recorder) -> None:
    """outcomes.started_at is timestamp(ms, UTC) in the contract and on the local engine;
    Athena sends its text (`2026-01-01 10:00:00.123`). A column whose text does not parse
    stays text, whole, rather than failing the query."""
    polls_per_state(1)
    queue_result(
        ["started_at", "dt", "odd", "zoned"],
        ["timestamp", "date", "timestamp", "timestamp with time zone"],
        [
            ["2026-01-01 10:00:00.123", "2026-01-01", "2026-01-01 10:00:00.000", None],
            [None, None, "not a time", "2026-01-01 10:00:00.000 UTC"],
        ],
    )
    result = make_engine(athena, []).execute("SELECT 1")
    assert {f.name: str(f.type) for f in result.table.schema} == {
        "started_at": "timestamp[ms, tz=UTC]",
        "dt": "date32[day]",
        "odd": "string",
        "zoned": "string",
    }
    assert result.rows[0]["started_at"] == datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert result.rows[0]["dt"] == date(2026, 1, 1)
    assert [r["odd"] for r in result.rows] == ["2026-01-01 10:00:00.000", "not a time"]
    assert result.table.to_pylist() == result.rows


def test_polling_backs_off_exponentially_up_to_the_cap(athena: Recorder) -> None:
    polls_per_state(4)
    queue_result(["n"], ["integer"], [["1"]])
    sleeps: list[float] = []
    result = make_engine(athena, sleeps).execute("SELECT 1 AS n")
    assert athena.operations.count("get_query_execution") == 8
    assert sleeps == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert result.rows == [{"n": 1}]


def test_a_query_cancelled_while_polled_raises(athena: Recorder) -> None:
    polls_per_state(3)
    engine: AthenaEngine

    def cancel_on_first_sleep(_: float) -> None:
        (query_id,) = backend().executions
        athena.client.stop_query_execution(QueryExecutionId=query_id)

    engine = AthenaEngine(WORKGROUP, DATABASE, lambda: athena, sleep=cancel_on_first_sleep)
    with pytest.raises(QueryFailed) as info:
        engine.execute("SELECT 1")
    assert info.value.state == "CANCELLED"
    assert "get_query_results" not in athena.operations


def test_a_failed_query_raises_without_reading_results(athena: Recorder) -> None:
    polls_per_state(3)

    def fail_on_first_sleep(_: float) -> None:
        (execution,) = backend().executions.values()
        execution.status = "FAILED"

    engine = AthenaEngine(WORKGROUP, DATABASE, lambda: athena, sleep=fail_on_first_sleep)
    with pytest.raises(QueryFailed, match="FAILED") as info:
        engine.execute("SELECT nope")
    assert info.value.state == "FAILED"
    assert athena.operations == [
        "start_query_execution",
        "get_query_execution",
        "get_query_execution",
    ]


def test_a_query_past_the_timeout_is_stopped(athena: Recorder) -> None:
    polls_per_state(1000)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    engine = make_engine(athena, [], sleep=sleep, clock=lambda: now[0], timeout_s=10.0)
    with pytest.raises(QueryTimeout, match="after 10 s"):
        engine.execute("SELECT 1")
    assert athena.operations[-1] == "stop_query_execution"
    (execution,) = backend().executions.values()
    assert execution.status == "CANCELLED"
    assert now[0] <= 10.0


def test_ddl_is_rendered_with_its_location(athena: Recorder) -> None:
    make_engine(athena, []).run("ddl_results", location="s3://sweeps-data/dev/")
    _, start = athena.calls[0]
    assert start["QueryString"].startswith("CREATE EXTERNAL TABLE IF NOT EXISTS results (")
    assert "LOCATION 's3://sweeps-data/dev/results/'" in start["QueryString"]
    assert athena.operations[-1] == "get_query_results"


def test_create_views_runs_each_view_file_once_in_the_workgroup(athena: Recorder) -> None:
    polls_per_state(1)
    sleeps: list[float] = []
    created = make_engine(athena, sleeps).create_views()

    assert sql.view_names() == ["view_shard_status"]
    views = [name for name, _ in sql.all_views()]
    # The file's view first (the typed views read only the tables), then one per simulation.
    assert views == ["view_shard_status", "results_option_pricing", "results_monte_carlo_pi"]
    assert list(created) == views
    # Per view: start, then poll QUEUED → RUNNING → SUCCEEDED; no results to read.
    assert athena.operations == [
        "start_query_execution",
        "get_query_execution",
        "get_query_execution",
    ] * len(views)
    starts = [kwargs for name, kwargs in athena.calls if name == "start_query_execution"]
    for (view, text), start in zip(sql.all_views(), starts, strict=True):
        assert start["WorkGroup"] == WORKGROUP
        assert start["QueryExecutionContext"] == {"Database": DATABASE}
        assert start["QueryString"] == text
        # The Athena text, header comment dropped: not DuckDB's translation of it.
        assert "--" not in start["QueryString"]
        if view.startswith("results_"):
            assert start["QueryString"].startswith(f"CREATE OR REPLACE VIEW {view} AS\n")
    assert starts[0]["QueryString"] == sql.view_sql("view_shard_status")
    assert starts[0]["QueryString"].startswith("CREATE OR REPLACE VIEW shard_status AS\n")
    assert "max_by(retryable, attempt)" in starts[0]["QueryString"]
    polled = [kwargs for name, kwargs in athena.calls if name == "get_query_execution"]
    assert [p["QueryExecutionId"] for p in polled] == [
        query_id for query_id in created.values() for _ in range(2)
    ]
    for query_id in created.values():
        execution = backend().executions[query_id]
        assert execution.status == "SUCCEEDED"
        assert execution.workgroup.name == WORKGROUP
        assert execution.context == {"Database": DATABASE}
    assert sleeps == [0.5] * len(views)


def test_create_views_raises_when_a_view_fails(athena: Recorder) -> None:
    polls_per_state(3)

    def fail_on_first_sleep(_: float) -> None:
        (execution,) = backend().executions.values()
        execution.status = "FAILED"

    engine = AthenaEngine(WORKGROUP, DATABASE, lambda: athena, sleep=fail_on_first_sleep)
    with pytest.raises(QueryFailed, match="FAILED"):
        engine.create_views()
    assert athena.operations.count("start_query_execution") == 1


def test_cli_creates_the_views_on_athena(athena: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    polls_per_state(1)  # one real sleep of 0.2 s between the two polls, per view
    monkeypatch.setattr(aws, "athena", lambda: athena)
    argv = ["query", "--engine", "athena", "--workgroup", WORKGROUP, "--database", DATABASE]
    answer = CliRunner().invoke(cli.main, [*argv, "--create-views"])
    assert answer.exit_code == 0, answer.output
    assert "view_shard_status: created (query " in answer.stdout
    assert "results_option_pricing: created (query " in answer.stdout
    assert athena.operations.count("start_query_execution") == len(sql.all_views())
    answer = CliRunner().invoke(cli.main, [*argv, "--create-views", "run_summary"])
    assert answer.exit_code == 2 and "--create-views takes no query" in answer.stderr


def test_cli_takes_workgroup_and_database_from_the_settings(
    athena: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same SWEEP_* variables the functions read, through Settings, not os.environ."""
    polls_per_state(1)
    monkeypatch.setattr(aws, "athena", lambda: athena)
    monkeypatch.setenv("SWEEP_ATHENA_WORKGROUP", WORKGROUP)
    monkeypatch.setenv("SWEEP_GLUE_DATABASE", DATABASE)
    answer = CliRunner().invoke(cli.main, ["query", "--engine", "athena", "--create-views"])
    assert answer.exit_code == 0, answer.output
    started = [kwargs for name, kwargs in athena.calls if name == "start_query_execution"]
    assert started[0]["WorkGroup"] == WORKGROUP
    assert started[0]["QueryExecutionContext"] == {"Database": DATABASE}
    monkeypatch.setenv("SWEEP_MAX_POINTS", "lots")  # a malformed setting: named, usage error
    answer = CliRunner().invoke(cli.main, ["query", "--engine", "athena", "--create-views"])
    assert answer.exit_code == 2 and "SWEEP_MAX_POINTS must be an integer" in answer.stderr


# ------------------------------------------------------------------------------ Stubber


def _execution(state: str, statement: str = "DML", **status: Any) -> dict[str, Any]:
    return {
        "QueryExecution": {
            "QueryExecutionId": "q-1",
            "StatementType": statement,
            "Status": {"State": state, "SubmissionDateTime": datetime(2026, 1, 1), **status},
            "Statistics": {"DataScannedInBytes": 123, "EngineExecutionTimeInMillis": 456},
        }
    }


def _page(rows: list[list[str | None]], token: str | None, types: list[str]) -> dict[str, Any]:
    page: dict[str, Any] = {
        "UpdateCount": 0,
        "ResultSet": {
            "Rows": [
                {"Data": [{"VarCharValue": v} if v is not None else {} for v in row]}
                for row in rows
            ],
            "ResultSetMetadata": {
                "ColumnInfo": [
                    {"Name": n, "Label": n, "Type": t}
                    for n, t in zip(["shard_id", "problem", "share"], types, strict=True)
                ]
            },
        },
    }
    if token:
        page["NextToken"] = token
    return page


def test_results_are_paged_with_next_token() -> None:
    client = boto3.client("athena", region_name=REGION)
    types = ["integer", "varchar", "decimal"]
    with Stubber(client) as stub:
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-1"},
            {
                "QueryString": "SELECT 1",
                "WorkGroup": WORKGROUP,
                "QueryExecutionContext": {"Database": DATABASE},
            },
        )
        stub.add_response("get_query_execution", _execution("RUNNING"), {"QueryExecutionId": "q-1"})
        stub.add_response(
            "get_query_execution", _execution("SUCCEEDED"), {"QueryExecutionId": "q-1"}
        )
        pages: list[tuple[list[list[str | None]], str | None]] = [
            ([["shard_id", "problem", "share"], ["1", "missing", "0.5"], ["2", None, None]], "t1"),
            ([["3", "pending", "1.25"], ["4", "missing", "0"]], "t2"),
            ([["5", "duplicate_success", "2"]], None),
        ]
        previous: str | None = None
        for rows, token in pages:
            expected: dict[str, Any] = {"QueryExecutionId": "q-1", "MaxResults": 2}
            if previous:
                expected["NextToken"] = previous
            stub.add_response("get_query_results", _page(rows, token, types), expected)
            previous = token
        sleeps: list[float] = []
        engine = make_engine(client, sleeps, page_size=2)
        result = engine.execute("SELECT 1")
        stub.assert_no_pending_responses()
    assert [r["shard_id"] for r in result.rows] == [1, 2, 3, 4, 5]
    assert result.rows[1] == {"shard_id": 2, "problem": None, "share": None}
    assert str(result.rows[2]["share"]) == "1.25"
    assert result.stats["DataScannedInBytes"] == 123
    assert sleeps == [0.5]


def test_failure_reason_and_error_category_are_reported() -> None:
    client = boto3.client("athena", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stub.add_response(
            "get_query_execution",
            _execution(
                "FAILED",
                StateChangeReason="COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved",
                AthenaError={"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False},
            ),
        )
        with pytest.raises(QueryFailed) as info:
            make_engine(client, []).execute("SELECT nope")
    error = info.value
    assert (error.query_id, error.state, error.category, error.error_type) == (
        "q-1",
        "FAILED",
        2,
        1006,
    )
    assert "Column 'nope' cannot be resolved" in str(error)
    assert "error category 2" in str(error)


def test_cancelled_with_a_reason() -> None:
    client = boto3.client("athena", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stub.add_response(
            "get_query_execution",
            _execution("CANCELLED", StateChangeReason="Query exceeded the per-query data cutoff"),
        )
        with pytest.raises(
            QueryFailed, match="CANCELLED: Query exceeded the per-query data cutoff"
        ):
            make_engine(client, []).execute("SELECT * FROM results")


def test_only_a_select_has_a_header_row() -> None:
    """SHOW PARTITIONS (a UTILITY statement) returns data from its first row on."""
    client = boto3.client("athena", region_name=REGION)
    partition = f"run_id={RUN_ID}/status=failed/dt=2026-01-01"
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_execution", _execution("SUCCEEDED", statement="UTILITY"))
        stub.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "Rows": [{"Data": [{"VarCharValue": partition}]}],
                    "ResultSetMetadata": {"ColumnInfo": [{"Name": "partition", "Type": "string"}]},
                }
            },
        )
        result = make_engine(client, []).execute("SHOW PARTITIONS outcomes")
    assert result.rows == [{"partition": partition}]


def test_a_row_that_does_not_match_the_columns_is_an_error() -> None:
    client = boto3.client("athena", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_execution", _execution("SUCCEEDED", statement="UTILITY"))
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": [{"Data": [{"VarCharValue": "x"}]}]}},
        )
        with pytest.raises(QueryError, match="1 values for 0 columns"):
            make_engine(client, []).execute("SHOW TABLES")


@pytest.mark.parametrize("operation", ["start_query_execution", "get_query_results"])
def test_client_errors_become_query_errors(operation: str) -> None:
    client = boto3.client("athena", region_name=REGION)
    with Stubber(client) as stub:
        if operation == "get_query_results":
            stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
            stub.add_response("get_query_execution", _execution("SUCCEEDED"))
        stub.add_client_error(
            operation, "InvalidRequestException", "WorkGroup sweeps is disabled", 400
        )
        with pytest.raises(
            QueryError, match="InvalidRequestException: WorkGroup sweeps is disabled"
        ):
            make_engine(client, []).execute("SELECT 1")


def test_parameters_are_validated_before_any_call() -> None:
    def no_client() -> Any:
        raise AssertionError("no call expected")

    engine = AthenaEngine(WORKGROUP, DATABASE, no_client)
    with pytest.raises(QueryError, match="run_id"):
        engine.run("run_summary", run_id="x'; DROP TABLE outcomes; --")
    with pytest.raises(QueryError, match="location"):
        engine.run("ddl_outcomes", location="s3://bucket/p' x")
    # A trailing newline: ``$`` matched before it, and in the DDL the location also sits in a
    # ``--`` comment, which the newline ended, making the rest of that line SQL.
    with pytest.raises(QueryError, match="location"):
        engine.run("ddl_outcomes", location="s3://bucket/p\n")
