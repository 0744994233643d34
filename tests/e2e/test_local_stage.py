"""End to end on the local stage: a real ``chalice local --stage local`` over real HTTP, with no
AWS credentials at all, writing real Parquet under a temporary ``SWEEP_LOCAL_ROOT``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from scripts.local_stack import local_server
from tests.conftest import CONTRACT_EXAMPLE

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

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect()
        for table in ("outcomes", "results"):
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet("
                f"'{self.data}/{table}/**/*.parquet', hive_partitioning=true, "
                "hive_types_autocast=false)"
            )
        rows: list[tuple[Any, ...]] = con.execute(query).fetchall()
        return rows


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

    where = f"run_id = '{run_id}'"
    finals = server.sql(
        f"SELECT shard_id, status, count(*) FROM outcomes WHERE {where} GROUP BY 1, 2 ORDER BY 1"
    )
    assert [row[0] for row in finals] == list(range(12))  # every shard exactly once
    assert {row[0] for row in finals if row[1] == "failed"} == {3, 5}
    assert all(row[2] == 1 for row in finals)
    codes = server.sql(
        f"SELECT DISTINCT error_code FROM outcomes WHERE {where} AND status='failed'"
    )
    assert codes == [("INJECTED_FAILURE",)]
    points = server.sql(
        f"SELECT sum(point_count) FROM outcomes WHERE {where} AND status = 'succeeded'"
    )[0][0]
    results = server.sql(f"SELECT count(*), count(DISTINCT point_index) FROM results WHERE {where}")
    assert results == [(points, points)] and points == status["points_succeeded"] == 134
    successes = sorted(p for p in server.data.rglob("status=succeeded/**/*.parquet"))
    stamps = [p.stat().st_mtime_ns for p in successes]

    redrive = server.post(f"/sweeps/{run_id}/redrive", {})
    assert redrive.status_code == 202 and redrive.json()["redriven"] == [3, 5]
    status = server.wait_complete(run_id)
    assert status["failed_shards"] == [3, 5]
    attempts = server.sql(
        f"SELECT shard_id, attempt, error_code FROM outcomes WHERE {where} AND status = 'failed' "
        "ORDER BY 1, 2"
    )
    assert attempts == [
        (3, 1, "INJECTED_FAILURE"),
        (3, 2, "INJECTED_FAILURE"),
        (5, 1, "INJECTED_FAILURE"),
        (5, 2, "INJECTED_FAILURE"),
    ]
    assert sorted(server.data.rglob("status=succeeded/**/*.parquet")) == successes
    assert [p.stat().st_mtime_ns for p in successes] == stamps  # nothing else re-ran


def data_files(data: Path) -> list[Path]:
    """The data root's files, minus the reconciler's own bookkeeping (its timer thread rewrites
    open-run markers at any moment)."""
    if not data.exists():
        return []
    return sorted(p for p in data.rglob("*") if "_index" not in p.parts and ".tmp-" not in p.name)


def test_bad_requests_over_http_write_nothing(server: Server) -> None:
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
    assert data_files(server.data) == before
    assert server.get("/sweeps/20261126T000000000Z-000000000000").status_code == 404
