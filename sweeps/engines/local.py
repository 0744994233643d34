"""The local engine: the SQL of ``athena/`` on DuckDB over the local stage's data root.

It transpiles with sqlglot (athena → duckdb; what sqlglot reports as unsupported is an error)
and runs on DuckDB through views ``outcomes`` and ``results`` that read the hive-partitioned
Parquet files with partition values kept as strings, as in the Glue catalog, and the views of
``athena/view_*.sql`` and the typed ``results_<simulation>`` views over them.
"""

from __future__ import annotations

import os
import time
from functools import cache
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


class Listings:
    """What ``table_files`` found, kept between queries while nothing it read has changed: a
    query over a compacted 100,000-shard run would otherwise walk its 100,000 per-shard outcome
    files and usage records each time (files compaction keeps: status and cost read them), and
    the engine then skips them all. With this, a compacted run costs a query a few ``stat``
    calls, whatever its shard count.

    A folder's listing is reused only if its mtime is what it was, and was already ``SETTLE_S``
    old when it was listed: adding or removing a file sets the folder's mtime to the current
    time, so with a timestamp granularity well under ``SETTLE_S`` no change can hide. A run's
    readable files per table are reused while its compaction records' folder and every folder
    under the table's run folder are unchanged in that sense."""

    SETTLE_S = 1.0

    def __init__(self) -> None:
        self._folders: dict[str, tuple[int, list[str], list[str]]] = {}
        # run -> (records folder mtime, its latest generation, the usage records it absorbed)
        self._generations: dict[str, tuple[int, Any, frozenset[str] | None]] = {}
        # (run, table) -> (generation number, the files to read)
        self.readable: dict[tuple[str, str], tuple[int, list[str]]] = {}

    def walk(self, root: Path, prefix: str) -> list[str]:
        """The keys of the files under the folder ``prefix``, skipping temp files."""
        keys: list[str] = []
        self._walk(root, prefix, keys)
        return keys

    def _walk(self, root: Path, prefix: str, keys: list[str]) -> None:
        path = f"{root.as_posix()}/{prefix}"
        try:
            mtime = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return
        kept = self._folders.get(path)
        if kept is not None and kept[0] == mtime:
            files, folders = kept[1], kept[2]
        else:
            files, folders = [], []
            listed_at = time.time_ns()
            for entry in os.scandir(path):
                if entry.is_dir():
                    folders.append(entry.name)
                elif not entry.name.startswith(".tmp-"):
                    files.append(entry.name)
            if self._settled(mtime, listed_at):
                self._folders[path] = (mtime, files, folders)
            else:
                self._folders.pop(path, None)
        keys += [prefix + name for name in files]
        for name in folders:
            self._walk(root, f"{prefix}{name}/", keys)

    def unchanged(self, root: Path, prefix: str) -> bool:
        """Whether every folder under ``prefix`` is as a settled listing found it (a few
        ``stat`` calls: the folders, not the files)."""
        path = f"{root.as_posix()}/{prefix}"
        kept = self._folders.get(path)
        try:
            mtime = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return kept is None  # absent then and now
        if kept is None or kept[0] != mtime:
            return False
        return all(self.unchanged(root, f"{prefix}{name}/") for name in kept[2])

    def generation(self, root: Path, run_id: str, usage: bool) -> tuple[Any, frozenset[str] | None]:
        """The run's latest compaction generation (and, with ``usage``, the usage records it
        absorbed), read again only when its records' folder changed."""
        from chalicelib.storage import compaction
        from chalicelib.storage.stores import LocalStore

        records = root / layout.compaction_records_prefix(run_id)
        try:
            mtime = os.stat(records).st_mtime_ns
        except FileNotFoundError:
            return None, frozenset() if usage else None
        kept = self._generations.get(run_id)
        store = LocalStore(root)
        if kept is None or kept[0] != mtime:
            listed_at = time.time_ns()
            kept = (mtime, compaction.latest(store, run_id), None)
            if self._settled(mtime, listed_at):
                self._generations[run_id] = kept
        if usage and kept[2] is None:
            kept = (kept[0], kept[1], compaction.absorbed_usage(store, kept[1]))
            if self._generations.get(run_id, (None,))[0] == mtime:
                self._generations[run_id] = kept
        return kept[1], kept[2]

    def _settled(self, mtime: int, listed_at: int) -> bool:
        return listed_at - mtime > self.SETTLE_S * 1e9


