"""The Athena engine: the SQL of ``athena/`` on Athena, in a workgroup, over the Glue database.

``StartQueryExecution`` in the workgroup with the database as context, polls with exponential
backoff up to a timeout, reads ``GetQueryResults`` through boto3's paginator and converts
values by the result's column types. ``create_views()`` creates (or replaces) every view: a
deploy step, not something each query does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalicelib import aws
from sweeps.engines.base import QueryEngine, QueryResult
from sweeps.errors import QueryError, QueryFailed, QueryTimeout
from sweeps.sql import all_views

if TYPE_CHECKING:
    import pyarrow as pa

# Athena's numeric types: the Python value of their text, and their Arrow type (an alias:
# pyarrow loads only when a result is made a table) at the type's own width.
_NUMERIC: dict[str, tuple[Callable[[str], Any], str]] = {
    "tinyint": (int, "int8"),
    "smallint": (int, "int16"),
    "integer": (int, "int32"),
    "int": (int, "int32"),
    "bigint": (int, "int64"),
    "real": (float, "float32"),
    "float": (float, "float32"),
    "double": (float, "float64"),
}


def _convert(value: str | None, athena_type: str) -> Any:
    if value is None:
        return None
    kind = athena_type.lower()
    if kind in _NUMERIC:
        return _NUMERIC[kind][0](value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "boolean":
        return value == "true"
    return value


def _time(value: str, athena_type: str) -> date | datetime:
    """Athena's text of a ``date`` (``2026-01-01``) or a ``timestamp`` (``2026-01-01
    10:00:00.123``: the tables' timestamps are UTC instants, as the local engine reads them);
    ValueError if it is not that."""
    if athena_type == "date":
        return date.fromisoformat(value)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def typed_times(info: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each ``date`` and ``timestamp`` column of ``rows`` as Python dates and UTC datetimes
    (in place), as the local engine answers them; returns the column infos to type the result
    by. A column with a value that does not parse stays text, whole (typed ``varchar``):
    Athena's text form is not documented, so another form is kept, not refused."""
    typed = []
    for column in info:
        kind = str(column.get("Type", "")).lower()
        name = column.get("Label") or column["Name"]
        if kind in ("date", "timestamp"):
            try:
                values = [None if r[name] is None else _time(r[name], kind) for r in rows]
            except ValueError:
                typed.append(column | {"Type": "varchar"})
                continue
            for row, value in zip(rows, values, strict=True):
                row[name] = value
        typed.append(column)
    return typed


def arrow_type(column: dict[str, Any]) -> pa.DataType:
    """The Arrow type of a result column (``ColumnInfo``): the values ``_convert`` makes, at
    the column's own width (an INTEGER is int32, a REAL float32), as the local engine answers
    the same SQL; dates and timestamps as ``typed_times`` made them (millisecond timestamps in
    UTC, Athena's precision). The other types stay the strings Athena sends."""
    import pyarrow as pa

    kind = str(column.get("Type", "varchar")).lower()
    if kind in _NUMERIC:
        return pa.type_for_alias(_NUMERIC[kind][1])
    if kind == "decimal":
        return pa.decimal128(int(column.get("Precision") or 38), int(column.get("Scale") or 0))
    if kind == "boolean":
        return pa.bool_()
    if kind == "date":
        return pa.date32()
    if kind == "timestamp":
        return pa.timestamp("ms", tz="UTC")
    return pa.string()


