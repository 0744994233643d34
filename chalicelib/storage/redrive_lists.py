"""The redrive lists: which shards a redrive (by hand, or the reconciler's ``auto-<n>``) sends
again, and after which attempt of each.

Written before the redrive is dispatched, so the dispatcher reads the shards from here and
status counts a redriven shard as pending until an attempt newer than the one recorded lands.
This module is their one reader and writer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from chalicelib.storage import layout
from chalicelib.storage.stores import ObjectStore


@dataclass(frozen=True)
class RedriveList:
    job: str
    shards: list[int]
    after_attempts: dict[int, int]  # shard -> its latest failed attempt when it was redriven

    @property
    def automatic(self) -> bool:
        return self.job.startswith(layout.AUTO_REDRIVE)


def _encode(shards: list[int], after_attempts: dict[int, int], reason: str | None) -> bytes:
    record: dict[str, object] = {
        "shards": shards,
        "after_attempts": {str(k): v for k, v in after_attempts.items()},
        # Unique, so two concurrent redrives never both count one list as theirs: a create
        # that finds bytes equal to its own counts as created (stores.py).
        "claimed_by": uuid.uuid4().hex,
    }
    if reason is not None:
        record["reason"] = reason
    return json.dumps(record).encode()


def create(
    store: ObjectStore,
    run_id: str,
    job: str,
    shards: list[int],
    after_attempts: dict[int, int],
    reason: str | None = None,
) -> bool:
    """Record ``job``'s list once (conditional create); False if it already exists."""
    return store.create(layout.redrive_list(run_id, job), _encode(shards, after_attempts, reason))


def create_manual(
    store: ObjectStore, run_id: str, shards: list[int], after_attempts: dict[int, int]
) -> str:
    """Record the next ``redrive-<n>`` list; returns its job name."""
    number = 1
    while not create(store, run_id, layout.manual_redrive_job(number), shards, after_attempts):
        number += 1
    return layout.manual_redrive_job(number)


def withdraw(store: ObjectStore, run_id: str, job: str) -> None:
    """Empty ``job``'s list: a redrive whose hand-off to the dispatcher failed sends nothing,
    and its shards read as before it (failed), so the run is complete again and the same
    redrive can be asked again. Its job name stays taken. Should the Invoke have reached
    Lambda after all, the dispatcher finds no shard to send, or sends shards that read as
    decided, whose workers write nothing: either way the redrive did nothing, as its 503
    said."""
    store.put(layout.redrive_list(run_id, job), _encode([], {}, "not dispatched"))


def shards(store: ObjectStore, run_id: str, job: str) -> list[int]:
    """The shards ``job`` sends again, in the order it lists them."""
    return [int(k) for k in json.loads(store.get(layout.redrive_list(run_id, job)))["shards"]]


def every(store: ObjectStore, run_id: str) -> Iterator[RedriveList]:
    """Every redrive list of the run."""
    for obj in store.list(layout.redrive_lists_prefix(run_id)):
        job = layout.parse_redrive_list(obj.key)
        if job is None:
            continue
        data = json.loads(store.get(obj.key))
        after = {int(k): int(v) for k, v in data["after_attempts"].items()}
        yield RedriveList(job, [int(k) for k in data["shards"]], after)
