"""What every engine shares: the result type, and running a query by name, generated or not."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sweeps.errors import QueryError
from sweeps.sql import render, resolve, simulation, strip_header

if TYPE_CHECKING:
    import pyarrow as pa


class QueryResult:
    """A query's answer: ``columns`` and ``rows`` (dicts of Python values) for printing,
    ``table`` (a ``pyarrow.Table`` with typed columns) for analysis. An engine gives one of
    the two forms and the other is made from it on first use, so a poll that prints rows never
    builds Arrow data, and a notebook that wants a table never builds dicts."""

    def __init__(
        self,
        columns: list[str],
        rows: list[dict[str, Any]] | None = None,
        *,
        table: pa.Table | None = None,
        schema: Callable[[], pa.Schema] | None = None,
        query_id: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        self.columns = columns
        self._rows = rows
        self._table = table
        self._schema = schema
        self.query_id = query_id
        self.stats = stats or {}

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is not None:
            return self._rows
        assert self._table is not None
        rows: list[dict[str, Any]] = self._table.to_pylist()
        return rows

    @cached_property
    def table(self) -> pa.Table:
        if self._table is not None:
            return self._table
        import pyarrow as pa

        if self._schema is not None:
            return pa.Table.from_pylist(self.rows, schema=self._schema())
        return pa.table({c: pa.array([r[c] for r in self.rows]) for c in self.columns})


class QueryEngine(ABC):
    def run(self, query: str, run_id: str | None = None, **params: object) -> QueryResult:
        """Run a query by name (a file of athena/ or a generated one) or SQL text."""
        from sweeps.views import PER_SIMULATION_QUERIES

        if query in PER_SIMULATION_QUERIES:
            text = self.generated_text(query, run_id)
            if text is None:  # the run has no outcome here, so no points either
                return QueryResult(list(PER_SIMULATION_QUERIES[query][1]), [])
        else:
            text = resolve(query, per_run=run_id is not None)
        return self.execute(strip_header(render(text, {"run_id": run_id, **params})))

    def generated_text(self, query: str, run_id: str | None) -> str | None:
        """A generated query's SQL for the simulation of ``run_id``; None if the data has no
        outcome of that run."""
        from sweeps.views import PER_SIMULATION_QUERIES

        if run_id is None:
            raise QueryError(f"{query} needs run_id")
        name = self.simulation_of(run_id)
        return None if name is None else PER_SIMULATION_QUERIES[query][0](simulation(name))

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
