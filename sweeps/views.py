"""Typed result views, one per simulation: ``results_<simulation>``, generated from the registry.

The ``results`` table keeps parameters and metrics in maps, because one table serves every
simulation. Each view turns them back into one typed column per parameter and per metric, so SQL
users write ``WHERE volatility > 0.2`` instead of ``try_cast(element_at(params, ...))``.

- A row belongs to a simulation through its shard's success outcome (``results`` has no
  simulation column; ``outcomes`` does, and a shard has at most one success outcome, so the join
  adds no rows). The join is on ``run_id``, so a ``run_id = '<run>'`` filter on the view reaches
  both scans and still prunes to the run's partitions.
- The map holds only the swept parameters. A parameter the request did not sweep reads as the
  simulation's *current* default (what the run used, unless the default has changed since); a
  parameter with no default is always swept.
- Parameter values were written by the worker's ``format_value`` (``repr`` of numbers,
  ``true``/``false``), which ``CAST`` reads back exactly on both engines.

The SQL is Athena SQL, like the files in ``athena/``; the local engine transpiles it.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.model import ids
from chalicelib.simulations.declarations import Parameter, Simulation, Value
from chalicelib.simulations.registry import REGISTRY

SQL_TYPES = {"float": "DOUBLE", "int": "BIGINT", "str": "VARCHAR", "bool": "BOOLEAN"}
KEY_COLUMNS = ("run_id", "point_index", "shard_id", "replicate")


class ViewError(ValueError):
    """A simulation whose names cannot become a view's columns."""


def view_name(simulation: str) -> str:
    if not ids.is_name(simulation):
        raise ViewError(f"simulation name {simulation!r} is not a SQL identifier")
    return f"results_{simulation}"


def columns(sim: Simulation) -> dict[str, str]:
    """Column → Athena type, in view order: keys, parameters, metrics."""
    out = {
        "run_id": "VARCHAR",
        "point_index": "BIGINT",
        "shard_id": "INTEGER",
        "source_run_id": "VARCHAR",
        "replicate": "INTEGER",
    }
    named = [(p.name, SQL_TYPES[p.kind]) for p in sim.parameters]
    named += [(m, "DOUBLE") for m in sim.metrics]
    for name, kind in named:
        if not ids.is_name(name):
            raise ViewError(f"{sim.name}: {name!r} is not a SQL identifier")
        if name in out:
            raise ViewError(f"{sim.name}: two columns named {name!r}")
        out[name] = kind
    return out


def _literal(value: Value, kind: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return f"CAST({value!r} AS {kind})"


def _parameter(p: Parameter) -> str:
    kind = SQL_TYPES[p.kind]
    value = f"CAST(element_at(r.params, '{p.name}') AS {kind})"
    if p.kind == "str":
        value = f"element_at(r.params, '{p.name}')"
    if p.default is not None:
        value = f"coalesce({value}, {_literal(p.default, kind)})"
    return f'{value} AS "{p.name}"'


def view_sql(sim: Simulation) -> str:
    """``CREATE OR REPLACE VIEW results_<simulation>`` in Athena SQL."""
    columns(sim)  # names checked
    # Athena reads files written before replicates existed with the column NULL: replicate 0.
    select = [
        "r.run_id",
        "r.point_index",
        "r.shard_id",
        "r.source_run_id",
        "coalesce(r.replicate, 0) AS replicate",
    ]
    select += [_parameter(p) for p in sim.parameters]
    select += [f"element_at(r.metrics, '{m}') AS \"{m}\"" for m in sim.metrics]
    body = ",\n    ".join(select)
    return (
        f"CREATE OR REPLACE VIEW {view_name(sim.name)} AS\n"
        f"SELECT\n    {body}\n"
        "FROM results AS r\n"
        "JOIN outcomes AS o\n"
        "    ON o.run_id = r.run_id AND o.shard_id = r.shard_id AND o.status = 'succeeded'\n"
        f"WHERE o.simulation = '{sim.name}'\n"
    )


def typed_views() -> dict[str, str]:
    """Every simulation's view: {view name: Athena SQL}, in registry order."""
    return {view_name(name): view_sql(sim) for name, sim in REGISTRY.items()}


# --- queries generated per simulation -------------------------------------------------------

BEST_POINTS_COLUMNS = ["parameter", "parameter_value", "point_index", "metric_value", "point_count"]


def best_points_sql(sim: Simulation) -> str:
    """The best point of one run for each value of each parameter, over its typed view.

    One row per (parameter, value): the point with the lowest value of ``${metric}`` among the
    run's points with that parameter value (ties: lowest point_index), and how many points had
    it. The metric is chosen with a CASE over the simulation's metrics, so it stays a validated
    placeholder inside a string literal, as in every file of ``athena/``; an unknown metric
    gives no rows. Parameters the request did not sweep appear too, with their default.
    """
    cases = " ".join(f"WHEN '{m}' THEN \"{m}\"" for m in sim.metrics)
    params = ", ".join(f'"{p.name}"' for p in sim.parameters)
    arms = "\n    UNION ALL\n".join(
        f"    SELECT '{p.name}' AS parameter, CAST(\"{p.name}\" AS VARCHAR) AS parameter_value, "
        "point_index, metric_value FROM points"
        for p in sim.parameters
    )
    return f"""WITH points AS (
    SELECT point_index, {params}, CASE '${{metric}}' {cases} END AS metric_value
    FROM {view_name(sim.name)}
    WHERE run_id = '${{run_id}}'
),
by_value AS (
{arms}
),
ranked AS (
    SELECT
        parameter,
        parameter_value,
        point_index,
        metric_value,
        count(*) OVER (PARTITION BY parameter, parameter_value) AS point_count,
        row_number() OVER (
            PARTITION BY parameter, parameter_value ORDER BY metric_value, point_index
        ) AS rn
    FROM by_value
    WHERE metric_value IS NOT NULL
)
SELECT parameter, parameter_value, point_index, metric_value, point_count
FROM ranked
WHERE rn = 1
ORDER BY parameter, try_cast(parameter_value AS DOUBLE), parameter_value
"""


# Queries whose text depends on the run's simulation: {name: (generator, result columns)}.
PER_SIMULATION_QUERIES: dict[str, tuple[Callable[[Simulation], str], list[str]]] = {
    "best_points": (best_points_sql, BEST_POINTS_COLUMNS),
}
