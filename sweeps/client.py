"""The Python API: submit sweeps, follow them and read their results as Arrow tables.

``Client`` speaks the HTTP API of one stage (``SWEEP_API_URL``, else the local stage on
localhost:8000; requests to a deployed stage are SigV4-signed) and queries its data: on the local
stage with DuckDB over the local data root, on a deployed one with Athena. Everything it reports
is an exception (``sweeps.errors``: ``ApiError`` carries the contract's ``problems``); nothing
prints. The ``sweep`` command is built on it.

Against a running local stage (this example is run by the tests, against ``chalice local``):

>>> from sweeps import Client
>>> client = Client()
>>> run = client.submit({
...     "simulation": "option_pricing",
...     "parameters": {"strike": {"values": [90, 100, 110]}, "paths": {"values": [500]}},
...     "shards": {"count": 2},
...     "label": "doctest",
... }, wait=True)
>>> status = run.status()
>>> status["complete"], status["shards"]
(True, {'succeeded': 2, 'failed': 0, 'pending': 0})
>>> table = run.results()                          # a pyarrow.Table via results_option_pricing
>>> table.num_rows, str(table.schema.field("strike").type), str(table.schema.field("price").type)
(3, 'double', 'double')
>>> sorted(table.column("strike").to_pylist())
[90.0, 100.0, 110.0]
>>> client.query("run_summary", run=run).column("status").to_pylist()
['succeeded']
>>> any(r.run_id == run.run_id and r.label == "doctest" for r in client.runs())
True
>>> client.submit({"simulation": "option_pricing", "shards": {"count": 0}})
Traceback (most recent call last):
    ...
sweeps.errors.ApiError: HTTP 400 invalid_request: ...
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict
from urllib.parse import quote

from chalicelib.config import Settings
from chalicelib.model.errors import InvalidRequest
from chalicelib.model.json_text import loads
from sweeps.api import Api, is_local
from sweeps.errors import ApiError, QueryError, WaitTimeout
from sweeps.sql import placeholders, render, resolve, strip_header

if TYPE_CHECKING:
    import pyarrow as pa

    from sweeps.engines.base import QueryEngine, QueryResult

Engine = Literal["local", "athena"]
DEFAULT_POLL_S = 0.5
# ``Run.wait`` pauses at least this many times as long as its last status read took, so a
# watcher keeps the stage busy at most a tenth of the time: a running 100,000-shard run's
# status lists 200,000 keys (about 0.3 s of a local stage's CPU, about 210 S3 requests on a
# deployed one). At 3 (until 2026-12-07) a watcher of a 100,000-shard run on a two-core local
# stage took a quarter of a core from the run's workers: 25 of the 205 CPU seconds the stage
# spent on the run were its server's, most of them status reads. Completion is then seen at
# most ~3 s late on a run of minutes.
PACE = 9.0


class ShardCounts(TypedDict):
    succeeded: int
    failed: int
    pending: int


class Status(TypedDict):
    """``GET /sweeps/{run_id}`` as the contract gives it (fields a stage may add are kept)."""

    run_id: str
    label: str | None
    simulation: str
    created_at: str
    total_points: int
    shard_count: int
    dispatch: dict[str, int]
    shards: ShardCounts
    complete: bool
    failed_shards: list[int]
    points_succeeded: int
    cancelled: bool
    cancel_reason: NotRequired[str | None]
    redrives: NotRequired[dict[str, Any]]
    auto_redrives: NotRequired[int]
    points_reused: NotRequired[int]
    points_evaluated: NotRequired[int]
    queryable: NotRequired[bool]
    compaction_abandoned: NotRequired[bool]
    cost: NotRequired[dict[str, Any]]
    request: NotRequired[dict[str, Any]]
    simulation_version: NotRequired[str]


@dataclass(frozen=True)
class RunRecord:
    """One run of ``GET /sweeps``."""

    run_id: str
    label: str | None
    simulation: str
    created_at: datetime
    shard_count: int
    complete: bool
    cancelled: bool

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> RunRecord:
        return cls(
            run_id=str(item["run_id"]),
            label=item.get("label"),
            simulation=str(item["simulation"]),
            created_at=datetime.fromisoformat(str(item["created_at"])),
            shard_count=int(item["shard_count"]),
            complete=bool(item["complete"]),
            cancelled=bool(item["cancelled"]),
        )


@dataclass(frozen=True)
class RunsPage:
    """One page of ``GET /sweeps``: its runs, and the token of the next page (None: last)."""

    runs: list[RunRecord]
    next: str | None


def read_request(request: Mapping[str, Any] | list[Any] | str | Path) -> Any:
    """A request given as a mapping, JSON text, or the path of a JSON file. JSON that is not
    an object (an array, parsed or as text) is sent as it is: the API answers it with the
    contract's problems."""
    if isinstance(request, Mapping):
        return dict(request)
    if isinstance(request, list):
        return request
    text = str(request)
    if isinstance(request, str) and text.lstrip().startswith(("{", "[")):
        source = "the request"
    else:
        path = Path(text)
        text = read_file(path)
        source = str(path)
    try:
        return parse_request(text, source)
    except json.JSONDecodeError as exc:
        raise ApiError(
            None,
            "invalid_request",
            f"{source} is not JSON",
            [{"path": "/", "message": str(exc)}],
        ) from None


