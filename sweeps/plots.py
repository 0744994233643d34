"""``sweep plot``: a metric over one or two parameters of a run, read through the typed view.

The SQL is built here, not from a file, because its column names depend on the simulation. Every
name placed in it is one the registry declares for the run's simulation (checked first), and
every value is converted to the parameter's type before it becomes a literal, so nothing a user
types reaches the SQL unchecked. A float ``--where`` value matches the stored values within a
relative 1e-9 (``REL_TOL``), so 0.15 finds a linspace's 0.15000000000000002. Points that
differ in a parameter neither plotted nor fixed with ``--where`` share a cell (or a line
point): the cell shows their mean, and the title says how many points each cell holds.

Sampled axes (a ``sample`` block: every point has its own coordinates) are drawn as a scatter of
the points themselves, coloured by the metric, since cells would each hold one point and a
heatmap would be mostly blank. An axis counts as sampled when the run's request says so (the
manifest, where the engine can read it: the local stage), else when the points fill less than
half the cells of the grid their (x, y) values span (or, without ``--y``, when more than half
the points have an x of their own). Log axes default on for a ``loguniform`` axis and for
positive values spanning more than two decades.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.simulations.declarations import Parameter, Simulation
from sweeps.engines.base import QueryEngine
from sweeps.errors import OutputError, QueryError
from sweeps.sql import render, simulation
from sweeps.views import view_name

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 6.0, 100  # 800 x 600 pixels


@dataclass
class PlotSpec:
    run_id: str
    x: str
    y: str | None
    metric: str
    by: str | None = None
    where: dict[str, str] = field(default_factory=dict)
    logx: bool | None = None  # None: decide from the axis (loguniform, or > 2 decades)
    logy: bool | None = None


# Positive values whose largest is more than this times their smallest get a log axis.
LOG_SPAN = 100.0
# At most this many points are drawn in a scatter (the first, in point order).
SCATTER_LIMIT = 200_000


@dataclass
class Written:
    path: Path
    points: int
    width: int
    height: int
    kind: str = "lines"  # "lines", "heatmap" or "scatter"
    logx: bool = False
    logy: bool = False


def simulation_of(engine: QueryEngine, run_id: str) -> Simulation:
    name = engine.simulation_of(run_id)
    if name is None:
        raise QueryError(f"no outcome of run {run_id} in this data")
    return simulation(name)


def literal(p: Parameter, text: str) -> str:
    """VALUE of ``--where AXIS=VALUE`` as a SQL literal of the parameter's type."""
    try:
        if p.kind == "float":
            number = float(text)
            if not math.isfinite(number):
                raise ValueError(text)
            return f"CAST({number!r} AS DOUBLE)"
        if p.kind == "int":
            return f"CAST({int(text)} AS BIGINT)"
        if p.kind == "bool":
            return {"true": "true", "false": "false"}[text.lower()]
    except (ValueError, KeyError):
        raise QueryError(f"--where {p.name}={text}: not a {p.kind}") from None
    return "'" + text.replace("'", "''") + "'"


def _column(sim: Simulation, name: str, what: str) -> str:
    if name not in sim.by_name:
        known = ", ".join(sim.by_name)
        raise QueryError(f"{what} {name!r} is not a parameter of {sim.name} ({known})")
    return f'"{name}"'


def _conditions(sim: Simulation, spec: PlotSpec) -> str:
    if spec.metric not in sim.metrics:
        raise QueryError(
            f"metric {spec.metric!r} is not one of {sim.name}'s ({', '.join(sim.metrics)})"
        )
    conditions = [f"run_id = {run_literal(spec.run_id)}", f'"{spec.metric}" IS NOT NULL']
    for name, value in spec.where.items():
        conditions.append(matches(sim.by_name[name], _column(sim, name, "--where"), value))
    return " AND ".join(conditions)


# ``--where AXIS=VALUE`` on a float axis keeps the values within this relative distance of
# VALUE (``math.isclose``'s rule): a linspace stores 0.15000000000000002 where the request and
# the plot's labels say 0.15, and an exact comparison found no point.
REL_TOL = 1e-9


def matches(p: Parameter, column: str, text: str) -> str:
    """The SQL condition of ``--where p=text``: equal, or within ``REL_TOL`` for a float."""
    value = literal(p, text)
    if p.kind != "float":
        return f"{column} = {value}"
    return f"abs({column} - {value}) <= {REL_TOL!r} * greatest(abs({column}), abs({value}))"


def no_points(engine: QueryEngine, sim: Simulation, spec: PlotSpec) -> QueryError:
    """Nothing to plot: the error names each ``--where`` value no point of the run has, with
    the nearest values it does have (as stored, to copy), so a typo or a rounding shows."""
    hints = [unmatched(engine, sim, spec.run_id, name, text) for name, text in spec.where.items()]
    return QueryError(
        "; ".join(
            [f"no points of run {spec.run_id} with a {spec.metric} to plot", *filter(None, hints)]
        )
    )


# How many of a run's values an error offers instead of one it does not have.
NEAREST = 3


