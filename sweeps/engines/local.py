"""The local engine: the SQL of ``athena/`` on DuckDB over the local stage's data root.

It transpiles with sqlglot (athena → duckdb; what sqlglot reports as unsupported is an error)
and runs on DuckDB through views ``outcomes`` and ``results`` that read the hive-partitioned
Parquet files with partition values kept as strings, as in the Glue catalog, and the views of
``athena/view_*.sql`` and the typed ``results_<simulation>`` views over them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from chalicelib.model import ids
from chalicelib.storage import layout
from sweeps.engines.base import QueryEngine, QueryResult
from sweeps.errors import QueryError
from sweeps.sql import all_views


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


def table_files(root: Path, table: str) -> list[str]:
    """Every file under the data root that holds rows of ``table``, each row in exactly one:
    per run, its latest compaction generation's parts and the per-shard files that generation
    did not absorb (``storage.compaction``), so a query during, after or between compactions
    sees every point once."""
    from chalicelib.storage import compaction
    from chalicelib.storage.stores import LocalStore

    store = LocalStore(root)
    runs: set[str] = set()
    for folder in (root / layout.table_root(table), root / layout.COMPACTED / table):
        if folder.is_dir():
            runs.update(
                entry.name.removeprefix("run_id=")
                for entry in os.scandir(folder)
                if entry.is_dir() and entry.name.startswith("run_id=")
            )
    files: list[str] = []
    listing = compaction.results_files if table == "results" else compaction.outcome_files
    for run_id in sorted(runs):
        if not ids.is_run_id(run_id):
            continue
        compacted = (root / layout.compacted_run_prefixes(run_id)[table == "results"]).is_dir()
        gen = compaction.latest(store, run_id) if compacted else None
        files.extend((root / key).as_posix() for key in listing(store, run_id, gen))
    return files


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
        """Point the views ``outcomes`` and ``results`` (catalog column order) at the files that
        hold each table's rows now, then create the views of ``athena/view_*.sql`` over them.

        The file list is made again at every query (``table_files``): a compacted run is read
        from its latest generation plus the per-shard files that generation did not absorb,
        never from both, and files that land later are seen by the next query. A table with no
        file yet gets an empty view typed from its pyarrow schema. Columns are listed in catalog
        order (file columns, then partition columns, kept as strings). The views of ``athena/``
        are created once the tables' views exist, and again when a table gets its first file
        (its view's types then come from the files), with the SQL sqlglot transpiled once.
        ``force`` is kept for the retry after a file vanished under a query: the list is made
        again either way."""
        from chalicelib.storage.tables import PARTITIONS, SCHEMAS

        con = self.connection
        created = False
        for table, schema in SCHEMAS.items():
            parts = PARTITIONS[table]
            names = ", ".join(f'"{n}"' for n in [*schema.names, *parts])
            files = table_files(self.root, table)
            has_files = bool(files)
            if has_files:
                listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                source = (
                    f"read_parquet([{listed}], hive_partitioning = true, "
                    "hive_types_autocast = false)"
                )
            else:
                import pyarrow as pa

                empty = pa.schema([*schema, *(pa.field(p, pa.string()) for p in parts)])
                con.register(f"_{table}_empty", empty.empty_table())
                source = f"_{table}_empty"
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {names} FROM {source}")
            if self._reads_files.get(table) != has_files or force:
                created = True
            self._reads_files[table] = has_files
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
        return QueryResult(list(table.column_names), table=table, stats=stats)

    def _query(self, duck: str) -> Any:
        relation = self.connection.sql(duck)
        return relation.to_arrow_table() if relation is not None else None
