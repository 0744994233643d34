"""Run the SQL in ``athena/`` on Athena, or locally on DuckDB — the same files on both.

The files are written for Athena (engine v3, Trino SQL). Per-run queries name their parameters
as ``'${run_id}'``-style placeholders *inside string literals*, so every file is valid SQL as
committed. ``render`` replaces a placeholder only with a value that passed its validator (a run
id matches the layout's pattern, a shard count is an integer, ...): no value can carry a quote,
so no input is ever interpolated raw.

- ``LocalEngine(root)``: transpiles with sqlglot (athena → duckdb; what sqlglot reports as
  unsupported is an error) and runs on DuckDB over the local data root, through views
  ``outcomes`` and ``results`` that read the hive-partitioned Parquet files with partition values
  kept as strings, as in the Glue catalog, and the views of ``athena/view_*.sql`` over them.
- ``AthenaEngine(workgroup, database, client_factory)``: ``StartQueryExecution`` in the
  workgroup with the database as context, polls with exponential backoff up to a timeout, pages
  through ``GetQueryResults`` and converts values by the result's column types.
  ``create_views()`` creates (or replaces) the views of ``athena/view_*.sql``: a deploy step,
  not something each query does.

``sweep query`` (``sweeps.cli``) runs them from the command line.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from chalicelib import aws
from chalicelib.config import PROJECT_ROOT
from chalicelib.model import ids
from chalicelib.simulations.declarations import Simulation
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout
from chalicelib.storage.tables import PARTITIONS, SCHEMAS

QUERY_DIR = PROJECT_ROOT / "athena"
MAX_SHARD_COUNT = 10_000_000  # coverage.sql builds shard ids as hi * 1000 + lo, hi < 10,000
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER_RE = re.compile(r"\$\{([a-z_]+)\}")
_METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class QueryError(Exception):
    """A query could not be prepared or run."""


class QueryFailed(QueryError):
    """Athena ended the query FAILED or CANCELLED."""

    def __init__(
        self, query_id: str, state: str, reason: str, category: int | None, error_type: int | None
    ) -> None:
        detail = f" (error category {category}, type {error_type})" if category else ""
        super().__init__(f"Athena query {query_id} {state}: {reason or 'no reason given'}{detail}")
        self.query_id = query_id
        self.state = state
        self.reason = reason
        self.category = category
        self.error_type = error_type


class QueryTimeout(QueryError):
    """The query ran longer than the engine's timeout; it was stopped."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    query_id: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


# --- query files and parameters ---------------------------------------------------------------


def query_names() -> list[str]:
    """Every SQL file in athena/, DDL and views included."""
    return sorted(p.stem for p in QUERY_DIR.glob("*.sql"))


def baseline_queries() -> list[str]:
    """The analytics queries: not the DDL (run once, by CloudFormation or by hand), nor the
    views (created once per database by ``AthenaEngine.create_views``, by LocalEngine itself)."""
    return [n for n in query_names() if not n.startswith(("ddl_", "view_"))]


def generated_queries() -> list[str]:
    """Baseline queries generated per simulation over its typed view (``sweeps.views``):
    their text depends on the run's simulation, so they are not files."""
    from sweeps.views import GENERATED

    return sorted(GENERATED)


def all_queries() -> list[str]:
    """Every baseline query a user can run by name: the files and the generated ones."""
    return sorted([*baseline_queries(), *generated_queries()])


def view_names() -> list[str]:
    """The files that define views (``view_<name>.sql``: ``CREATE OR REPLACE VIEW <name>``)."""
    return [n for n in query_names() if n.startswith("view_")]


def view_sql(name: str) -> str:
    """A view file's statement, without its header comment; it takes no parameters."""
    return strip_header(render(load_query(name), {}))


def all_views() -> list[tuple[str, str]]:
    """(name, Athena statement) of every view, in creation order: the files of
    ``athena/view_*.sql`` (file-name order), then the typed ``results_<simulation>`` views
    generated from the registry (``sweeps.views``), which read the tables only."""
    from sweeps.views import typed_views

    return [(name, view_sql(name)) for name in view_names()] + list(typed_views().items())


def load_query(name: str) -> str:
    if not _NAME_RE.match(name):
        raise QueryError(f"malformed query name {name!r}")
    path = QUERY_DIR / f"{name}.sql"
    if not path.is_file():
        raise QueryError(f"no query {name!r}; known: {', '.join(query_names())}")
    return path.read_text()


def placeholders(sql: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(sql))


def _run_id(value: object) -> str:
    if not (isinstance(value, str) and ids.is_run_id(value)):
        raise QueryError(f"run_id must match {ids.RUN_ID_RE.pattern}, got {value!r}")
    return value


