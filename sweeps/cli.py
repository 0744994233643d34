"""``sweep``: the command a user runs against a stage (contract: "The `sweep` command").

stdout carries what a script would capture (a run id, a table, CSV, JSON); progress bars, notes
and errors go to stderr. Exit status: 0 success, 1 when the API or a query reports an error
(its problems printed one per line), 2 on usage errors (click's own).
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click
from rich.cells import cell_len
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

from sweeps.api import API_ENV, DEFAULT_API
from sweeps.client import DEFAULT_POLL_S, Client, Engine, Run, Status, parse_request
from sweeps.errors import ApiError, QueryError, SweepsError
from sweeps.sql import all_queries, all_views, view_relations

if TYPE_CHECKING:  # the engines load DuckDB, sqlglot or boto3: only a query needs them
    from sweeps.engines.athena import AthenaEngine
    from sweeps.engines.base import QueryEngine, QueryResult

FORMATS = ("table", "csv", "json")


@dataclass
class Context:
    api_url: str | None

    @property
    def client(self) -> Client:
        """Built when a command runs (inside ``reported``: a malformed URL is an ApiError)."""
        return Client(self.api_url)

    def run(self, run_id: str) -> Run:
        return self.client.run(run_id)


def out(width: int | None = None) -> Console:
    # Built per call, so it follows whatever sys.stdout is now (click's test runner swaps it).
    # Piped, a table keeps its full width instead of rich's 80 columns. What it prints is data
    # (paths, query answers), never rich markup or emoji codes: "[/tmp]" in a value raised
    # MarkupError, "[a]" vanished, ":smile:" became an emoji. ``width``: wider than the
    # terminal (show_table).
    if width is None and not sys.stdout.isatty():
        width = 200
    return Console(file=sys.stdout, width=width, markup=False, emoji=False)


def err() -> Console:
    """stderr's console: literal text, as ``out``'s (progress columns render their own markup)."""
    return Console(file=sys.stderr, soft_wrap=True, markup=False, emoji=False)


# A column folded to fit the terminal gets at least this many characters; a table that cannot
# give every column that, with its id columns whole, is printed wider than the terminal.
FOLDED_MIN = 4


def is_id_column(name: str) -> bool:
    """Columns of identifiers (run_id, source_run_id, shard_id): kept whole on one line."""
    return name == "id" or name.endswith("_id")


def show_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None
) -> None:
    """Print a table on stdout with no value lost. Cells and headers are literal text (a
    bracket is not rich markup: ``path [/tmp] missing`` raised MarkupError). A table wider
    than the console folds its cells onto more lines instead of rich's default ellipsis
    (which cut every run id to ``20261207…`` in an 80-column terminal); id columns are never
    folded, so a run id stays one line a user can double-click and copy. If even that cannot
    fit, the table is printed wider than the console (the terminal wraps its lines) rather
    than let rich cut the id columns as its last resort."""
    table = Table(
        *(
            Column(header=Text(name), overflow="fold", no_wrap=is_id_column(name))
            for name in columns
        ),
        title=title,
        title_justify="left",
    )
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console = out()
    needed = narrowest_width(columns, rows)
    if console.width < needed:
        console = out(width=needed)
    console.print(table)


def narrowest_width(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The width a table of these cells needs with its id columns whole and every other column
    at least ``FOLDED_MIN`` wide (or as wide as its widest line): rich's default box, a space
    either side of each cell and a border line between and around the columns."""
    total = len(columns) + 1
    for i, name in enumerate(columns):
        widest = widest_line([name, *(row[i] for row in rows)])
        total += 2 + (widest if is_id_column(name) else min(widest, FOLDED_MIN))
    return total


def widest_line(texts: Iterable[str]) -> int:
    return max((cell_len(line) for text in texts for line in text.splitlines()), default=0)


def fail(lines: list[str]) -> NoReturn:
    for line in lines:
        click.echo(f"error: {line}" if line is lines[0] else f"  {line}", err=True)
    sys.exit(1)