def unmatched(
    engine: QueryEngine, sim: Simulation, run_id: str, name: str, text: str
) -> str | None:
    """``name=text`` and the run's nearest values if no point of the run has it; None if some
    point does (then it is the combination of filters that matches nothing)."""
    p, column, view = sim.by_name[name], f'"{name}"', view_name(sim.name)
    run = f"run_id = {run_literal(run_id)}"
    found = engine.execute(
        f"SELECT count(*) AS n FROM {view} WHERE {run} AND {matches(p, column, text)}"
    )
    if found.rows[0]["n"]:
        return None
    rows = engine.execute(
        f"SELECT DISTINCT {column} AS v FROM {view} WHERE {run} AND {column} IS NOT NULL"
    )
    values = [row["v"] for row in rows.rows]
    numeric = p.kind in ("float", "int")
    if numeric:
        values.sort(key=lambda v: abs(v - float(text)))
    else:
        values.sort(key=str)
    offered = ", ".join(str(v) for v in values[:NEAREST]) or "none"
    return f"no point has {name}={text} ({'nearest' if numeric else 'it has'}: {offered})"


def build_sql(sim: Simulation, spec: PlotSpec, series: str | None) -> str:
    where = _conditions(sim, spec)
    axes = [_column(sim, spec.x, "--x")]
    if series:
        axes.append(_column(sim, series, "--y" if spec.y else "--by"))
    keys = ", ".join(axes)
    return (
        f'SELECT {keys}, avg("{spec.metric}") AS value, count(*) AS points\n'
        f"FROM {view_name(sim.name)}\n"
        f"WHERE {where}\n"
        f"GROUP BY {keys}\nORDER BY {keys}"
    )


def scatter_sql(sim: Simulation, spec: PlotSpec) -> str:
    """Every point itself (no cells): x, y when given, and the metric as ``value``."""
    where = _conditions(sim, spec)
    axes = [_column(sim, spec.x, "--x")]
    if spec.y:
        axes.append(_column(sim, spec.y, "--y"))
    return (
        f'SELECT {", ".join(axes)}, "{spec.metric}" AS value\n'
        f"FROM {view_name(sim.name)}\n"
        f"WHERE {where}\n"
        f"ORDER BY point_index\nLIMIT {SCATTER_LIMIT}"
    )


def shape_sql(sim: Simulation, spec: PlotSpec) -> str:
    """How the plotted points spread: points, distinct x, distinct y, distinct (x, y)."""
    where = _conditions(sim, spec)
    x = _column(sim, spec.x, "--x")
    y = _column(sim, spec.y, "--y") if spec.y else x
    return (
        f"WITH pts AS (SELECT {x} AS px, {y} AS py FROM {view_name(sim.name)} WHERE {where})\n"
        "SELECT count(*) AS points, count(DISTINCT px) AS nx, count(DISTINCT py) AS ny, "
        "(SELECT count(*) FROM (SELECT DISTINCT px, py FROM pts) AS cells) AS nxy\nFROM pts"
    )


def run_request(engine: QueryEngine, run_id: str) -> dict[str, Any] | None:
    """The run's canonical request where this engine's data holds its manifest (the local
    stage's data root); None elsewhere (Athena reads tables, not manifests)."""
    from sweeps.engines.local import LocalEngine

    if not isinstance(engine, LocalEngine):
        return None
    from chalicelib.storage import manifests
    from chalicelib.storage.stores import LocalStore

    try:
        return manifests.load(LocalStore(engine.root), run_id).request_body
    except Exception:  # no manifest here (data copied without it): decide from the data
        return None


def is_sampled(engine: QueryEngine, sim: Simulation, spec: PlotSpec, request: Any) -> bool:
    """Draw the points themselves? Yes when a plotted axis is sampled (see the module doc)."""
    if isinstance(request, dict):
        sampled = set(request.get("sample", {}).get("axes", {}))
        return spec.x in sampled or (spec.y is not None and spec.y in sampled)
    shape = engine.execute(shape_sql(sim, spec)).rows[0]
    if spec.y:
        return bool(shape["nx"] * shape["ny"] > 2 * shape["nxy"])
    return bool(shape["nx"] * 2 > shape["points"] and shape["nx"] > 20)


def log_axis(choice: bool | None, axis: str | None, values: list[Any], request: Any) -> bool:
    """``--logx``/``--logy`` as given; by default on for a loguniform axis and for positive
    numbers spanning more than two decades."""
    if choice is not None:
        return choice
    if isinstance(request, dict) and axis is not None:
        dist = request.get("sample", {}).get("axes", {}).get(axis, {})
        if "loguniform" in dist:
            return True
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers or min(numbers) <= 0:
        return False
    return max(numbers) > LOG_SPAN * min(numbers)


def run_literal(run_id: str) -> str:
    """The run id as a quoted literal, validated like every query's run_id placeholder."""
    return render("'${run_id}'", {"run_id": run_id})


