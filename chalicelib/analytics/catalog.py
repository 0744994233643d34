"""Making a run's outcomes and results queryable the moment they land.

The dispatcher calls ``register_run(run_id, dt)`` when it dispatches a run (and again on a
redrive: it is idempotent). Every partition a run can ever write is known then — the run's
``dt`` is its creation date and ``status`` is one of two values — so the Glue catalog gets them
before the first worker writes a file, with no crawler, no ``MSCK REPAIR`` and no projection.
docs/analytics.md explains the choice.

On the local stage there is nothing to register: DuckDB discovers hive partitions by listing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from chalicelib import aws
from chalicelib.analytics import glue_schema
from chalicelib.config import Settings
from chalicelib.model import ids
from chalicelib.storage import layout
from chalicelib.storage.tables import PARTITIONS

STATUSES: tuple[layout.Status, ...] = ("succeeded", "failed")


class CatalogError(Exception):
    """Partitions could not be registered; registering again later is safe."""


class Catalog(ABC):
    @abstractmethod
    def register_run(self, run_id: str, dt: str) -> int:
        """Register every partition the run can write; returns how many were new."""

    @abstractmethod
    def point_run(self, run_id: str, dt: str, folders: dict[str, str]) -> None:
        """Point the run's partitions at a compaction generation's folders (keys under the data
        root, per ``storage.compaction.PARTITIONS``); idempotent."""

    @abstractmethod
    def points_at(self, run_id: str, dt: str, folders: dict[str, str]) -> bool:
        """Whether every one of the run's partitions points at these folders now: what the
        compactor asks before deleting what a generation replaced, as a compactor that pointed
        late (it read the generations before a newer one was committed) may have moved a
        partition back to an older generation's files."""

    def register_family(self, family: str) -> int:
        """Register a reuse family's partition of the table ``reuse`` (its merged index, one
        folder whatever its generation); idempotent, returns 1 if new. Nothing to do locally."""
        layout.reuse_merged_prefix(family)  # checks the name
        return 0


def check_run(run_id: str, dt: str) -> None:
    if not ids.is_run_id(run_id):
        raise ValueError(f"malformed run id {run_id!r}")
    if not ids.is_dt(dt):
        raise ValueError(f"malformed dt {dt!r}; expected YYYY-MM-DD")


class NoCatalog(Catalog):
    """The local stage: DuckDB reads ``key=value`` folders as partitions by itself."""

    def register_run(self, run_id: str, dt: str) -> int:
        check_run(run_id, dt)
        return 0

    def point_run(self, run_id: str, dt: str, folders: dict[str, str]) -> None:
        """The local engine reads the generation record itself (``storage.compaction``)."""
        check_run(run_id, dt)

    def points_at(self, run_id: str, dt: str, folders: dict[str, str]) -> bool:
        """Nothing points anywhere: the local engine reads the latest generation."""
        check_run(run_id, dt)
        return True


def partition_dirs(run_id: str, dt: str) -> dict[str, list[tuple[list[str], str]]]:
    """Per table, (partition values, folder key relative to the data root) for one run.

    Folder keys come from the layout's key builder, so they are the folders workers write to.
    """
    check_run(run_id, dt)
    outcomes = []
    for status in STATUSES:
        folder = layout.outcomes_partition(run_id, status, dt)
        values = {"run_id": run_id, "status": status, "dt": dt}
        outcomes.append(([values[k] for k in PARTITIONS["outcomes"]], folder))
    results = [([run_id], layout.results_prefix(run_id))]
    usage = [([run_id], layout.usage_prefix(run_id))]
    return {"outcomes": outcomes, "results": results, "usage": usage}