@contextmanager
def reported() -> Iterator[None]:
    """API and query errors, and any other the client reports (a file it cannot write), end
    the command with exit status 1 and their problems listed."""
    try:
        yield
    except ApiError as exc:
        fail(exc.lines())
    except SweepsError as exc:
        fail([str(exc)])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--api",
    "api_url",
    envvar=API_ENV,
    metavar="URL",
    help=f"API base URL (env {API_ENV}; default {DEFAULT_API}, the local stage). "
    "Requests to a deployed (https, non-loopback) stage are SigV4-signed.",
)
@click.pass_context
def main(ctx: click.Context, api_url: str | None) -> None:
    """Submit parameter sweeps, follow them, and query and plot their results."""
    ctx.obj = Context(api_url)


pass_context = click.make_pass_decorator(Context)


# --- options ----------------------------------------------------------------------------------


def _setting(name: str) -> Callable[[], Any]:
    """A default read from Settings when the command runs (not at import), so the same
    SWEEP_* variables the functions read apply, and a malformed one is named, not a traceback
    of ``sweep --help``."""

    def read() -> Any:
        from chalicelib.config import Settings, SettingsError

        try:
            return getattr(Settings.from_env(), name)
        except SettingsError as exc:
            raise click.UsageError(str(exc)) from None

    return read


def engine_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--engine",
                type=click.Choice(["local", "athena"]),
                help="Where to read the stage's data (default: the stage's own, local for the "
                "local stage, athena for a deployed one).",
            ),
            click.option(
                "--root",
                type=click.Path(path_type=Path, file_okay=False),
                help="Local data root (default: SWEEP_LOCAL_ROOT, else .sweep-data/).",
            ),
            click.option(
                "--workgroup",
                default=_setting("athena_workgroup"),
                help="Athena workgroup (SWEEP_ATHENA_WORKGROUP).",
            ),
            click.option(
                "--database",
                default=_setting("glue_database"),
                help="Glue database (SWEEP_GLUE_DATABASE).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


# --- API commands ---------------------------------------------------------------------------


@main.command()
@pass_context
def simulations(ctx: Context) -> None:
    """List the simulations, their parameters and metrics."""
    with reported():
        simulations = ctx.client.simulations()
    rows = []
    for sim in simulations:
        params = []
        for p in sim["parameters"]:
            default = "" if p.get("default") is None else f"={p['default']}"
            params.append(f"{p['name']}:{p['type']}{default}")
        rows.append([sim["name"], " ".join(params), " ".join(sim["metrics"])])
    show_table(["simulation", "parameters", "metrics"], rows, title="simulations")


# How often a follower polls (``Run.wait``): at least this, longer while status is slow to read.
interval_option = click.option(
    "--interval",
    default=DEFAULT_POLL_S,
    show_default=True,
    help="Seconds between polls, or nine times a slow status read.",
)


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--wait", is_flag=True, help="Follow the run with a progress bar until complete.")
@interval_option
@click.option(
    "--estimate", "with_estimate", is_flag=True, help="Print `sweep estimate` first (stderr)."
)
@engine_options
@pass_context
def submit(
    ctx: Context,
    file: IO[str],
    wait: bool,
    interval: float,
    with_estimate: bool,
    engine: Engine | None,
    root: Path | None,
    workgroup: str | None,
    database: str | None,
) -> None:
    """Submit the sweep in FILE (JSON; - for stdin) and print its run id. With --estimate,
    reusable points are counted as `sweep estimate` counts them, on the stage submitted to
    (the engine options are for that)."""
    body = _load_body(file)
    with reported():
        if with_estimate:
            _print_estimate(ctx, body, err(), engine, root, workgroup, database)
        run = ctx.client.submit_body(body)  # FILE's JSON as it is, whatever its type
        click.echo(run.run_id)
        accepted = run.accepted
        err().print(
            f"accepted: {accepted['total_points']} points in {accepted['shard_count']} shards"
        )
        if wait:
            summarize(follow(run, interval))


def _load_body(file: IO[str]) -> Any:
    """FILE's request: not JSON is a usage error (2), and so is text that is not UTF-8 (JSON's
    encoding; reading it was a UnicodeDecodeError traceback); a name given twice in one object
    is the API's problem (1), as if it had been sent (``parse_request``)."""
    try:
        text = file.read()
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"not JSON: not UTF-8 text: {exc}", param_hint="FILE") from None
    try:
        with reported():
            return parse_request(text, file.name)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="FILE") from None


