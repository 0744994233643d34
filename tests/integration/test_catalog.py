"""Partition registration at dispatch time, against Glue in moto (and a Stubber for the error
entries moto cannot produce)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.analytics import glue_schema
from chalicelib.analytics.catalog import (
    CatalogError,
    GlueCatalog,
    NoCatalog,
    catalog_for,
    partition_dirs,
)
from chalicelib.config import Settings
from chalicelib.fanout.dispatcher import Dispatcher, Policy
from chalicelib.fanout.invoking import Invoker
from chalicelib.fanout.reconcile import reconcile
from chalicelib.model.events import DispatchJob
from chalicelib.runs import status as run_status
from chalicelib.runs.submit import submit
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore
from scripts.local_runs import run_sweep

DATABASE = "sweeps_test"
LOCATION = "s3://sweeps-data/stage/dev"
RUN_ID = "20260315T080000000Z-00aa11bb22cc"
DT = "2026-03-15"


@pytest.fixture
def glue() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("glue", region_name="us-east-1")
        client.create_database(DatabaseInput={"Name": DATABASE})
        for table in glue_schema.TABLES:
            client.create_table(
                DatabaseName=DATABASE,
                TableInput=glue_schema.table_input(table, f"{LOCATION}/{table}/"),
            )
        yield client


def partitions(glue: Any, table: str) -> list[dict[str, Any]]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=table)
    return [p for page in pages for p in page["Partitions"]]


def test_register_run_creates_the_runs_four_partitions_once(glue: Any) -> None:
    catalog = GlueCatalog(DATABASE, LOCATION + "/", lambda: glue)
    assert catalog.register_run(RUN_ID, DT) == 4
    assert catalog.register_run(RUN_ID, DT) == 0  # a redrive registers again: no error

    outcomes = sorted(partitions(glue, "outcomes"), key=lambda p: p["Values"])
    assert [p["Values"] for p in outcomes] == [
        [RUN_ID, "failed", DT],
        [RUN_ID, "succeeded", DT],
    ]
    for part in outcomes:
        _, status, dt = part["Values"]
        sd = part["StorageDescriptor"]
        assert sd["Location"] == (f"{LOCATION}/outcomes/run_id={RUN_ID}/status={status}/dt={dt}/")
        assert sd["Columns"] == glue_schema.storage_descriptor("outcomes", "")["Columns"]
        parquet = glue_schema.STORAGE["parquet"]
        assert sd["SerdeInfo"]["SerializationLibrary"] == parquet["SerDe"]
        assert sd["InputFormat"] == parquet["InputFormat"]
    (results,) = partitions(glue, "results")
    assert results["Values"] == [RUN_ID]
    assert results["StorageDescriptor"]["Location"] == f"{LOCATION}/results/run_id={RUN_ID}/"
    (usage,) = partitions(glue, "usage")
    assert usage["Values"] == [RUN_ID]
    assert usage["StorageDescriptor"]["Location"] == f"{LOCATION}/usage/run_id={RUN_ID}/"
    # JSON Lines (tables.FORMATS): Athena reads a table's partitions in the table's one format.
    json_serde = glue_schema.STORAGE["json"]["SerDe"]
    assert usage["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == json_serde


def test_a_second_run_adds_its_own_partitions(glue: Any) -> None:
    catalog = GlueCatalog(DATABASE, LOCATION, lambda: glue)
    catalog.register_run(RUN_ID, DT)
    other = "20260316T080000000Z-00aa11bb22dd"
    assert catalog.register_run(other, "2026-03-16") == 4
    assert len(partitions(glue, "outcomes")) == 4
    assert {tuple(p["Values"]) for p in partitions(glue, "results")} == {(RUN_ID,), (other,)}


def test_partition_folders_are_where_workers_write(tmp_path: Path) -> None:
    """Every folder a real run writes a file to is a registered partition's folder."""
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [10, 20, 30]}},
        "shards": {"count": 3},
        "fail_shards": [1],
    }
    run_sweep(tmp_path, body, RUN_ID, DT)
    written = {
        obj.key.rsplit("/", 1)[0] + "/"
        for prefix in ("outcomes/", "results/", "usage/")
        for obj in LocalStore(tmp_path).list(prefix)
    }
    registered = {key for dirs in partition_dirs(RUN_ID, DT).values() for _, key in dirs}
    assert written == registered  # this run wrote both a success and a failure


def test_a_missing_table_is_a_catalog_error(glue: Any) -> None:
    glue.delete_table(DatabaseName=DATABASE, Name="results")
    with pytest.raises(CatalogError, match="EntityNotFoundException"):
        GlueCatalog(DATABASE, LOCATION, lambda: glue).register_run(RUN_ID, DT)


