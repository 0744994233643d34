"""How many of a request's points a reusing run would copy, counted by a query over the table
``reuse`` (each family's merged index, docs/analytics.md "Reuse"), on Athena or on DuckDB.

The query never lists the request's points: it joins the family's partition with one ``VALUES``
list per factor of the request's space (a grid axis, a paired group, the sampled block), so its
size grows with the sum of the factors' lengths, not with their product. A factor's rows are its
coordinates in stream-key text (``streams.canonical`` of the effective value, what the merged
index stores), each with how many times the factor holds it; a parameter the request does not
set must equal its default's text; replicates are a range. Each distinct matched point is then
weighted by the product of its factors' counts, the number of the request's points that are it,
so the count is what the plan's ``index_in`` over every point finds. A request whose ``VALUES``
lists would pass Athena's limit on a query's length is counted by several queries, each over
a part of its longest factor (``count_sqls``).

What it sees is the merged index, so it agrees with the run's ``points_reused`` when the
family's earlier runs are merged (complete and compacted) and none of their data was deleted
since its last merge; ``sweep estimate`` on the local stage reads the plan's own history instead
(``reuse.history``: merged and unmerged runs, deleted ones left out). ``DISTINCT`` over the
matched coordinates counts a point once even while two generations of the index exist for an
instant (a merge commits the next before deleting the previous).
"""

from __future__ import annotations

import itertools
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


# Athena refuses a query text longer than this, and the quota is not adjustable ("Member must
# have length less than or equal to 262144"); DuckDB has no such limit.
MAX_QUERY_CHARS = 262_144

Factor = tuple[tuple[str, ...], list[str]]  # parameter names, VALUES rows (each with its count)


def count_sqls(request: SweepRequest, limit: int = MAX_QUERY_CHARS) -> list[str]:
    """The queries counting the request's points in its family's merged index, each at most
    ``limit`` characters: one, unless a factor's ``VALUES`` list is too long for one query (a
    sampled block holds a row per distinct sampled point: 20,000 of one axis made 358 KB). Then
    the longest factor's rows are split into chunks, again until every query fits, and a
    query is made for each combination of chunks. The counts add up exactly: a factor's rows
    are distinct coordinates, so each matched point falls in one combination only."""
    sim = REGISTRY[request.simulation]
    fam = reuse.family(sim.name, sim.version, request.seed)
    factor_rows: list[Factor] = [
        (
            names,
            [
                "(" + ", ".join([*map(literal, coords), str(n)]) + ")"
                for coords, n in counts.items()
            ],
        )
        for names, counts in factors(request)
    ]
    names = [factor_names for factor_names, _ in factor_rows]

    def query(parts: Sequence[list[str]]) -> str:
        """The SQL over one chunk of each factor's rows."""
        return _sql(request, sim, fam, list(zip(names, parts, strict=True)))

    chunked = [[rows] for _, rows in factor_rows]
    while True:
        longest = [max(chunks, key=_chars) for chunks in chunked]
        sql = query(longest)
        if len(sql.encode()) <= limit:  # in bytes: never under the characters Athena counts
            break
        k = max(range(len(longest)), key=lambda j: _chars(longest[j]))
        if len(longest[k]) == 1:
            raise ValueError(
                f"a reuse count over {len(sql):,} characters cannot be split to {limit:,}"
            )
        chunked[k] = _split(factor_rows[k][1], _chars(longest[k]) // 2)
    return [query(combo) for combo in itertools.product(*chunked)]


def _chars(rows: list[str]) -> int:
    return sum(len(row) + 2 for row in rows)  # each with its ", "


def _split(rows: list[str], chars: int) -> list[list[str]]:
    """``rows`` in order, in chunks of at most ``chars`` characters (at least one row each)."""
    chunks: list[list[str]] = [[]]
    size = 0
    for row in rows:
        if chunks[-1] and size + len(row) + 2 > chars:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += len(row) + 2
    return chunks


def _sql(request: SweepRequest, sim: Simulation, fam: str, factor_rows: list[Factor]) -> str:
    """The SQL counting the points whose factors' coordinates are among ``factor_rows``."""
    joins, picked, weights = [], [], []
    for k, (names, rows) in enumerate(factor_rows):
        columns = [f"c{m}" for m in range(len(names))]
        on = " AND ".join(
            f"element_at(r.params, {literal(name)}) = f{k}.{c}"
            for name, c in zip(names, columns, strict=True)
        )
        joins.append(f"JOIN (VALUES {', '.join(rows)}) AS f{k} ({', '.join(columns)}, n) ON {on}")
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


def count(engine: QueryEngine, request: SweepRequest, limit: int = MAX_QUERY_CHARS) -> int:
    """The request's points in its family's merged index: ``count_sqls`` on ``engine``, one
    after the other, their counts added."""
    total = 0
    for sql in count_sqls(request, limit):
        rows = engine.execute(sql).rows
        total += int(rows[0]["reusable"]) if rows else 0
    return total