def _shard_count(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHARD_COUNT:
        raise QueryError(f"shard_count must be an integer in 1..{MAX_SHARD_COUNT}, got {value!r}")
    return str(value)


def _metric(value: object) -> str:
    if not (isinstance(value, str) and _METRIC_RE.match(value)):
        raise QueryError(f"metric must match {_METRIC_RE.pattern}, got {value!r}")
    return value


def _location(value: object) -> str:
    text = value.rstrip("/") if isinstance(value, str) else value
    if not (isinstance(text, str) and layout.S3_ROOT_RE.match(text)):
        raise QueryError(f"location must be s3://bucket[/prefix], got {value!r}")
    return text


# Each placeholder a query may use, and the check its value must pass. A validated value
# contains only [A-Za-z0-9._:/=-]: it cannot end the string literal it is placed in.
PARAMETERS: dict[str, Callable[[object], str]] = {
    "run_id": _run_id,
    "shard_count": _shard_count,
    "metric": _metric,
    "location": _location,
}


def render(sql: str, params: Mapping[str, object]) -> str:
    """Replace each ``${name}`` with its validated value; every placeholder needs one."""
    wanted = placeholders(sql)
    given = {k for k, v in params.items() if v is not None}
    if missing := sorted(wanted - given):
        raise QueryError(f"the query needs {', '.join(missing)}")
    if extra := sorted(given - wanted):
        raise QueryError(f"the query takes no {', '.join(extra)}")
    if unknown := sorted(wanted - PARAMETERS.keys()):
        raise QueryError(f"no validator for placeholder {', '.join(unknown)}")
    values = {name: PARAMETERS[name](params[name]) for name in wanted}
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], sql)


def simulation(name: str) -> Simulation:
    if name not in REGISTRY:
        raise QueryError(f"simulation {name!r} is not one this client knows")
    return REGISTRY[name]


def strip_header(sql: str) -> str:
    """Drop the leading comment lines: Athena's Hive DDL parser fails on comments."""
    lines = sql.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip() + "\n"


def resolve(query: str) -> str:
    """A query name (``run_summary``) or SQL text."""
    return load_query(query) if _NAME_RE.match(query) else query


class QueryEngine(ABC):
    def run(self, query: str, run_id: str | None = None, **params: object) -> QueryResult:
        """Run a query by name (a file of athena/ or a generated one) or SQL text."""
        from sweeps.views import GENERATED

        if query in GENERATED:
            text = self.generated_text(query, run_id)
            if text is None:  # the run has no outcome here, so no points either
                return QueryResult(list(GENERATED[query][1]), [])
        else:
            text = resolve(query)
        return self.execute(strip_header(render(text, {"run_id": run_id, **params})))

    def generated_text(self, query: str, run_id: str | None) -> str | None:
        """A generated query's SQL for the simulation of ``run_id``; None if the data has no
        outcome of that run."""
        from sweeps.views import GENERATED

        if run_id is None:
            raise QueryError(f"{query} needs run_id")
        name = self.simulation_of(run_id)
        return None if name is None else GENERATED[query][0](simulation(name))

    def simulation_of(self, run_id: str) -> str | None:
        """The simulation a run ran, from its outcomes; None when it has none here yet."""
        rows = self.execute(
            render(
                "SELECT DISTINCT simulation FROM outcomes WHERE run_id = '${run_id}'",
                {"run_id": run_id},
            )
        ).rows
        return str(rows[0]["simulation"]) if rows else None

    @abstractmethod
    def execute(self, sql: str) -> QueryResult:
        """Run rendered Athena SQL."""


# --- local: DuckDB --------------------------------------------------------------------------