def read_file(path: Path) -> str:
    """A request file's text. What cannot be read, or is not UTF-8 (JSON's encoding: a
    UnicodeDecodeError escaped before), is an ApiError ``invalid_request``, as everything the
    client reports about a request."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ApiError(None, "invalid_request", f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        problem = {"path": "/", "message": f"not UTF-8: {exc}"}
        raise ApiError(None, "invalid_request", f"{path} is not JSON", [problem]) from None


def parse_request(text: str, source: str) -> Any:
    """A request's JSON text (from ``source``) read as the API reads a body
    (``chalicelib.model.json_text.loads``): a name given twice in one object is an ``ApiError``
    with the API's problem at its pointer, not the last value kept silently. Not JSON:
    ``json.JSONDecodeError``."""
    try:
        return loads(text)
    except InvalidRequest as exc:
        raise ApiError.before_sending(exc, source) from None


class Client:
    """One stage: its API, and the engines that query its data.

    ``api``: the base URL (default ``SWEEP_API_URL``, else the local stage). ``local_root``: the
    local stage's data root (default ``SWEEP_LOCAL_ROOT``, else the project's ``.sweep-data/``:
    set it when the stage runs elsewhere). ``workgroup``/``database``: Athena's, for a deployed
    stage (default ``SWEEP_ATHENA_WORKGROUP``/``SWEEP_GLUE_DATABASE``).
    """

    def __init__(
        self,
        api: str | None = None,
        *,
        local_root: Path | str | None = None,
        workgroup: str | None = None,
        database: str | None = None,
        http: Api | None = None,
    ) -> None:
        self.http = http or Api(api)
        self._local_root = Path(local_root) if local_root is not None else None
        self._workgroup = workgroup
        self._database = database
        self._engines: dict[str, QueryEngine] = {}

    @property
    def is_local_stage(self) -> bool:
        """Whether the API is the local stage (a loopback or plain-http URL)."""
        return is_local(self.http.base)

    # --- the API ------------------------------------------------------------------------------

    def simulations(self) -> list[dict[str, Any]]:
        """``GET /simulations``: each simulation's parameters, metrics and version."""
        answer: dict[str, Any] = self.http.get("/simulations")
        simulations: list[dict[str, Any]] = answer["simulations"]
        return simulations

    def submit(
        self,
        request: Mapping[str, Any] | list[Any] | str | Path,
        wait: bool = False,
        *,
        timeout: float | None = None,
        poll: float = DEFAULT_POLL_S,
    ) -> Run:
        """``POST /sweeps`` with a request (a mapping, JSON text or a JSON file's path); with
        ``wait``, returns once the run is complete (``Run.wait``)."""
        return self.submit_body(read_request(request), wait, timeout=timeout, poll=poll)

    def submit_body(
        self,
        body: Any,
        wait: bool = False,
        *,
        timeout: float | None = None,
        poll: float = DEFAULT_POLL_S,
    ) -> Run:
        """``POST /sweeps`` with ``body``, a parsed JSON value, sent as it is (``submit`` reads
        a ``str`` as JSON text or a file's path). A request file holding a JSON string, number
        or null (``"examples/lhs.json"``) is then the body the API answers with its problems
        (not a JSON object), not a path read and submitted in its place."""
        accepted: dict[str, Any] = self.http.post("/sweeps", body)
        run = Run(self, str(accepted["run_id"]), accepted)
        if wait:
            run.wait(timeout, poll)
        return run

    def run(self, run_id: str) -> Run:
        """A run by its id (no request is made until you ask it something)."""
        return Run(self, run_id)

    def runs_page(self, limit: int = 20, token: str | None = None) -> RunsPage:
        """One page of ``GET /sweeps``, newest first; ``token``: a previous page's ``next``."""
        path = f"/sweeps?limit={limit}" + (f"&next={quote(token, safe='')}" if token else "")
        answer: dict[str, Any] = self.http.get(path)
        return RunsPage(
            [RunRecord.from_json(item) for item in answer.get("runs", [])], answer.get("next")
        )

    def runs(self, page_size: int = 100) -> Iterator[RunRecord]:
        """Every run, newest first, following the listing's pages as they are read."""
        token: str | None = None
        while True:
            page = self.runs_page(page_size, token)
            yield from page.runs
            if not page.next:
                return
            token = page.next

    # --- queries ------------------------------------------------------------------------------

    def engine(self, name: Engine | None = None) -> QueryEngine:
        """The query engine by name; None: the local engine on the local stage, else Athena.
        Each is built once per client (the local one keeps its DuckDB connection)."""
        name = self.engine_name(name)
        if name not in self._engines:
            self._engines[name] = self._make_engine(name)
        return self._engines[name]

    def engine_name(self, name: Engine | None = None) -> Engine:
        """``name``, or the stage's own engine: local on the local stage, else Athena."""
        return name or ("local" if self.is_local_stage else "athena")

    def _make_engine(self, name: str) -> QueryEngine:
        if name == "local":
            from sweeps.engines.local import LocalEngine

            root = self.local_root
            if self._local_root is None and not root.is_dir():  # e.g. installed elsewhere
                raise QueryError(
                    f"no local data root at {root}: set SWEEP_LOCAL_ROOT (or "
                    "Client(local_root=...)) to the folder the local stage writes to"
                )
            return LocalEngine(root)
        if name != "athena":
            raise QueryError(f"no engine {name!r}: local or athena")
        workgroup = self._workgroup or _settings().athena_workgroup
        database = self._database or _settings().glue_database
        if not (workgroup and database):
            raise QueryError(
                "the Athena engine needs a workgroup and a database "
                "(SWEEP_ATHENA_WORKGROUP, SWEEP_GLUE_DATABASE)"
            )
        from chalicelib import aws
        from sweeps.engines.athena import AthenaEngine

        return AthenaEngine(workgroup, database, aws.athena)

    @property
    def local_root(self) -> Path:
        return self._local_root or _settings().local_root

    def query_text(
        self,
        query: str,
        *,
        run: Run | str | None = None,
        engine: Engine | None = None,
        **params: Any,
    ) -> tuple[str | None, dict[str, Any]]:
        """The Athena SQL of ``query`` (a name or SQL text) before rendering, and its
        parameters: ``run_id`` from ``run``, ``shard_count`` from the run's status when the
        query needs it and none is given. The text is None for a generated query whose run has
        no outcome in the data yet."""
        from sweeps.sql import generated_queries

        run_id = run.run_id if isinstance(run, Run) else run
        values: dict[str, Any] = {"run_id": run_id, **params}
        if query in generated_queries():
            text = self.engine(engine).generated_text(query, run_id)
        else:
            text = resolve(query, per_run=run_id is not None)
        needs_count = text is not None and "shard_count" in placeholders(text)
        if needs_count and values.get("shard_count") is None and run_id:
            values["shard_count"] = self.run(run_id).status()["shard_count"]
        return text, values

    def sql(
        self,
        query: str,
        *,
        run: Run | str | None = None,
        engine: Engine | None = None,
        **params: Any,
    ) -> str:
        """The SQL ``query`` runs as, on that engine (DuckDB's dialect for the local one)."""
        text, values = self.query_text(query, run=run, engine=engine, **params)
        if text is None:
            run_id = values["run_id"]
            raise QueryError(f"no outcome of run {run_id} here: its simulation is unknown")
        rendered = render(text, values)
        if self.engine_name(engine) == "local":
            from sweeps.engines.local import to_duckdb

            return to_duckdb(rendered)
        return rendered

    def query_result(
        self,
        query: str,
        *,
        run: Run | str | None = None,
        engine: Engine | None = None,
        **params: Any,
    ) -> QueryResult:
        """``query`` with rows for printing and ``.table`` for analysis (see ``query``)."""
        text, values = self.query_text(query, run=run, engine=engine, **params)
        runner = self.engine(engine)
        if text is None:  # a generated query of a run with no outcome here: no rows
            return runner.run(query, values["run_id"])
        return runner.execute(strip_header(render(text, values)))

    def query(
        self,
        query: str,
        *,
        run: Run | str | None = None,
        engine: Engine | None = None,
        **params: Any,
    ) -> pa.Table:
        """Run a query by name (``sweep query --list``) or SQL text (Athena SQL, placeholders
        like ``'${run_id}'``); ``run`` fills ``run_id``, other placeholders come as keywords
        (``metric="abs_error"``). Answers a ``pyarrow.Table``."""
        return self.query_result(query, run=run, engine=engine, **params).table


