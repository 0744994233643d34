"""The SQL a user can run by name: the files of ``athena/``, the queries generated per
simulation, and ``render``, the one way a value enters a query.

The files are written for Athena (engine v3, Trino SQL). Per-run queries name their parameters
as ``'${run_id}'``-style placeholders *inside string literals*, so every file is valid SQL as
committed. ``render`` replaces a placeholder only with a value that passed its validator (a run
id matches the layout's pattern, a shard count is an integer, ...): no value can carry a quote,
so no input is ever interpolated raw.

The engines that run this SQL are in ``sweeps.engines``; nothing here imports pyarrow or numpy
until a generated query or a typed view is asked for (they need the simulation registry).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.config import PROJECT_ROOT
from chalicelib.model import ids
from chalicelib.storage import layout
from sweeps.errors import QueryError

if TYPE_CHECKING:
    from chalicelib.simulations.declarations import Simulation


def _query_dir() -> Path:
    """An installed wheel carries ``athena/`` inside the package (pyproject.toml maps it there);
    a checkout reads the project's own folder."""
    bundled = Path(__file__).with_name("athena")
    return bundled if bundled.is_dir() else PROJECT_ROOT / "athena"


QUERY_DIR = _query_dir()
MAX_SHARD_COUNT = 10_000_000  # coverage.sql builds shard ids as hi * 1000 + lo, hi < 10,000
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER_RE = re.compile(r"\$\{([a-z_]+)\}")


# --- query files ------------------------------------------------------------------------------


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
    from sweeps.views import PER_SIMULATION_QUERIES

    return sorted(PER_SIMULATION_QUERIES)


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
        known = [*all_queries(), *view_relations()]
        raise QueryError(f"no query {name!r}; known: {', '.join(known)}")
    return path.read_text()


def resolve(query: str, per_run: bool = False) -> str:
    """A query name (``run_summary``), a view's name (``shard_status``,
    ``results_option_pricing``: its rows, a run's with ``per_run``; ``view_rows``) or SQL
    text."""
    if not _NAME_RE.match(query):
        return query
    if not (QUERY_DIR / f"{query}.sql").is_file() and query in view_relations():
        return view_rows(query, per_run)
    return load_query(query)


def view_relations() -> list[str]:
    """Every view by the name SQL reads it by (``view_<name>.sql`` creates ``<name>``), in
    creation order: what ``sweep query --list`` shows besides the queries."""
    return [name.removeprefix("view_") for name, _ in all_views()]


def view_rows(view: str, per_run: bool) -> str:
    """A view's rows, as ``sweep query <view>`` and ``Run.results`` read them: one run's
    (``${run_id}``) or every run's, by run and point (a typed view) or shard."""
    where = " WHERE run_id = '${run_id}'" if per_run else ""
    order = "point_index" if view.startswith("results_") else "shard_id"
    return f"SELECT * FROM {view}{where} ORDER BY run_id, {order}"


def strip_header(sql: str) -> str:
    """Drop the leading comment lines: Athena's Hive DDL parser fails on comments."""
    lines = sql.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip() + "\n"


def simulation(name: str) -> Simulation:
    """A simulation's declaration, from the registry this client carries."""
    from chalicelib.simulations.registry import REGISTRY

    if name not in REGISTRY:
        raise QueryError(f"simulation {name!r} is not one this client knows")
    return REGISTRY[name]


# --- parameters -------------------------------------------------------------------------------


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
    if not ids.is_name(value):
        raise QueryError(f"metric must match {ids.NAME_RE.pattern}, got {value!r}")
    return value


def _location(value: object) -> str:
    text = value.rstrip("/") if isinstance(value, str) else value
    if not (isinstance(text, str) and layout.S3_ROOT_RE.fullmatch(text)):
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