class GlueCatalog(Catalog):
    """Registers a run's partitions with Glue ``BatchCreatePartition`` (one call per table).

    ``location_uri`` is the data root, e.g. ``s3://bucket/prefix`` — the folder that holds
    ``outcomes/`` and ``results/``.
    """

    def __init__(self, database: str, location_uri: str, client_factory: Callable[[], Any]) -> None:
        location = location_uri.rstrip("/")
        if not layout.S3_ROOT_RE.fullmatch(location):
            raise ValueError(f"malformed data location {location_uri!r}; expected s3://bucket[/p]")
        self.database = database
        self.location = location
        self._client_factory = client_factory

    @property
    def client(self) -> Any:
        return self._client_factory()  # aws.py builds each client once

    def partition_inputs(self, run_id: str, dt: str) -> dict[str, list[dict[str, Any]]]:
        return {
            table: [
                {
                    "Values": values,
                    "StorageDescriptor": glue_schema.storage_descriptor(
                        table, f"{self.location}/{key}"
                    ),
                }
                for values, key in dirs
            ]
            for table, dirs in partition_dirs(run_id, dt).items()
        }

    def register_run(self, run_id: str, dt: str) -> int:
        return sum(
            self._create(table, inputs, f"of run {run_id}")
            for table, inputs in self.partition_inputs(run_id, dt).items()
        )

    def register_family(self, family: str) -> int:
        folder = f"{self.location}/{layout.reuse_merged_prefix(family)}"
        descriptor = glue_schema.storage_descriptor("reuse", folder)
        inputs = [{"Values": [family], "StorageDescriptor": descriptor}]
        return self._create("reuse", inputs, f"of family {family}")

    def _create(self, table: str, inputs: list[dict[str, Any]], whose: str) -> int:
        """One ``BatchCreatePartition``; a partition that exists already is no error."""
        try:
            response = self.client.batch_create_partition(
                DatabaseName=self.database, TableName=table, PartitionInputList=inputs
            )
        except aws.AWS_ERRORS as exc:
            raise CatalogError(
                f"registering {self.database}.{table} partitions {whose}: {aws.describe(exc)}"
            ) from exc
        errors = response.get("Errors") or []
        real = [
            e
            for e in errors
            if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"
        ]
        self._refuse_first("registering", table, real, "PartitionValues")
        return len(inputs) - len(errors)

    def _refuse_first(
        self, doing: str, table: str, errors: list[dict[str, Any]], values_key: str
    ) -> None:
        """A batch call's per-partition errors (Glue answers 200 with them): the first, named."""
        if errors:
            detail = errors[0].get("ErrorDetail", {})
            raise CatalogError(
                f"{doing} {self.database}.{table} partition {errors[0].get(values_key)}: "
                f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
            )

    def point_run(self, run_id: str, dt: str, folders: dict[str, str]) -> None:
        """One ``BatchUpdatePartition`` per table. Glue swaps a partition's location in one
        call, so a query planned before it reads the old files and one planned after reads the
        new, never both (the old ones are deleted only after the grace period)."""
        check_run(run_id, dt)
        entries: dict[str, list[dict[str, Any]]] = {}
        for partition, folder in folders.items():
            table, values = partition_values(run_id, dt, partition)
            descriptor = glue_schema.storage_descriptor(table, f"{self.location}/{folder}")
            entries.setdefault(table, []).append(
                {
                    "PartitionValueList": values,
                    "PartitionInput": {"Values": values, "StorageDescriptor": descriptor},
                }
            )
        for table, batch in entries.items():
            try:
                response = self.client.batch_update_partition(
                    DatabaseName=self.database, TableName=table, Entries=batch
                )
            except aws.AWS_ERRORS as exc:
                raise CatalogError(
                    f"pointing {self.database}.{table} partitions of run {run_id} at its "
                    f"compacted files: {aws.describe(exc)}"
                ) from exc
            self._refuse_first(
                "pointing", table, response.get("Errors") or [], "PartitionValueList"
            )

    def points_at(self, run_id: str, dt: str, folders: dict[str, str]) -> bool:
        """One ``BatchGetPartition`` per table; a partition missing or not returned (Glue's
        ``UnprocessedKeys``) is an error, never a yes."""
        check_run(run_id, dt)
        wanted: dict[str, dict[tuple[str, ...], str]] = {}
        for partition, folder in folders.items():
            table, values = partition_values(run_id, dt, partition)
            location = glue_schema.storage_descriptor(table, f"{self.location}/{folder}")
            wanted.setdefault(table, {})[tuple(values)] = location["Location"]
        for table, where in wanted.items():
            try:
                response = self.client.batch_get_partition(
                    DatabaseName=self.database,
                    TableName=table,
                    PartitionsToGet=[{"Values": list(v)} for v in where],
                )
            except aws.AWS_ERRORS as exc:
                raise CatalogError(
                    f"reading {self.database}.{table} partitions of run {run_id}: "
                    f"{aws.describe(exc)}"
                ) from exc
            if response.get("UnprocessedKeys"):
                raise CatalogError(f"{self.database}.{table}: partitions of {run_id} unread")
            found = {
                tuple(p["Values"]): p["StorageDescriptor"]["Location"]
                for p in response.get("Partitions", [])
            }
            if found != where:
                return False
        return True


def partition_values(run_id: str, dt: str, partition: str) -> tuple[str, list[str]]:
    """(table, partition values) of one of ``storage.compaction.PARTITIONS``."""
    table, _, status = partition.partition("/")
    values = {"run_id": run_id, "status": status, "dt": dt}
    return table, [values[k] for k in PARTITIONS[table]]


def catalog_for(settings: Settings, client_factory: Callable[[], Any] | None = None) -> Catalog:
    """Glue on an AWS stage with ``SWEEP_GLUE_DATABASE`` set; otherwise nothing to register."""
    if settings.backend != "aws" or not settings.glue_database or not settings.bucket:
        return NoCatalog()
    if client_factory is None:
        client_factory = aws.glue
    prefix = f"/{settings.prefix}" if settings.prefix else ""
    return GlueCatalog(settings.glue_database, f"s3://{settings.bucket}{prefix}", client_factory)