def _reader(table: str) -> str:
    """DuckDB's reader of the table's files (``tables.FORMATS``)."""
    from chalicelib.storage.tables import FORMATS

    return {"parquet": "read_parquet", "json": "read_json"}[FORMATS[table]]


@cache
def _read_options(table: str) -> str:
    """The reader's options: hive partition columns (kept as strings, as the catalog types
    them); for JSON Lines, every column typed from the table's pyarrow schema (DuckDB's names
    of Arrow's types) rather than guessed from a sample of the files."""
    from chalicelib.storage.tables import FORMATS, SCHEMAS

    options = "hive_partitioning = true, hive_types_autocast = false"
    if FORMATS[table] != "json":
        return options
    import duckdb
    import pyarrow as pa

    schema = SCHEMAS[table]
    types = duckdb.from_arrow(pa.schema(schema).empty_table()).types
    columns = ", ".join(f"'{n}': '{t}'" for n, t in zip(schema.names, types, strict=True))
    return f"{options}, format = 'newline_delimited', columns = {{{columns}}}"


def table_files(root: Path, table: str, listings: Listings | None = None) -> list[str]:
    """Every file under the data root that holds rows of ``table``, each row in exactly one:
    per run, its latest compaction generation's parts and the per-shard (per-invocation) files
    that generation did not absorb (``storage.compaction.unabsorbed``), so a query during, after
    or between compactions sees every row once."""
    from chalicelib.storage import compaction

    listings = listings or Listings()
    if table not in layout.COMPACTED_TABLES:  # not partitioned by run (reuse): every file
        return [f"{root.as_posix()}/{k}" for k in listings.walk(root, layout.table_root(table))]
    runs: set[str] = set()
    for folder in (root / layout.table_root(table), root / layout.COMPACTED / table):
        if folder.is_dir():
            runs.update(
                entry.name.removeprefix("run_id=")
                for entry in os.scandir(folder)
                if entry.is_dir() and entry.name.startswith("run_id=")
            )
    files: list[str] = []
    for run_id in sorted(runs):
        if not ids.is_run_id(run_id):
            continue
        gen, usage = listings.generation(root, run_id, table == compaction.USAGE)
        number = gen.number if gen is not None else 0
        prefix = layout.run_table_prefix(table, run_id)
        # A per-shard results file is read once its shard's success outcome is there.
        outcomes = layout.succeeded_prefix(run_id) if table == compaction.RESULTS else None
        watched = [prefix] if outcomes is None else [prefix, outcomes]
        kept = listings.readable.get((run_id, table))
        if (
            kept is None
            or kept[0] != number
            or not all(listings.unchanged(root, p) for p in watched)
        ):
            succeeded = None
            if outcomes is not None:
                succeeded = compaction.shards_succeeded(listings.walk(root, outcomes))
            shard_files = listings.walk(root, prefix)
            keys = [
                *compaction.generation_parts(table, gen),
                *compaction.unabsorbed(table, gen, shard_files, usage, succeeded),
            ]
            if table == compaction.USAGE:  # a generation from when usage was Parquet: unread
                keys = [key for key in keys if not key.endswith(".parquet")]
            kept = number, [f"{root.as_posix()}/{key}" for key in keys]
            listings.readable[(run_id, table)] = kept
        files.extend(kept[1])
    return files