def test_error_entries_other_than_already_exists_fail() -> None:
    client = boto3.client("glue", region_name="us-east-1")
    catalog = GlueCatalog(DATABASE, LOCATION, lambda: client)
    inputs = catalog.partition_inputs(RUN_ID, DT)
    with Stubber(client) as stub:
        stub.add_response(
            "batch_create_partition",
            {
                "Errors": [
                    {
                        "PartitionValues": [RUN_ID, "succeeded", DT],
                        "ErrorDetail": {
                            "ErrorCode": "AlreadyExistsException",
                            "ErrorMessage": "Partition already exists.",
                        },
                    }
                ]
            },
            {
                "DatabaseName": DATABASE,
                "TableName": "outcomes",
                "PartitionInputList": inputs["outcomes"],
            },
        )
        stub.add_response(
            "batch_create_partition",
            {
                "Errors": [
                    {
                        "PartitionValues": [RUN_ID],
                        "ErrorDetail": {
                            "ErrorCode": "InternalServiceException",
                            "ErrorMessage": "try again",
                        },
                    }
                ]
            },
            {
                "DatabaseName": DATABASE,
                "TableName": "results",
                "PartitionInputList": inputs["results"],
            },
        )
        with pytest.raises(CatalogError, match="InternalServiceException: try again"):
            catalog.register_run(RUN_ID, DT)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("run_id", "dt"),
    [("bad id'", DT), (RUN_ID, "2026-3-15"), (RUN_ID, "2026-02-30"), ("short", DT)],
)
def test_malformed_runs_are_refused_before_any_call(run_id: str, dt: str) -> None:
    def no_client() -> Any:
        raise AssertionError("no call expected")

    with pytest.raises(ValueError):
        GlueCatalog(DATABASE, LOCATION, no_client).register_run(run_id, dt)
    with pytest.raises(ValueError):
        NoCatalog().register_run(run_id, dt)


def test_no_catalog_on_the_local_stage() -> None:
    assert NoCatalog().register_run(RUN_ID, DT) == 0
    assert isinstance(catalog_for(Settings()), NoCatalog)


def test_catalog_for_an_aws_stage_uses_bucket_and_prefix() -> None:
    settings = Settings(
        backend="aws", bucket="sweeps-data", prefix="stage/dev", glue_database=DATABASE
    )
    catalog = catalog_for(settings, lambda: None)
    assert isinstance(catalog, GlueCatalog)
    assert (catalog.database, catalog.location) == (DATABASE, LOCATION)
    no_prefix = catalog_for(Settings(backend="aws", bucket="b-1", glue_database=DATABASE))
    assert isinstance(no_prefix, GlueCatalog) and no_prefix.location == "s3://b-1"
    assert isinstance(catalog_for(Settings(backend="aws", bucket="b-1")), NoCatalog)


def test_location_must_be_an_s3_uri() -> None:
    with pytest.raises(ValueError, match="s3://"):
        GlueCatalog(DATABASE, "/tmp/data", lambda: None)
    with pytest.raises(ValueError, match="s3://"):
        GlueCatalog(DATABASE, "s3://bucket/p\n", lambda: None)


def test_layout_and_partition_values_agree() -> None:
    (succeeded, failed) = partition_dirs(RUN_ID, DT)["outcomes"]
    key = layout.outcome(RUN_ID, "succeeded", DT, 7, 2)
    assert key.startswith(succeeded[1]) and succeeded[0] == [RUN_ID, "succeeded", DT]
    assert layout.outcome(RUN_ID, "failed", DT, 7, 2).startswith(failed[1])


class Accepting(Invoker):
    """Lambda's Invoke for this test: takes every event, runs none."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, function: str, payload: dict[str, Any]) -> None:
        self.events.append((function, payload))


def test_a_failed_registration_is_visible_and_the_reconciler_retries_it(
    glue: Any, tmp_path: Path
) -> None:
    """Glue fails the dispatcher's registration (a table is missing): the run still goes out,
    status says ``queryable: false``; the reconciler's next pass registers it."""
    settings = Settings(local_root=tmp_path / "data")
    store = LocalStore(settings.local_root)
    invoker = Accepting()
    catalog = GlueCatalog(DATABASE, LOCATION + "/", lambda: glue)
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [10, 20]}},
        "shards": {"count": 2},
    }
    run_id = submit(settings, store, invoker, body)["run_id"]
    ((_, job),) = invoker.events
    saved = glue.get_table(DatabaseName=DATABASE, Name="results")["Table"]
    glue.delete_table(DatabaseName=DATABASE, Name="results")
    Dispatcher(store, invoker, Policy(), catalog).run(DispatchJob.from_payload(job))
    assert len([e for e in invoker.events if e[0] == "worker"]) == 2  # dispatched regardless
    assert run_status.status(store, run_id)["queryable"] is False
    assert run_status.status(store, run_id, catalog=False)["queryable"] is True  # local stage

    glue.create_table(
        DatabaseName=DATABASE,
        TableInput={
            k: saved[k]
            for k in ("Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")
        },
    )
    assert reconcile(store, invoker, settings, catalog=catalog) == {"progressing": 1}
    assert run_status.status(store, run_id)["queryable"] is True
    assert len(partitions(glue, "results")) == 1
