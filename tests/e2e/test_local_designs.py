"""Paired axes, sampled designs and replicates end to end: the examples submitted over real HTTP
to a real ``chalice local --stage local``, read back through the typed view. Each request runs
under two shardings; both must cover every point exactly once with the same values and the same
metrics, those values must be the ones the space computes, and LHS must stratify."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.config import PROJECT_ROOT
from chalicelib.model.validation import validate_request
from scripts.local_stack import local_server
from sweeps.engines.local import LocalEngine

pytestmark = pytest.mark.e2e


def example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PROJECT_ROOT / "examples" / name).read_text())
    return body


class Stage:
    def __init__(self, base: str, data: Path) -> None:
        self.base = base
        self.data = data

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(self.base + "/sweeps", json=body, timeout=30)
        assert answer.status_code == 202, answer.text
        accepted: dict[str, Any] = answer.json()
        return accepted

    def wait(self, run_id: str, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status: dict[str, Any] = requests.get(f"{self.base}/sweeps/{run_id}", timeout=30).json()
            if status["complete"]:
                return status
            time.sleep(0.3)
        raise AssertionError(f"run {run_id} not complete after {timeout} s")

    def rows(self, run_id: str) -> list[dict[str, Any]]:
        return (
            LocalEngine(self.data)
            .run(
                "SELECT * FROM results_option_pricing WHERE run_id = '${run_id}' "
                "ORDER BY point_index",
                run_id=run_id,
            )
            .rows
        )

    def run(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        accepted = self.submit(body)
        status = self.wait(accepted["run_id"])
        assert (
            status["shards"]["failed"] == 0
            and status["points_succeeded"] == accepted["total_points"]
        ), status
        return self.rows(accepted["run_id"])


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    data = tmp_path_factory.mktemp("local-designs") / "data"
    with local_server(data, data.parent / "server.log") as base:
        yield Stage(base, data)


def without_run(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("run_id", "shard_id")}


def check_covered_and_deterministic(
    stage: Stage, body: dict[str, Any], other: dict[str, Any]
) -> list[dict[str, Any]]:
    space = validate_request(body, None).space
    first = stage.run(body)
    resharded = copy.deepcopy(body) | {"shards": other}
    second = stage.run(resharded)
    assert [r["point_index"] for r in first] == list(range(space.size))  # each point once
    assert [without_run(r) for r in first] == [without_run(r) for r in second]
    assert len({r["shard_id"] for r in first}) != len({r["shard_id"] for r in second})
    for row in first:
        point = space.point(row["point_index"])
        assert {k: row[k] for k in point} == point
        assert row["replicate"] == space.replicate(row["point_index"])
    return first


def test_paired_axes_cover_their_pairs_under_two_shardings(stage: Stage) -> None:
    rows = check_covered_and_deterministic(stage, example("paired-axes.json"), {"size": 1})
    pairs = {(r["spot"], r["rate"]) for r in rows}
    assert pairs == {(90.0, 0.01), (110.0, 0.02), (130.0, 0.03)}  # paired, never crossed
    assert {r["option"] for r in rows} == {"call", "put"}


def test_an_lhs_design_is_stratified_and_the_same_under_two_shardings(stage: Stage) -> None:
    body = example("lhs.json")
    rows = check_covered_and_deterministic(stage, body, {"size": 37})
    n = body["sample"]["points"]
    for option in ("call", "put"):
        cell = [r for r in rows if r["option"] == option]
        assert len(cell) == n
        strata = sorted(min(int((r["spot"] - 80) / 40 * n), n - 1) for r in cell)
        assert strata == list(range(n))  # one point in each stratum of spot
        assert all(0.05 <= r["volatility"] <= 0.8 for r in cell)
    calls = [r for r in rows if r["option"] == "call"]
    puts = [r for r in rows if r["option"] == "put"]
    assert [c["spot"] for c in calls] == [p["spot"] for p in puts]  # every cell, same samples


def test_a_random_design_with_replicates(stage: Stage) -> None:
    body = example("lhs.json")
    body["sample"] |= {"design": "random", "points": 12}
    body["replicates"] = 3
    body["shards"] = {"count": 5}
    rows = check_covered_and_deterministic(stage, body, {"count": 2})
    assert len(rows) == 2 * 12 * 3
    for k in range(0, len(rows), 3):
        group = rows[k : k + 3]
        assert [r["replicate"] for r in group] == [0, 1, 2]
        assert len({(r["spot"], r["volatility"], r["rate"]) for r in group}) == 1
        assert len({r["price"] for r in group}) == 3  # independent streams


def test_bad_designs_are_400s_naming_every_problem(stage: Stage) -> None:
    body = example("lhs.json")
    body["sample"]["axes"]["spot"] = {"uniform": {"low": 0, "high": 120}}
    body["sample"]["axes"]["option"] = {"choice": {"values": ["call"]}}
    body["parameters"]["scenario"] = {"zip": {"strike": [90, 100], "maturity": [1]}}
    answer = requests.post(stage.base + "/sweeps", json=body, timeout=30)
    assert answer.status_code == 400
    paths = {p["path"] for p in answer.json()["problems"]}
    assert {
        "/sample/axes/spot/uniform/low",
        "/sample/axes/option",
        "/parameters/scenario/zip",
    } <= paths