def pick_series(engine: QueryEngine, sim: Simulation, spec: PlotSpec) -> str | None:
    """The axis lines are drawn per: --by, else the first other parameter with several values."""
    if spec.y or spec.by:
        return spec.y or spec.by
    for p in sim.parameters:
        if p.name in (spec.x, *spec.where):
            continue
        sql = (
            f'SELECT count(DISTINCT "{p.name}") AS n FROM {view_name(sim.name)} '
            f"WHERE run_id = {run_literal(spec.run_id)}"
        )
        if engine.execute(sql).rows[0]["n"] > 1:
            return p.name
    return None


def draw(engine: QueryEngine, spec: PlotSpec, path: Path) -> Written:
    sim = simulation_of(engine, spec.run_id)
    request = run_request(engine, spec.run_id)
    scatter = is_sampled(engine, sim, spec, request)
    series = None if scatter else pick_series(engine, sim, spec)
    sql = scatter_sql(sim, spec) if scatter else build_sql(sim, spec, series)
    rows = engine.execute(sql).rows
    if not rows:
        raise no_points(engine, sim, spec)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    scope = f"run {spec.run_id}" + "".join(f", {k}={v}" for k, v in spec.where.items())
    per_cell = 1 if scatter else max(r["points"] for r in rows)
    note = f" (mean of up to {per_cell} points per cell)" if per_cell > 1 else ""
    vertical = spec.y or "value"
    logx = log_axis(spec.logx, spec.x, [r[spec.x] for r in rows], request)
    logy = log_axis(spec.logy, spec.y, [r[vertical] for r in rows], request)
    if scatter:
        _scatter(fig, ax, rows, spec, logx, logy)
        over = f"{spec.x} x {spec.y}" if spec.y else spec.x
        ax.set_title(f"{spec.metric} over sampled {over}\n{scope}, {len(rows)} points", fontsize=10)
    elif spec.y:
        _heatmap(fig, ax, rows, spec.x, spec.y, spec.metric)
        ax.set_title(f"{spec.metric} over {spec.x} x {spec.y}\n{scope}{note}", fontsize=10)
    else:
        _lines(ax, rows, spec.x, series, spec.metric)
        _log_scales(ax, logx, logy)
        ax.set_title(f"{spec.metric} over {spec.x}\n{scope}{note}", fontsize=10)
    fig.tight_layout()
    try:
        save(fig, path)
    finally:
        plt.close(fig)
    width, height = (round(v) for v in fig.get_size_inches() * DPI)
    points = len(rows) if scatter else sum(r["points"] for r in rows)
    kind = "scatter" if scatter else "heatmap" if spec.y else "lines"
    return Written(
        path, points, width, height, kind, logx and kind != "heatmap", logy and kind != "heatmap"
    )


def save(fig: Any, path: Path) -> None:
    """Write the PNG, creating its folder. What the file system refuses (a file where a folder
    should be, no permission, a full disk) is an OutputError naming the path: it was an
    OSError, a traceback of ``sweep plot``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, format="png")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _heatmap(fig: Any, ax: Any, rows: list[dict[str, Any]], x: str, y: str, metric: str) -> None:
    import numpy as np

    xs = sorted({r[x] for r in rows})
    ys = sorted({r[y] for r in rows})
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        grid[ys.index(r[y]), xs.index(r[x])] = r["value"]
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", cmap="viridis")
    if np.isnan(grid).any():  # say what a blank cell means rather than leave it to guesswork
        fig.text(0.01, 0.01, "blank: no result (e.g. a failed shard)", fontsize=7, color="0.4")
    ax.set_xticks(range(len(xs)), [_label(v) for v in xs], rotation=45, ha="right")
    ax.set_yticks(range(len(ys)), [_label(v) for v in ys])
    _thin(ax.get_xticklabels())
    _thin(ax.get_yticklabels())
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.colorbar(image, ax=ax, label=metric)


def _log_scales(ax: Any, logx: bool, logy: bool) -> None:
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")


def _scatter(
    fig: Any, ax: Any, rows: list[dict[str, Any]], spec: PlotSpec, logx: bool, logy: bool
) -> None:
    """The points themselves: x against y (or against the metric), coloured by the metric."""
    vertical = spec.y or "value"
    xs = [r[spec.x] for r in rows]
    ys = [r[vertical] for r in rows]
    values = [r["value"] for r in rows]
    image = ax.scatter(xs, ys, c=values, cmap="viridis", s=14, edgecolors="none")
    _log_scales(ax, logx, logy)
    ax.set_xlabel(spec.x)
    ax.set_ylabel(spec.y or spec.metric)
    ax.grid(True, alpha=0.3)
    fig.colorbar(image, ax=ax, label=spec.metric)


def _thin(labels: list[Any], most: int = 20) -> None:
    step = math.ceil(len(labels) / most)
    for i, label in enumerate(labels):
        label.set_visible(i % step == 0)


def _lines(ax: Any, rows: list[dict[str, Any]], x: str, series: str | None, metric: str) -> None:
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r[series] if series else None, []).append(r)
    numeric = all(isinstance(r[x], int | float) and not isinstance(r[x], bool) for r in rows)
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        xs = [r[x] if numeric else str(r[x]) for r in members]
        label = f"{series}={_label(key)}" if series else None
        ax.plot(xs, [r["value"] for r in members], marker="o", markersize=3, label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=7, ncols=2 if len(groups) > 10 else 1)