class Run:
    """One run of a stage; each method asks the API (or the engine) again."""

    def __init__(
        self, client: Client, run_id: str, accepted: Mapping[str, Any] | None = None
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.accepted = dict(accepted or {})  # the 202's body when this client submitted it

    def __repr__(self) -> str:
        return f"Run({self.run_id!r})"

    def _path(self, suffix: str = "") -> str:
        return f"/sweeps/{quote(self.run_id, safe='')}{suffix}"

    def status(self) -> Status:
        """``GET /sweeps/{run_id}``."""
        answer: Status = self.client.http.get(self._path())
        return answer

    def wait(
        self,
        timeout: float | None = None,
        poll: float = DEFAULT_POLL_S,
        on_status: Callable[[Status], None] | None = None,
    ) -> Status:
        """Poll until the run is complete and return its status; ``on_status`` sees each
        status read. Polls every ``poll`` seconds, or ``PACE`` times as long as the last read
        took if that is longer. WaitTimeout after ``timeout`` seconds, once a read made at the
        deadline still found the run running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            asked = time.monotonic()
            answer = self.status()
            if on_status is not None:
                on_status(answer)
            if answer["complete"]:
                return answer
            now = time.monotonic()
            pause = max(poll, PACE * (now - asked))
            if deadline is not None:
                if now >= deadline:  # the last read was at the deadline or after it
                    raise WaitTimeout(f"run {self.run_id} not complete after {timeout:g} s")
                pause = min(pause, deadline - now)
            time.sleep(pause)

    def cancel(self) -> dict[str, Any]:
        """``POST /sweeps/{run_id}/cancel``: no further shard starts."""
        answer: dict[str, Any] = self.client.http.post(self._path("/cancel"), {})
        return answer

    def redrive(self, include_pending: bool = False) -> dict[str, Any]:
        """``POST /sweeps/{run_id}/redrive``: re-dispatch the failed shards (and the pending
        ones too, with ``include_pending``); the answer's ``redriven`` lists them."""
        body = {"include_pending": include_pending}
        answer: dict[str, Any] = self.client.http.post(self._path("/redrive"), body)
        return answer

    def results(self, engine: Engine | None = None) -> pa.Table:
        """The run's points through its simulation's typed view ``results_<simulation>``: one
        column per key, parameter and metric, typed as the simulation declares them, ordered
        by point. ``engine`` None: local on the local stage, Athena on a deployed one (where a
        run is queryable once its status says ``queryable``)."""
        from sweeps.views import view_name

        return self.client.query(view_name(self.status()["simulation"]), run=self, engine=engine)


def _settings() -> Settings:
    return Settings.from_env()
