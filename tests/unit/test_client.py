"""Which engine ``sweeps.Client`` queries through, chosen by the stage its URL names, and where
the Athena engine's workgroup and database come from. No request is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps import Client, QueryError
from sweeps.client import RunRecord, read_request
from sweeps.engines.athena import AthenaEngine
from sweeps.engines.local import LocalEngine
from sweeps.errors import ApiError

DEPLOYED = "https://abc123.execute-api.eu-west-1.amazonaws.com/api"


def test_the_local_stage_queries_its_data_root_with_duckdb(tmp_path: Path) -> None:
    engine = Client("http://127.0.0.1:8000", local_root=tmp_path).engine()
    assert isinstance(engine, LocalEngine)
    assert engine.root == tmp_path


def test_a_deployed_stage_queries_athena_with_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWEEP_ATHENA_WORKGROUP", "sweeps-dev")
    monkeypatch.setenv("SWEEP_GLUE_DATABASE", "sweeps_dev")
    client = Client(DEPLOYED)
    engine = client.engine()
    assert isinstance(engine, AthenaEngine)
    assert (engine.workgroup, engine.database) == ("sweeps-dev", "sweeps_dev")
    assert client.engine() is engine  # one per client
    given = Client(DEPLOYED, workgroup="wg", database="db").engine()
    assert isinstance(given, AthenaEngine)
    assert (given.workgroup, given.database) == ("wg", "db")


def test_athena_without_a_workgroup_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWEEP_ATHENA_WORKGROUP", raising=False)
    monkeypatch.delenv("SWEEP_GLUE_DATABASE", raising=False)
    with pytest.raises(QueryError, match="SWEEP_ATHENA_WORKGROUP"):
        Client(DEPLOYED).engine()


def test_a_request_is_a_mapping_json_text_or_a_file(tmp_path: Path) -> None:
    body = {"simulation": "pi", "parameters": {}}
    path = tmp_path / "r.json"
    path.write_text('{"simulation": "pi", "parameters": {}}')
    assert read_request(body) == read_request(' {"simulation": "pi", "parameters": {}}') == body
    assert read_request(path) == read_request(str(path)) == body
    with pytest.raises(ApiError, match="cannot read"):
        read_request(tmp_path / "missing.json")


def test_a_listing_item_becomes_a_typed_record() -> None:
    record = RunRecord.from_json(
        {
            "run_id": "20261126T100000000Z-0123456789ab",
            "label": None,
            "simulation": "pi",
            "created_at": "2026-11-26T10:00:00.000Z",
            "shard_count": 3,
            "complete": False,
            "cancelled": False,
        }
    )
    assert record.created_at.isoformat() == "2026-11-26T10:00:00+00:00"
    assert (record.label, record.shard_count, record.complete) == (None, 3, False)
    with pytest.raises(AttributeError):
        record.label = "x"  # type: ignore[misc]
