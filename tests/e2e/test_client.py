"""``sweeps.Client`` against a real ``chalice local --stage local`` over HTTP: the module's own
docstring example (run as a doctest), typed results, the contract's problems as exceptions,
listing pages, redrive and cancel."""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import sweeps.client
from scripts.local_stack import local_server
from sweeps import ApiError, Client, QueryError, Run
from tests.support import CONTRACT_EXAMPLE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("client-stage") / "data"
    with local_server(data, data.parent / "server.log") as base:
        yield base, data


@pytest.fixture(scope="module")
def client(stage: tuple[str, Path]) -> Client:
    base, data = stage
    return Client(base, local_root=data)


@pytest.fixture(scope="module")
def run(client: Client) -> Run:
    """The contract's example (shards 3 and 5 fail by injection), submitted and waited for."""
    return client.submit(CONTRACT_EXAMPLE, wait=True, timeout=120, poll=0.2)


def test_the_module_example_runs_as_a_doctest(
    stage: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, data = stage
    monkeypatch.setenv("SWEEP_API_URL", base)
    monkeypatch.setenv("SWEEP_LOCAL_ROOT", str(data))
    outcome = doctest.testmod(sweeps.client, optionflags=doctest.ELLIPSIS, verbose=False)
    assert outcome.attempted >= 10
    assert outcome.failed == 0


def test_results_have_one_typed_column_per_parameter_and_metric(client: Client, run: Run) -> None:
    status = run.status()
    assert status["shards"] == {"succeeded": 10, "failed": 2, "pending": 0}
    table = run.results()
    assert isinstance(table, pa.Table)
    assert table.num_rows == status["points_succeeded"] == 134
    double = ("spot", "strike", "rate", "volatility", "maturity")
    assert {f.name: str(f.type) for f in table.schema} == {
        "run_id": "string",
        "point_index": "int64",
        "shard_id": "int32",
        "source_run_id": "string",
        "replicate": "int32",
        **dict.fromkeys(double, "double"),
        "option": "string",
        "paths": "int64",
        **dict.fromkeys(("price", "stderr", "analytic", "abs_error"), "double"),
    }
    assert table.column("point_index").to_pylist() == sorted(
        table.column("point_index").to_pylist()
    )
    assert set(table.column("option").to_pylist()) == {"call", "put"}
    same = client.query(
        "SELECT count(*) AS n FROM results_option_pricing WHERE run_id = '${run_id}'", run=run
    )
    assert same.column("n").to_pylist() == [134]


def test_a_named_query_fills_the_shard_count_from_the_status(client: Client, run: Run) -> None:
    assert client.query("coverage", run=run).num_rows == 0  # failed shards are not gaps
    best = client.query("best_points", run=run, metric="abs_error")
    assert {"parameter", "parameter_value", "metric_value"} <= set(best.column_names)


def test_a_rejected_request_raises_with_the_contracts_problems(client: Client) -> None:
    with pytest.raises(ApiError) as info:
        client.submit(CONTRACT_EXAMPLE | {"shards": {"count": 0}, "seed": -1})
    error = info.value
    assert (error.status, error.code) == (400, "invalid_request")
    paths = {p["path"] for p in error.problems}
    assert {"/shards/count", "/seed"} <= paths


def test_requests_given_as_json_text_or_a_file(client: Client, tmp_path: Path) -> None:
    with pytest.raises(ApiError) as info:
        client.submit("{not json")
    assert (info.value.status, info.value.code) == (None, "invalid_request")  # never sent
    path = tmp_path / "bad.json"
    path.write_text('{"simulation": "nope"}')
    with pytest.raises(ApiError) as info:
        client.submit(path)
    assert info.value.status == 400


def test_an_unknown_run_is_a_404(client: Client) -> None:
    with pytest.raises(ApiError) as info:
        client.run("20261126T000000000Z-000000000000").status()
    assert (info.value.status, info.value.code) == (404, "not_found")


def test_runs_follow_the_listings_pages(client: Client, run: Run) -> None:
    second = client.submit(CONTRACT_EXAMPLE | {"fail_shards": [], "label": "second"})
    every = list(client.runs(page_size=1))
    ids = [r.run_id for r in every]
    assert len(ids) == len(set(ids)) >= 2
    assert ids.index(second.run_id) < ids.index(run.run_id)  # newest first
    mine = next(r for r in every if r.run_id == run.run_id)
    assert (mine.label, mine.simulation, mine.shard_count) == (
        "vol-strike-grid",
        "option_pricing",
        12,
    )
    assert mine.created_at.tzinfo is not None
    assert client.runs_page(1).next is not None
    second.wait(timeout=120, poll=0.2)


def test_redrive_and_cancel(client: Client, run: Run) -> None:
    assert run.redrive()["redriven"] == [3, 5]
    assert run.wait(timeout=120, poll=0.2)["failed_shards"] == [3, 5]  # injected again
    with pytest.raises(ApiError) as info:
        run.cancel()  # completed without being cancelled
    assert info.value.status == 409


def test_results_of_a_stage_whose_data_is_elsewhere_are_empty_not_wrong(
    stage: tuple[str, Path], run: Run, tmp_path: Path
) -> None:
    elsewhere = Client(stage[0], local_root=tmp_path)
    assert elsewhere.run(run.run_id).results().num_rows == 0
    with pytest.raises(QueryError):
        elsewhere.query("SELECT nope FROM results_option_pricing")