class LocalEngine(QueryEngine):
    """DuckDB over ``<root>/outcomes`` and ``<root>/results`` (the local stage's data root), and
    the views of ``athena/view_*.sql`` over them."""

    # How many times a query is bound and run again over a fresh listing when a file it listed
    # was gone when read: the data root emptied, a clean-up after the grace period, or a reuse
    # merge replacing its family's generation between the listing and the read (which a view
    # bound over the old file meets at once, when it is created).
    VANISHED_RETRIES = 3

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._con: Any = None
        self._reads_files: dict[str, bool] = {}
        self._views: list[tuple[str, str]] | None = None  # (file name, DuckDB statement)
        self._listings = Listings()
        self._sources: dict[str, list[str]] = {}  # table -> the files its view reads

    @property
    def connection(self) -> Any:
        if self._con is None:
            import duckdb

            self._con = duckdb.connect()
            self._con.execute("SET TimeZone = 'UTC'")
            # DuckDB's Python client turns its progress bar on when it takes the process for an
            # interactive one (``python -c``, a REPL, a notebook), and draws it on stdout once a
            # query runs over 2 s: into ``sweep query --format json``'s JSON. Answers only.
            # (It cannot be given to ``connect``: not a global option.)
            self._con.execute("SET enable_progress_bar = false")
        return self._con

    def refresh_views(self, force: bool = False) -> None:
        """Point the views ``outcomes`` and ``results`` (catalog column order) at the files that
        hold each table's rows now, then create the views of ``athena/view_*.sql`` over them.

        The file list is made again at every query (``table_files``): a compacted run is read
        from its latest generation plus the per-shard files that generation did not absorb,
        never from both, and files that land later are seen by the next query; a view is bound
        again only when its file list changed (binding one over 10,000 files costs more than a
        query over a compacted run). A table with no
        file yet gets an empty view typed from its pyarrow schema. Columns are listed in catalog
        order (file columns, then partition columns, kept as strings). The views of ``athena/``
        are created once the tables' views exist, and again when a table gets its first file
        (its view's types then come from the files), with the SQL sqlglot transpiled once.
        ``force`` is set on the retries after a file vanished under a query (``execute``): every
        folder is listed afresh (not from the kept listings) and the views bound again."""
        from chalicelib.storage.tables import PARTITIONS, SCHEMAS

        if force:
            self._listings = Listings()
        con = self.connection
        created = False
        for table, schema in SCHEMAS.items():
            parts = PARTITIONS[table]
            names = ", ".join(f'"{n}"' for n in [*schema.names, *parts])
            files = table_files(self.root, table, self._listings)
            has_files = bool(files)
            if has_files and not force and self._sources.get(table) == files:
                continue  # the view already reads these files: binding it again costs
            self._sources[table] = files
            if has_files:
                listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                source = f"{_reader(table)}([{listed}], {_read_options(table)})"
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
        for attempt in range(self.VANISHED_RETRIES + 1):
            try:
                self.refresh_views(force=attempt > 0)
                table = self._query(duck)
                break
            except duckdb.IOException as exc:  # a file listed was gone when read: list again
                if attempt == self.VANISHED_RETRIES:
                    raise QueryError(f"DuckDB: {exc}") from exc
            except duckdb.Error as exc:
                raise QueryError(f"DuckDB: {exc}") from exc
        stats = {"elapsed_s": time.perf_counter() - started}
        if table is None:
            return QueryResult([], [], stats=stats)
        return QueryResult(list(table.column_names), table=table, stats=stats)

    def _query(self, duck: str) -> Any:
        relation = self.connection.sql(duck)
        if relation is None:
            return None
        return as_athena_types(relation.to_arrow_table(), [t.id for t in relation.types])


def as_athena_types(table: Any, duck_types: list[str]) -> Any:
    """The answer with Athena's types where DuckDB's differ. DuckDB gives ``count_if`` and
    ``sum`` over integers as HUGEINT, which Arrow carries as decimal128(38, 0) (Python
    ``Decimal``s, JSON strings in ``sweep query --format json``); Athena as bigint: int64 here
    (a sum past bigint's range fails, as on Athena). DuckDB's timestamps have microseconds;
    Athena's, like the files' (timestamp(ms, UTC)), milliseconds: truncated to them here."""
    import pyarrow as pa

    for i, duck_type in enumerate(duck_types):
        field = table.field(i)
        if duck_type == "hugeint":
            target, safe = pa.int64(), True
        elif duck_type in ("timestamp", "timestamp with time zone"):
            target, safe = pa.timestamp("ms", tz=field.type.tz), False
        else:
            continue
        try:
            column = table.column(i).cast(target, safe=safe)
        except pa.ArrowInvalid as exc:
            raise QueryError(f"column {field.name}: {exc}") from exc
        table = table.set_column(i, field.with_type(target), column)
    return table