class AthenaEngine(QueryEngine):
    def __init__(
        self,
        workgroup: str,
        database: str,
        client_factory: Callable[[], Any],
        *,
        poll_initial_s: float = 0.2,
        poll_max_s: float = 5.0,
        timeout_s: float = 600.0,
        page_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workgroup = workgroup
        self.database = database
        self._client_factory = client_factory
        self.poll_initial_s = poll_initial_s
        self.poll_max_s = poll_max_s
        self.timeout_s = timeout_s
        self.page_size = page_size
        self._sleep = sleep
        self._clock = clock

    @property
    def client(self) -> Any:
        return self._client_factory()  # aws.py builds each client once

    def create_views(self) -> dict[str, str]:
        """Create or replace every view (``all_views()``: the files of ``athena/view_*.sql``,
        then the typed ``results_<simulation>`` views) in the database, in that order, each
        polled until it SUCCEEDED; returns {view name: query execution id}.

        A deploy step: run it once after the tables exist, and again after a view file or the
        schema of a table under a view changes (Athena reports a view as stale when its tables'
        schemas changed). ``CREATE OR REPLACE`` makes it idempotent. Queries never call it.
        """
        created: dict[str, str] = {}
        for name, sql in all_views():
            query_id = self.start(sql)
            self.wait(query_id)
            created[name] = query_id
        return created

    def execute(self, sql: str) -> QueryResult:
        query_id = self.start(sql)
        execution = self.wait(query_id)
        header = execution.get("StatementType") == "DML"  # a SELECT's first row names columns
        info, rows = self.fetch(query_id, skip_header=header)
        info = typed_times(info, rows)
        columns = [c.get("Label") or c["Name"] for c in info]

        def schema() -> pa.Schema:
            import pyarrow as pa

            return pa.schema([(n, arrow_type(c)) for n, c in zip(columns, info, strict=True)])

        return QueryResult(
            columns, rows, schema=schema, query_id=query_id, stats=execution.get("Statistics", {})
        )

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except aws.AWS_ERRORS as exc:
            raise QueryError(f"Athena {what}: {aws.describe(exc)}") from exc

    def start(self, sql: str) -> str:
        response = self._call(
            "StartQueryExecution",
            lambda: self.client.start_query_execution(
                QueryString=sql,
                WorkGroup=self.workgroup,
                QueryExecutionContext={"Database": self.database},
            ),
        )
        query_id: str = response["QueryExecutionId"]
        return query_id

    def wait(self, query_id: str) -> dict[str, Any]:
        """Poll until the query ends; backoff doubles from poll_initial_s up to poll_max_s."""
        deadline = self._clock() + self.timeout_s
        delay = self.poll_initial_s
        while True:
            response = self._call(
                "GetQueryExecution",
                lambda: self.client.get_query_execution(QueryExecutionId=query_id),
            )
            execution: dict[str, Any] = response["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State")
            if state == "SUCCEEDED":
                return execution
            if state in ("FAILED", "CANCELLED"):
                error = status.get("AthenaError", {})
                raise QueryFailed(
                    query_id,
                    state,
                    status.get("StateChangeReason") or error.get("ErrorMessage", ""),
                    error.get("ErrorCategory"),
                    error.get("ErrorType"),
                )
            if self._clock() + delay > deadline:
                self._call(
                    "StopQueryExecution",
                    lambda: self.client.stop_query_execution(QueryExecutionId=query_id),
                )
                raise QueryTimeout(
                    f"Athena query {query_id} still {state} after {self.timeout_s:g} s; stopped"
                )
            self._sleep(delay)
            delay = min(delay * 2, self.poll_max_s)

    def fetch(
        self, query_id: str, skip_header: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(ColumnInfo, typed rows) of a finished query, every page of it."""
        pages = self.client.get_paginator("get_query_results").paginate(
            QueryExecutionId=query_id, PaginationConfig={"PageSize": self.page_size}
        )
        info: list[dict[str, Any]] | None = None
        columns: list[str] = []
        types: list[str] = []
        rows: list[dict[str, Any]] = []
        for page in self._call("GetQueryResults", lambda: list(pages)):
            result_set = page.get("ResultSet", {})
            page_rows = result_set.get("Rows", [])
            if info is None:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c.get("Label") or c["Name"] for c in info]
                types = [c.get("Type", "varchar") for c in info]
                if skip_header:
                    page_rows = page_rows[1:]
            for row in page_rows:
                values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
                if len(values) != len(columns):
                    raise QueryError(
                        f"Athena query {query_id}: a row of {len(values)} values for "
                        f"{len(columns)} columns"
                    )
                rows.append(
                    {c: _convert(v, t) for c, v, t in zip(columns, values, types, strict=True)}
                )
        return info or [], rows
