"""End to end on the local stage: a real ``chalice local --stage local`` over real HTTP, with no
AWS credentials at all, writing real Parquet under a temporary ``SWEEP_LOCAL_ROOT``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import requests

from scripts.local_stack import local_server, local_stage
from sweeps import Client
from sweeps.engines.local import LocalEngine
from tests.support import CONTRACT_EXAMPLE

pytestmark = pytest.mark.e2e


class Server:
    def __init__(self, base: str, data: Path) -> None:
        self.base = base
        self.data = data

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.base + path, json=body, timeout=30)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, timeout=30)

    def wait_complete(self, run_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status: dict[str, Any] = self.get(f"/sweeps/{run_id}").json()
            if status["complete"]:
                return status
            time.sleep(0.3)
        raise AssertionError(f"run {run_id} not complete after {timeout} s: {status}")

    def query(self, name: str, run_id: str, **params: object) -> list[dict[str, Any]]:
        """A baseline query of athena/, through the same engine users run it with."""
        return LocalEngine(self.data).run(name, run_id=run_id, **params).rows

    def results(self, run_id: str) -> list[int]:
        """Every point index in the run's results files, read back with pyarrow."""
        folder = self.data / "results" / f"run_id={run_id}"
        return [i for f in folder.glob("*.parquet") for i in pq.read_table(f)["point_index"]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("local-stage") / "data"
    with local_server(data, data.parent / "server.log") as base:
        yield Server(base, data)


def test_a_sweep_with_failures_then_a_redrive(server: Server) -> None:
    answer = server.post("/sweeps", CONTRACT_EXAMPLE)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    assert answer.json()["shard_count"] == 12 and answer.json()["total_points"] == 162

    status = server.wait_complete(run_id)
    assert status["shards"] == {"succeeded": 10, "failed": 2, "pending": 0}
    assert status["failed_shards"] == [3, 5]
    assert status["dispatch"] == {"dispatched": 12, "failed": 0}
    # The contract's newer fields, as the local stage answers them.
    assert status["queryable"] is True  # no catalog to wait for locally
    assert status["simulation_version"] == "1" and status["request"]["seed"] == 7
    assert status["request"]["fail_shards"] == [3, 5] and status["label"] == "vol-strike-grid"
    assert (status["points_reused"], status["points_evaluated"]) == (0, 134)
    assert {"usd", "lambda_gb_s", "invocations", "s3_requests", "prices"} <= set(status["cost"])
    assert status["cost"]["invocations"] >= 13  # 12 workers and the dispatcher, at least

    assert server.query("coverage", run_id, shard_count=12) == []  # every shard exactly once
    summary = {row["status"]: row for row in server.query("run_summary", run_id)}
    assert {s: (r["shards"], r["points"], r["attempts"]) for s, r in summary.items()} == {
        "failed": (2, 28, 2),
        "succeeded": (10, 134, 10),
    }
    assert summary["succeeded"]["points"] == status["points_succeeded"]
    errors = server.query("failure_by_error", run_id)
    assert [(r["error_code"], r["failed_attempts"], r["failed_shards"]) for r in errors] == [
        ("INJECTED_FAILURE", 2, 2)
    ]
    indexes = server.results(run_id)
    assert len(indexes) == len(set(indexes)) == 134  # one row per point of a succeeded shard
    # The per-shard outcome files (compaction, in the background, writes its parts elsewhere and
    # never deletes these).
    outcomes = server.data / "outcomes"
    successes = sorted(p for p in outcomes.rglob("status=succeeded/**/*.parquet"))
    stamps = [p.stat().st_mtime_ns for p in successes]

    redrive = server.post(f"/sweeps/{run_id}/redrive", {})
    assert redrive.status_code == 202 and redrive.json()["redriven"] == [3, 5]
    status = server.wait_complete(run_id)
    assert status["failed_shards"] == [3, 5]
    errors = server.query("failure_by_error", run_id)
    assert [(r["error_code"], r["failed_attempts"], r["failed_shards"]) for r in errors] == [
        ("INJECTED_FAILURE", 4, 2)
    ]
    summary = {row["status"]: row for row in server.query("run_summary", run_id)}
    assert (summary["failed"]["attempts"], summary["failed"]["max_attempts"]) == (4, 2)
    assert sorted(outcomes.rglob("status=succeeded/**/*.parquet")) == successes
    assert [p.stat().st_mtime_ns for p in successes] == stamps  # nothing else re-ran


def data_files(data: Path) -> list[Path]:
    """The data root's files, minus the reconciler's own bookkeeping (its timer thread rewrites
    open-run markers at any moment)."""
    if not data.exists():
        return []
    return sorted(p for p in data.rglob("*") if "_index" not in p.parts and ".tmp-" not in p.name)


@pytest.fixture
def idle_server(tmp_path: Path) -> Iterator[Server]:
    """A stage of its own, with no run behind it: the module's ``server`` keeps compacting (and,
    a grace period later, cleaning) the runs earlier tests left, in the background, so its data
    root can change while a test that expects nothing written looks at it."""
    data = tmp_path / "data"
    with local_server(data, tmp_path / "server.log") as base:
        yield Server(base, data)


def test_bad_requests_over_http_write_nothing(idle_server: Server) -> None:
    server = idle_server
    before = data_files(server.data)
    bad = requests.post(
        server.base + "/sweeps",
        data="{nope",
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    wrong = requests.post(
        server.base + "/sweeps", data="x", timeout=10, headers={"Content-Type": "text/plain"}
    )
    assert wrong.status_code == 415
    invalid = server.post("/sweeps", CONTRACT_EXAMPLE | {"shards": {"count": 0}})
    assert invalid.status_code == 400
    assert invalid.json()["problems"][0]["path"] == "/shards/count"
    twice = requests.post(  # a zip member named twice: JSON would keep the second silently
        server.base + "/sweeps",
        data='{"simulation": "option_pricing", "shards": {"count": 1}, "parameters": {"pair": '
        '{"zip": {"spot": [90], "rate": [0.01], "spot": [110]}}}}',
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert twice.status_code == 400
    assert [p["path"] for p in twice.json()["problems"]] == ["/parameters/pair/zip/spot"]
    assert data_files(server.data) == before
    undeclared = requests.delete(server.base + "/sweeps", timeout=10)  # Chalice answers it
    assert undeclared.status_code == 405
    assert set(undeclared.json()) == {"error", "message", "problems"}
    plain = {"Content-Type": "text/plain"}  # a GET has no body: its content type is moot
    assert requests.get(server.base + "/simulations", headers=plain, timeout=10).ok
    for run_id in ("20261126T000000000Z-000000000000", "nope"):  # 200 or 404, says the contract
        assert server.get(f"/sweeps/{run_id}").status_code == 404
        assert server.post(f"/sweeps/{run_id}/cancel", {}).status_code == 404


def test_only_this_machine_is_answered(idle_server: Server) -> None:
    """The local stage has no authentication, so a web page must not reach it: a cross-site
    POST (a browser adds its Origin; with a text/plain body it needs no CORS preflight) and a
    name rebound to 127.0.0.1 (its Host) are refused, 403, on every route, and nothing is
    written. This machine's own callers (no Origin, a loopback Host or Origin) are answered."""
    server = idle_server
    body = json.dumps(CONTRACT_EXAMPLE)
    before = data_files(server.data)
    foreign = [
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},  # a sandboxed page or a file:// one
        {"Host": "rebound.attacker.example:8000"},
    ]
    for headers in foreign:
        for method, path in (("POST", "/sweeps"), ("GET", "/sweeps"), ("GET", "/simulations")):
            answer = requests.request(
                method,
                server.base + path,
                data=body if method == "POST" else None,
                headers={"Content-Type": "text/plain", **headers},
                timeout=10,
            )
            assert answer.status_code == 403, (headers, method, path, answer.text)
            assert answer.json()["error"] == "forbidden"
    assert data_files(server.data) == before
    port = server.base.rsplit(":", 1)[1]
    for headers in ({"Origin": f"http://localhost:{port}"}, {"Host": f"localhost:{port}"}, {}):
        assert requests.get(server.base + "/simulations", headers=headers, timeout=10).ok


def test_every_route_is_open_on_the_local_stage(server: Server) -> None:
    """Every route declares IAM auth (app.py, for the deployed stages); chalice local lets such
    routes through unsigned, so the local stage needs no credentials. A request without any
    Authorization header reaches the app on each route (the app's own answers, never 401/403)."""
    from app import app

    expected = {
        ("POST", "/sweeps"): 400,  # an empty body: the app's own problems list
        ("GET", "/sweeps"): 200,
        ("GET", "/sweeps/{run_id}"): 404,
        ("POST", "/sweeps/{run_id}/redrive"): 404,
        ("POST", "/sweeps/{run_id}/cancel"): 404,
        ("GET", "/simulations"): 200,
    }
    served = {(m, path) for path, methods in app.routes.items() for m in methods}
    assert served == set(expected)
    for (method, path), status in expected.items():
        url = server.base + path.replace("{run_id}", "no-such-run-0000")
        answer = requests.request(method, url, json={} if method == "POST" else None, timeout=30)
        assert "Authorization" not in answer.request.headers
        assert answer.status_code == status, (method, path, answer.text)
        assert "error" in answer.json() or status == 200


def test_a_complete_run_is_compacted_in_the_background(server: Server) -> None:
    """The local stage's compactor runs in a pool process once status finds the run complete
    (``LocalInvoker``): its generation is committed without anyone asking again, the API keeps
    answering, and the local engine then reads the generation, every point once."""
    from chalicelib.storage import compaction, layout
    from chalicelib.storage.stores import LocalStore

    body = dict(CONTRACT_EXAMPLE, fail_shards=[], seed=11)
    run_id = server.post("/sweeps", body).json()["run_id"]
    before = server.wait_complete(run_id)  # the read that finds it complete asks for compaction
    store = LocalStore(server.data)
    deadline = time.monotonic() + 60
    while (generation := compaction.latest(store, run_id)) is None:
        assert time.monotonic() < deadline, "no compaction within 60 s"
        assert server.get(f"/sweeps/{run_id}").status_code == 200  # answering meanwhile
        time.sleep(0.2)
    assert generation.number == 1
    assert not store.exists(layout.compaction_abandoned(run_id))
    assert server.query("coverage", run_id, shard_count=12) == []
    summary = {row["status"]: row for row in server.query("run_summary", run_id)}
    assert summary["succeeded"]["points"] == before["points_succeeded"] == 162
    assert server.get(f"/sweeps/{run_id}").json()["shards"] == before["shards"]


# docs/analytics.md, "Layout of a compacted run", written out here independently of layout.py.
COMPACTED_PART = re.compile(
    r"^compacted/(?:(?P<table>results|usage)/run_id=(?P<run>[A-Za-z0-9-]+)"
    r"|(?P<outcomes>outcomes)/run_id=(?P<orun>[A-Za-z0-9-]+)/status=(?:succeeded|failed)"
    r"/dt=\d{4}-\d{2}-\d{2})/gen-(?P<gen>\d{6})-(?P<token>[0-9a-f]+)/part-\d{5}\.(?P<kind>parquet|json\.gz)$"
)


def test_a_compacted_and_cleaned_run_has_the_documented_layout(tmp_path: Path) -> None:
    """On the real local stage, once its compaction is cleaned (grace and timers shortened):
    every part is where docs/analytics.md says, with the table's columns and types and no
    partition column inside; the commit records are there; the per-shard results files are
    gone, the per-shard outcome files kept; queries see every point and outcome once."""
    from chalicelib.storage.tables import OUTCOMES, RESULTS, USAGE
    from tests.support.usage_files import read_usage

    data = tmp_path / "data"
    fast = {
        "SWEEP_COMPACTION_GRACE_S": "1",
        "SWEEP_RECONCILE_INTERVAL_S": "1",
        "SWEEP_COMPACTION_RETRY_S": "1",
    }
    body = {
        "simulation": "option_pricing",
        "parameters": {"strike": {"values": [80, 90, 100, 110, 120]}, "paths": {"values": [200]}},
        "shards": {"count": 4},
        "fail_shards": [2],
    }
    with local_stage(data, tmp_path / "server.log", settings=fast) as (base, _):
        run = Client(base, local_root=data).submit(body, wait=True, timeout=120, poll=0.2)
        records = data / "runs" / run.run_id / "compaction"
        deadline = time.monotonic() + 120
        while not (records / "gen-000001.cleaned").exists():
            assert time.monotonic() < deadline, "not cleaned within 120 s"
            time.sleep(0.2)
        parts = sorted(
            str(p.relative_to(data)) for p in (data / "compacted").rglob("*") if p.is_file()
        )
        schemas = {"results": RESULTS, "usage": USAGE, "outcomes": OUTCOMES}
        tokens = set()
        for key in parts:
            match = COMPACTED_PART.match(key)
            assert match, key
            assert (match["run"] or match["orun"], match["gen"]) == (run.run_id, "000001")
            tokens.add(match["token"])
            table = match["table"] or match["outcomes"]
            # usage is JSON Lines, gzipped (tables.FORMATS), read back typed by its schema
            assert (match["kind"] == "json.gz") == (table == "usage"), key
            if table == "usage":
                rows = read_usage((data / key).read_bytes())
                assert rows.num_rows >= 5 and set(rows["function_name"].to_pylist()) >= {
                    "worker",
                    "dispatcher",
                }
                schema = rows.schema
            else:
                schema = pq.read_schema(data / key)
            assert [(f.name, f.type) for f in schema] == [
                (f.name, f.type) for f in schemas[table]
            ], key
        assert {k.split("/")[1] for k in parts} == {"results", "usage", "outcomes"}
        (token,) = tokens
        assert {p.name for p in records.iterdir()} >= {
            "gen-000001.json",
            "gen-000001.pointed",
            "gen-000001.cleaned",
            f"gen-000001-{token}.usage.gz",
        }
        results_part = next(k for k in parts if k.startswith("compacted/results/"))
        indexes = pq.read_table(data / results_part)["point_index"].to_pylist()
        assert indexes == [0, 1, 2, 4]  # 5 points; shard 2 (index 3) failed
        assert not list((data / "results").rglob("*.parquet"))  # replaced, then deleted
        kept = sorted(p.name for p in (data / "outcomes").rglob("*.parquet"))
        assert kept == [f"shard-00000{s}-attempt-1.parquet" for s in range(4)]
        typed = run.results()
        assert typed.column("point_index").to_pylist() == [0, 1, 2, 4]
        engine = LocalEngine(data)
        outcomes = engine.run(
            "SELECT shard_id, status FROM outcomes WHERE run_id = '${run_id}' ORDER BY shard_id",
            run_id=run.run_id,
        ).rows
        assert [(r["shard_id"], r["status"]) for r in outcomes] == [
            (0, "succeeded"),
            (1, "succeeded"),
            (2, "failed"),
            (3, "succeeded"),
        ]