def _print_estimate(
    ctx: Context,
    body: Any,
    console: Console,
    engine: Engine | None,
    root: Path | None,
    workgroup: str | None,
    database: str | None,
) -> dict[str, Any]:
    """``sweep estimate`` and ``sweep submit --estimate``, one path: reusable points are
    counted on the engine the options choose, by default the stage's own (``engine_name``):
    on the local stage the plan's own reading of the reuse index under the data root, on a
    deployed one a query on Athena (built only when the request asks for reuse: nothing else
    needs Athena). Memory sizes and timeouts are the stage SWEEP_STAGE names: an API URL does
    not say which stage it serves, so a deployed one with SWEEP_STAGE unset gets a note."""
    from chalicelib.config import Settings
    from chalicelib.model.errors import InvalidRequest
    from sweeps.estimate import estimate, lines

    settings = Settings.from_env()
    counter = None
    reusing = isinstance(body, dict) and body.get("reuse") is True
    if reusing and ctx.client.engine_name(engine) == "athena":
        counter = athena_engine(ctx, workgroup, database)
    if not ctx.client.is_local_stage and settings.stage == "local":
        err().print(
            "note: priced with the local stage's function sizes; set SWEEP_STAGE to the "
            "deployed stage's name for its own"
        )
    data_root = root or settings.local_root
    if reusing and counter is None and root is None:
        require_default_root(data_root)
    try:
        result = estimate(body, stage=settings.stage, data_root=data_root, engine=counter)
    except InvalidRequest as exc:  # as the API would answer it: the error, then its problems
        raise ApiError.before_sending(exc) from None
    for line in lines(result):
        console.print(line)
    return result.to_dict()


def require_default_root(root: Path) -> None:
    """The default data root (SWEEP_LOCAL_ROOT, else .sweep-data/) whose reuse index a local
    estimate counts must exist: one that does not (an install outside the repository, a stage
    run elsewhere) is an error saying so, as for ``sweep query``; the estimate counted 0
    reusable points there, silently."""
    if not root.is_dir():
        raise QueryError(
            f"no local data root at {root}: set SWEEP_LOCAL_ROOT or give --root, the folder "
            "the local stage writes to (its reuse index counts the reusable points)"
        )


@main.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option("--next", "token", help="Page token from a previous listing.")
@pass_context
def runs(ctx: Context, limit: int, token: str | None) -> None:
    """List the runs, newest first."""
    with reported():
        page = ctx.client.runs_page(limit, token)
    rows = []
    for run in page.runs:
        created = run.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        values = [
            run.run_id,
            run.label,
            run.simulation,
            created,
            run.shard_count,
            run.complete,
            run.cancelled,
        ]
        rows.append([str(value) for value in values])
    columns = ["run_id", "label", "simulation", "created_at", "shards", "complete", "cancelled"]
    show_table(columns, rows)
    if page.next:
        err().print(f"more: sweep runs --next {page.next}")