def to_duckdb(sql: str) -> str:
    """Athena SQL → DuckDB SQL; a construct sqlglot cannot carry over raises QueryError."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        statements = sqlglot.transpile(
            sql, read="athena", write="duckdb", unsupported_level=ErrorLevel.RAISE
        )
    except SqlglotError as exc:
        raise QueryError(f"cannot translate the query for DuckDB: {exc}") from exc
    statements = [s for s in statements if s.strip()]
    if len(statements) != 1:
        raise QueryError(f"expected one statement, got {len(statements)}")
    return statements[0]


class LocalEngine(QueryEngine):
    """DuckDB over ``<root>/outcomes`` and ``<root>/results`` (the local stage's data root), and
    the views of ``athena/view_*.sql`` over them."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._con: Any = None
        self._reads_files: dict[str, bool] = {}
        self._views: list[tuple[str, str]] | None = None  # (file name, DuckDB statement)

    @property
    def connection(self) -> Any:
        if self._con is None:
            import duckdb

            self._con = duckdb.connect()
            self._con.execute("SET TimeZone = 'UTC'")
        return self._con

    def refresh_views(self, force: bool = False) -> None:
        """Create the views ``outcomes`` and ``results`` in catalog column order, then the views
        of ``athena/view_*.sql`` over them.

        A view over files globs at every query, so it sees files that land later; a table with
        no file yet gets an empty view typed from its pyarrow schema, re-checked at each query
        until its first file lands. Columns are listed in catalog order (file columns, then
        partition columns, kept as strings). Whenever a table's view is (re)created, the views
        of ``athena/`` are created again after it, with the SQL sqlglot transpiled for them once.
        """
        con = self.connection
        created = False
        for table, schema in SCHEMAS.items():
            if self._reads_files.get(table) and not force:
                continue
            parts = PARTITIONS[table]
            names = ", ".join(f'"{n}"' for n in [*schema.names, *parts])
            folder = self.root / layout.table_root(table)
            has_files = folder.is_dir() and next(folder.rglob("*.parquet"), None) is not None
            if has_files:
                pattern = (folder.as_posix() + "/**/*.parquet").replace("'", "''")
                source = (
                    f"read_parquet('{pattern}', hive_partitioning = true, "
                    "hive_types_autocast = false)"
                )
            else:
                import pyarrow as pa

                empty = pa.schema([*schema, *(pa.field(p, pa.string()) for p in parts)])
                con.register(f"_{table}_empty", empty.empty_table())
                source = f"_{table}_empty"
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {names} FROM {source}")
            self._reads_files[table] = has_files
            created = True
        if created:
            self._create_views()

    def _create_views(self) -> None:
        import duckdb

        if self._views is None:
            self._views = [(name, to_duckdb(sql)) for name, sql in all_views()]
        for name, statement in self._views:  # in creation order
            try:
                self.connection.execute(statement)
            except duckdb.Error as exc:
                raise QueryError(f"DuckDB: creating the view {name}: {exc}") from exc

    def execute(self, sql: str) -> QueryResult:
        import duckdb

        duck = to_duckdb(sql)
        started = time.perf_counter()
        self.refresh_views()
        try:
            table = self._query(duck)
        except duckdb.IOException:
            self.refresh_views(force=True)  # the data root was emptied since the views were made
            try:
                table = self._query(duck)
            except duckdb.Error as exc:
                raise QueryError(f"DuckDB: {exc}") from exc
        except duckdb.Error as exc:
            raise QueryError(f"DuckDB: {exc}") from exc
        stats = {"elapsed_s": time.perf_counter() - started}
        if table is None:
            return QueryResult([], [], stats=stats)
        return QueryResult(list(table.column_names), table.to_pylist(), stats=stats)

    def _query(self, duck: str) -> Any:
        relation = self.connection.sql(duck)
        return relation.to_arrow_table() if relation is not None else None


# --- AWS: Athena ----------------------------------------------------------------------------

_INTEGER_TYPES = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOAT_TYPES = {"double", "float", "real"}


def _convert(value: str | None, athena_type: str) -> Any:
    if value is None:
        return None
    kind = athena_type.lower()
    if kind in _INTEGER_TYPES:
        return int(value)
    if kind in _FLOAT_TYPES:
        return float(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "boolean":
        return value == "true"
    return value


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
        columns, rows = self.fetch(query_id, skip_header=header)
        return QueryResult(columns, rows, query_id, execution.get("Statistics", {}))

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

    def fetch(self, query_id: str, skip_header: bool) -> tuple[list[str], list[dict[str, Any]]]:
        columns: list[str] = []
        types: list[str] = []
        rows: list[dict[str, Any]] = []
        token: str | None = None
        first = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": self.page_size}
            if token:
                kwargs["NextToken"] = token
            page = self._call("GetQueryResults", partial(self.client.get_query_results, **kwargs))
            result_set = page.get("ResultSet", {})
            if first:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c.get("Label") or c["Name"] for c in info]
                types = [c.get("Type", "varchar") for c in info]
            page_rows = result_set.get("Rows", [])
            if first and skip_header:
                page_rows = page_rows[1:]
            first = False
            for row in page_rows:
                data = row.get("Data", [])
                values = [cell.get("VarCharValue") for cell in data]
                if len(values) != len(columns):
                    raise QueryError(
                        f"Athena query {query_id}: a row of {len(values)} values for "
                        f"{len(columns)} columns"
                    )
                rows.append(
                    {c: _convert(v, t) for c, v, t in zip(columns, values, types, strict=True)}
                )
            token = page.get("NextToken")
            if not token:
                return columns, rows
