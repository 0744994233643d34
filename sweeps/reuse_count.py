"""How many of a request's points a reusing run would copy, counted by a query over the table
``reuse`` (each family's merged index, docs/analytics.md "Reuse"), on Athena or on DuckDB.

The query never lists the request's points: it joins the family's partition with one ``VALUES``
list per factor of the request's space (a grid axis, a paired group, the sampled block), so its
size grows with the sum of the factors' lengths, not with their product. A factor's rows are its
coordinates in stream-key text (``streams.canonical`` of the effective value, what the merged
index stores), each with how many times the factor holds it; a parameter the request does not
set must equal its default's text; replicates are a range. Each distinct matched point is then
weighted by the product of its factors' counts, the number of the request's points that are it,
so the count is what the plan's ``index_in`` over every point finds.

What it sees is the merged index, so it agrees with the run's ``points_reused`` when the
family's earlier runs are merged (complete and compacted) and none of their data was deleted
since its last merge; ``sweep estimate`` on the local stage reads the plan's own history instead
(``reuse.history``: merged and unmerged runs, deleted ones left out). ``DISTINCT`` over the
matched coordinates counts a point once even while two generations of the index exist for an
instant (a merge commits the next before deleting the previous).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from chalicelib.execution import reuse
from chalicelib.model.request import SweepRequest
from chalicelib.simulations import streams
from chalicelib.simulations.declarations import Simulation, Value
from chalicelib.simulations.registry import REGISTRY
from sweeps.engines.base import QueryEngine


def literal(text: str) -> str:
    """A SQL string literal (standard quoting, the same on Athena and DuckDB)."""
    return "'" + text.replace("'", "''") + "'"


def _texts(sim: Simulation, names: Sequence[str], values: Sequence[Value]) -> tuple[str, ...]:
    effective = sim.effective_params(dict(zip(names, values, strict=True)))
    return tuple(streams.canonical(effective[n]) for n in names)


def factors(request: SweepRequest) -> list[tuple[tuple[str, ...], Counter[tuple[str, ...]]]]:
    """The request's factors: (parameter names, coordinates in key text -> times held)."""
    sim = REGISTRY[request.simulation]
    space = request.space
    out = []
    for name, axis in zip(space.names, space.axes, strict=True):
        members = axis.members(name)
        coords = (_texts(sim, members, axis.coordinates(d)) for d in range(axis.size))
        out.append((members, Counter(coords)))
    if space.sample is not None:
        sample = space.sample
        points = (_texts(sim, sample.names, sample.point(j)) for j in range(sample.points))
        out.append((tuple(sample.names), Counter(points)))
    return out


def count_sql(request: SweepRequest) -> str:
    """The Athena SQL counting the request's points in its family's merged index."""
    sim = REGISTRY[request.simulation]
    fam = reuse.family(sim.name, sim.version, request.seed)
    joins, picked, weights = [], [], []
    for k, (names, counts) in enumerate(factors(request)):
        columns = [f"c{m}" for m in range(len(names))]
        rows = ", ".join(
            "(" + ", ".join([*map(literal, coords), str(n)]) + ")" for coords, n in counts.items()
        )
        on = " AND ".join(
            f"element_at(r.params, {literal(name)}) = f{k}.{c}"
            for name, c in zip(names, columns, strict=True)
        )
        joins.append(f"JOIN (VALUES {rows}) AS f{k} ({', '.join(columns)}, n) ON {on}")
        picked += [f"f{k}.{c} AS f{k}{c}" for c in columns]
        weights.append(f"f{k}.n")
    unset = sim.effective_params({})
    where = [f"r.family = {literal(fam)}", f"r.replicate < {request.space.replicates}"]
    where += [
        f"element_at(r.params, {literal(name)}) = {literal(streams.canonical(value))}"
        for name, value in sorted(unset.items())
        if name not in request.space.columns
    ]
    weight = " * ".join(weights) or "1"
    newline = "\n    "
    return (
        "SELECT CAST(coalesce(sum(n), 0) AS BIGINT) AS reusable\n"
        "FROM (\n"
        f"    SELECT DISTINCT {', '.join([*picked, 'r.replicate'])}, {weight} AS n\n"
        "    FROM reuse AS r\n"
        f"    {newline.join(joins)}\n"
        f"    WHERE {' AND '.join(where)}\n"
        ")"
    )


def count(engine: QueryEngine, request: SweepRequest) -> int:
    """The request's points in its family's merged index, by ``count_sql`` on ``engine``."""
    rows = engine.execute(count_sql(request)).rows
    return int(rows[0]["reusable"]) if rows else 0