@main.command()
@click.argument("run")
@click.option("--watch", is_flag=True, help="Follow the run with a progress bar until complete.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@interval_option
@pass_context
def status(ctx: Context, run: str, watch: bool, as_json: bool, interval: float) -> None:
    """Show a run's status."""
    with reported():
        answer = follow(ctx.run(run), interval) if watch else ctx.run(run).status()
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        summarize(answer, out())


@main.command()
@click.argument("run")
@pass_context
def cancel(ctx: Context, run: str) -> None:
    """Cancel a run: no further shard starts."""
    with reported():
        answer = ctx.run(run).cancel()
    click.echo(json.dumps(answer))


@main.command()
@click.argument("run")
@click.option("--include-pending", is_flag=True, help="Re-dispatch pending shards too.")
@click.option("--wait", is_flag=True, help="Follow the run until complete again.")
@interval_option
@pass_context
def redrive(ctx: Context, run: str, include_pending: bool, wait: bool, interval: float) -> None:
    """Re-dispatch a run's failed shards as new attempts."""
    with reported():
        target = ctx.run(run)
        answer = target.redrive(include_pending)
        redriven = answer.get("redriven", [])
        click.echo(json.dumps(answer))
        err().print(f"redriven: {len(redriven)} shard(s) {redriven}")
        if wait and redriven:
            summarize(follow(target, interval))


def follow(run: Run, interval: float) -> Status:
    """Wait for the run with a progress bar on stderr; returns the last status."""
    started = time.monotonic()
    first_done: list[int] = []  # the shards already done at the first poll
    with Progress(
        TextColumn("shards"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        TextColumn("{task.fields[points]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err(),
    ) as progress:
        bar = progress.add_task("run", total=None, failed=0, rate="", points="")

        def show(answer: Status) -> None:
            done = _done(answer)
            first_done[:] = first_done or [done]
            elapsed = time.monotonic() - started
            rate = (done - first_done[0]) / elapsed if elapsed > 0 else 0.0
            progress.update(
                bar,
                total=answer["shard_count"],
                completed=done,
                failed=answer["shards"]["failed"],
                points=f"points {answer.get('points_reused', 0)} reused, "
                f"{answer.get('points_evaluated', 0)} evaluated",
                rate=f"{rate:.1f} shards/s",
            )

        return run.wait(poll=interval, on_status=show)


def _done(answer: Status) -> int:
    shards = answer["shards"]
    return int(shards["succeeded"] + shards["failed"])


def cost_line(cost: dict[str, Any]) -> str:
    """The run's cost as status reports it, on one line."""
    bound = " (upper bound: crashed attempts charged their timeout)" if cost["upper_bound"] else ""
    return (
        f"cost ${cost['usd']:.6f}{bound}: {cost['lambda_gb_s']:.3f} Lambda GB-s, "
        f"{cost['invocations']} invocations, {cost['s3_requests']} S3 requests "
        f"(prices {cost['prices']})"
    )


def reuse_text(answer: Status) -> str:
    """A reusing run's reused and evaluated points, also when none was found (0 reused is
    then the answer to what the run asked); nothing for a run without reuse, which copies no
    point by construction: its evaluated points are its succeeded ones, already shown."""
    if not (answer.get("request") or {}).get("reuse"):
        return ""
    return f" ({answer['points_reused']} reused, {answer['points_evaluated']} evaluated)"


def summarize(answer: Status, console: Console | None = None) -> None:
    console = console or err()
    shards = answer["shards"]
    state = "complete" if answer.get("complete") else "running"
    if answer.get("cancelled"):
        state += ", cancelled" + (
            f" ({answer['cancel_reason']})" if answer.get("cancel_reason") else ""
        )
    console.print(
        f"run {answer['run_id']} ({answer.get('simulation')}, label {answer.get('label')}): "
        f"{state}; shards {shards['succeeded']} succeeded, {shards['failed']} failed, "
        f"{shards['pending']} pending of {answer['shard_count']}; "
        f"points {answer.get('points_succeeded')} of {answer['total_points']}" + reuse_text(answer)
    )
    if answer.get("cost"):
        console.print(cost_line(answer["cost"]))
    if answer.get("failed_shards"):
        console.print(f"failed shards: {', '.join(map(str, answer['failed_shards']))}")
    if answer.get("queryable") is False:
        console.print(
            "not queryable in Athena yet: its partitions are not registered (the reconciler "
            "retries every pass)"
        )
    if answer.get("compaction_abandoned"):
        console.print(
            "not compacted: the compactor did not get through after its tries; queries read "
            "the run's per-shard files (correct, slower)"
        )


# --- queries ----------------------------------------------------------------------------------


def client_for(
    ctx: Context,
    engine: Engine | None,
    root: Path | None,
    workgroup: str | None,
    database: str | None,
) -> Client:
    """The client a query runs through, with the command's engine options; without --engine,
    the stage's own engine (``Client.engine_name``: local for the local stage, Athena for a
    deployed one), so a command never reads another stage's data by default."""
    name = ctx.client.engine_name(engine)
    if name == "athena" and not (workgroup and database):
        raise click.UsageError(
            "the athena engine needs --workgroup and --database (SWEEP_ATHENA_WORKGROUP, "
            "SWEEP_GLUE_DATABASE)"
        )
    if name == "local" and root is None:
        _setting("local_root")()  # a malformed SWEEP_LOCAL_ROOT is a usage error, named
    # Only --root is handed over: the default root is the client's own, so a default that does
    # not exist (an install outside the repository) is an error saying so, not empty answers.
    local_root = root if name == "local" else None
    return Client(ctx.api_url, local_root=local_root, workgroup=workgroup, database=database)


def make_engine(
    ctx: Context,
    engine: Engine | None,
    root: Path | None,
    workgroup: str | None,
    database: str | None,
) -> QueryEngine:
    return client_for(ctx, engine, root, workgroup, database).engine(engine)


def athena_engine(ctx: Context, workgroup: str | None, database: str | None) -> AthenaEngine:
    from sweeps.engines.athena import AthenaEngine

    engine = make_engine(ctx, "athena", None, workgroup, database)
    assert isinstance(engine, AthenaEngine)
    return engine


@main.command("estimate")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@engine_options
@pass_context
def estimate_command(
    ctx: Context,
    file: IO[str],
    as_json: bool,
    engine: Engine | None,
    root: Path | None,
    workgroup: str | None,
    database: str | None,
) -> None:
    """Estimate what the sweep in FILE would cost (evaluates a small sample locally). With
    "reuse": true, reusable points are counted on the stage's engine: the local data root's
    reuse index on the local stage, Athena on a deployed one (or as --engine says)."""
    body = _load_body(file)
    with reported():
        figures = _print_estimate(
            ctx, body, err() if as_json else out(), engine, root, workgroup, database
        )
    if as_json:
        click.echo(json.dumps(figures, indent=2))


@main.command()
@click.argument("name", required=False)
@click.option("--run", "run_id", help="The run a per-run query is about.")
@click.option("--metric", help="best_points: the metric to minimise.")
@click.option("--shard-count", type=int, help="coverage: the run's shard count (default: API).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="json is strict: NaN and infinities are null.",
)
@click.option("--list", "list_", is_flag=True, help="List the queries and views.")
@click.option("--show-sql", is_flag=True, help="Print the SQL the engine would run.")
@click.option(
    "--create-views",
    is_flag=True,
    help="With --engine athena: create or replace every view (a deploy step).",
)
@engine_options
@pass_context
def query(
    ctx: Context,
    name: str | None,
    run_id: str | None,
    metric: str | None,
    shard_count: int | None,
    fmt: str,
    list_: bool,
    show_sql: bool,
    create_views: bool,
    engine: Engine | None,
    root: Path | None,
    workgroup: str | None,
    database: str | None,
) -> None:
    """Run NAME (a query of athena/, a view of --list: its rows, of --run's run if given, or
    SQL text) on the local data or on Athena."""
    if create_views:
        create_all_views(ctx, name, engine, show_sql, workgroup, database)
        return
    if list_ or not name:
        click.echo("\n".join(all_queries()))
        click.echo("\n".join(view_relations()))
        return
    with reported():
        client = client_for(ctx, engine, root, workgroup, database)
        params = {"metric": metric, "shard_count": shard_count}
        if show_sql:
            click.echo(client.sql(name, run=run_id, engine=engine, **params))
            return
        result = client.query_result(name, run=run_id, engine=engine, **params)
    emit(result, fmt)


def create_all_views(
    ctx: Context,
    name: str | None,
    engine: Engine | None,
    show_sql: bool,
    workgroup: str | None,
    database: str | None,
) -> None:
    if engine != "athena":
        raise click.UsageError("--create-views needs --engine athena (local creates its own)")
    if name:
        raise click.UsageError("--create-views takes no query")
    if show_sql:
        click.echo("\n".join(f"-- {view}\n{sql.rstrip()};" for view, sql in all_views()))
        return
    with reported():
        created = athena_engine(ctx, workgroup, database).create_views()
    for view, query_id in created.items():
        click.echo(f"{view}: created (query {query_id})")


def emit(result: QueryResult, fmt: str) -> None:
    if fmt == "json":
        rows = [json_safe(row) for row in result.rows]
        click.echo(json.dumps(rows, indent=2, default=str, allow_nan=False))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=result.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(result.rows)
    else:
        show_table(result.columns, [[_cell(row[c]) for c in result.columns] for row in result.rows])
        err().print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")


def json_safe(value: Any) -> Any:
    """``value`` with every NaN and infinity (in lists and structs too) made null: JSON has no
    such numbers, and Python's ``NaN``/``Infinity`` tokens are refused by strict parsers (jq,
    JavaScript's JSON.parse), while real runs do produce them (option_pricing's stderr at
    paths=1). Not a float otherwise: as it was."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# --- plots ------------------------------------------------------------------------------------


@main.command()
@click.argument("run")
@click.option("--x", "x", required=True, help="Parameter on the horizontal axis.")
@click.option("--y", "y", help="Parameter on the vertical axis (a heatmap); none: lines.")
@click.option("--metric", required=True, help="Metric to show (colour, or the line's height).")
@click.option(
    "--by", help="Without --y: one line per value of this parameter (default: another axis)."
)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="AXIS=VALUE",
    help="Keep only points with this parameter value; repeatable.",
)
@click.option(
    "--logx/--no-logx",
    default=None,
    help="Log horizontal axis (default: on for a loguniform axis or one spanning > 2 decades).",
)
@click.option(
    "--logy/--no-logy",
    default=None,
    help="Log vertical axis (default: on for a loguniform axis or one spanning > 2 decades).",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="PNG file to write."
)
@engine_options
@pass_context
def plot(
    ctx: Context,
    run: str,
    x: str,
    y: str | None,
    metric: str,
    by: str | None,
    where: tuple[str, ...],
    logx: bool | None,
    logy: bool | None,
    output: Path | None,
    engine: Engine | None,
    root: Path | None,
    workgroup: str | None,
    database: str | None,
) -> None:
    """Draw a metric of RUN over one or two parameters into a PNG, via results_<simulation>:
    a heatmap or lines for gridded axes, a scatter coloured by the metric for sampled ones."""
    from sweeps import plots

    filters: dict[str, str] = {}
    for item in where:
        axis, sep, value = item.partition("=")
        if not sep or not axis:
            raise click.BadParameter(f"{item!r} is not AXIS=VALUE", param_hint="--where")
        filters[axis] = value
    if y and by:
        raise click.UsageError("--by is for line plots (no --y)")
    path = output or Path(f"{run}-{metric}.png")
    with reported():
        spec = plots.PlotSpec(run, x, y, metric, by, filters, logx, logy)
        written = plots.draw(make_engine(ctx, engine, root, workgroup, database), spec, path)
    err().print(
        f"wrote {written.path} ({written.kind}, {written.points} points, "
        f"{written.width}x{written.height})"
    )
    click.echo(str(written.path))


if __name__ == "__main__":
    main()
