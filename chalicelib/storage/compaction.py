"""A run's compaction generations, and which files hold its rows: the one answer every reader
uses (the local engine, reuse, the compactor itself, the reconciler).

A generation is committed by one conditional create of ``runs/<id>/compaction/gen-N.json``
after all its files are written, so the record names complete files only and two compactors
racing commit one generation. The record says which per-shard files it absorbed (shard ids as
ranges, so it stays small at 100,000 shards); a reader takes the latest committed generation's
parts plus every per-shard file the generation did not absorb (a redrive's new shards, a late
failed attempt). That rule never counts a row twice and never misses one, whatever is deleted
later, because a file is deleted only once a newer generation absorbed it and the grace period
after the catalog stopped pointing at it has passed (``cleanup_due``).

Per-shard outcome files and usage records are never deleted: they are the keys status,
redrive, worker idempotency and a run's cost read (``storage.shard_states``, the success lock's
outcome, ``runs.cost``). Only the engines stop reading them once absorbed. Per-shard results
files and replaced generations' parts are deleted after the grace period.

The compacted set is ``layout.COMPACTED_TABLES``: outcomes and results (a file per shard) and
usage (a file per invocation). A usage record's name is random, so the records a generation
absorbed are named in a file of its own (``layout.compaction_usage_absorbed``), read only by
readers of the usage table.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.storage import layout
from chalicelib.storage.stores import ObjectStore

FORMAT = 1
RESULTS = "results"
USAGE = "usage"
# The partitions of a run, as keys of ``Generation.parts``: results, outcomes per status, usage.
STATUSES: tuple[layout.Status, ...] = ("succeeded", "failed")
PARTITIONS = (RESULTS, *(f"outcomes/{s}" for s in STATUSES), USAGE)


def table_of(partition: str) -> str:
    """The table of one of ``PARTITIONS``."""
    return partition.split("/", 1)[0]


def ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as ``[first, last]`` runs: a complete run's shards are one pair."""
    out: list[list[int]] = []
    for k in sorted(set(ids)):
        if out and out[-1][1] == k - 1:
            out[-1][1] = k
        else:
            out.append([k, k])
    return out


def from_ranges(pairs: Iterable[Iterable[int]]) -> frozenset[int]:
    found: set[int] = set()
    for first, last in (tuple(p) for p in pairs):
        found.update(range(first, last + 1))
    return frozenset(found)


@dataclass(frozen=True)
class Generation:
    """One committed compaction of a run."""

    run_id: str
    number: int
    token: str
    committed_at: datetime
    # The run's redrive jobs when it was made: a generation made before the latest redrive is
    # still read (its rows are right) but the run needs compacting again.
    redrive_jobs: tuple[str, ...]
    results_shards: frozenset[int]  # shards whose per-shard results file it holds
    succeeded: frozenset[int]  # shards whose success outcome it holds
    failed: dict[int, int]  # shard -> the highest failed attempt it holds
    parts: dict[str, tuple[str, ...]]  # PARTITIONS -> its part keys, in point_index order
    part_bytes: dict[str, int] = field(default_factory=dict)
    absorbed: frozenset[int] = frozenset()  # results files it absorbed first (to delete)
    usage_records: int = 0  # how many usage records it holds (named in its own file)

    def to_json(self) -> bytes:
        record = {
            "format": FORMAT,
            "run_id": self.run_id,
            "generation": self.number,
            "token": self.token,
            "committed_at": self.committed_at.isoformat(),
            "redrive_jobs": list(self.redrive_jobs),
            "results_shards": ranges(self.results_shards),
            "succeeded": ranges(self.succeeded),
            "failed": sorted([k, a] for k, a in self.failed.items()),
            "parts": {p: list(keys) for p, keys in self.parts.items()},
            "part_bytes": self.part_bytes,
            "absorbed": ranges(self.absorbed),
            "usage_records": self.usage_records,
        }
        return json.dumps(record, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Generation:
        r: dict[str, Any] = json.loads(data)
        if r.get("format") != FORMAT:
            raise ValueError(f"unknown compaction record format {r.get('format')!r}")
        return cls(
            r["run_id"],
            int(r["generation"]),
            r["token"],
            datetime.fromisoformat(r["committed_at"]),
            tuple(r["redrive_jobs"]),
            from_ranges(r["results_shards"]),
            from_ranges(r["succeeded"]),
            {int(k): int(a) for k, a in r["failed"]},
            {p: tuple(keys) for p, keys in r["parts"].items()},
            {p: int(n) for p, n in r.get("part_bytes", {}).items()},
            from_ranges(r["absorbed"]),
            int(r.get("usage_records", 0)),
        )

    def holds_outcome(self, key: layout.OutcomeKey) -> bool:
        if key.status == "succeeded":
            return key.shard_id in self.succeeded
        return key.attempt <= self.failed.get(key.shard_id, 0)


def latest(store: ObjectStore, run_id: str) -> Generation | None:
    """The run's latest committed generation, or None if it was never compacted."""
    numbers = [
        n
        for obj in store.list(layout.compaction_records_prefix(run_id))
        if (n := layout.parse_compaction_record(obj.key)) is not None
    ]
    if not numbers:
        return None
    return Generation.from_json(store.get(layout.compaction_record(run_id, max(numbers))))


def commit(store: ObjectStore, generation: Generation) -> bool:
    """True if this generation is now the committed one of its number (False: another
    compactor committed that number first; its files stand and these are not read)."""
    key = layout.compaction_record(generation.run_id, generation.number)
    return store.create(key, generation.to_json())


def partition_of(key: layout.OutcomeKey) -> str:
    return f"outcomes/{key.status}"


def succeeded_shards(store: ObjectStore, run_id: str) -> frozenset[int]:
    """The run's shards with a success outcome (one listing of its succeeded outcomes)."""
    return shards_succeeded(obj.key for obj in store.list(layout.succeeded_prefix(run_id)))


def shards_succeeded(outcome_keys: Iterable[str]) -> frozenset[int]:
    """The shards of the succeeded outcomes among ``outcome_keys``."""
    return frozenset(layout.outcome_ids(list(outcome_keys))[0])


def generation_parts(table: str, gen: Generation | None) -> list[str]:
    """The parts of ``gen`` (the run's latest generation) that hold rows of ``table``."""
    return [
        key
        for partition in PARTITIONS
        if gen is not None and table_of(partition) == table
        for key in gen.parts.get(partition, ())
    ]


def unabsorbed(
    table: str,
    gen: Generation | None,
    keys: Iterable[str],
    usage: frozenset[str] | None = None,
    succeeded: frozenset[int] | None = None,
) -> list[str]:
    """The one rule: of a run's per-shard (per-invocation) ``keys`` of ``table``, those its
    latest generation ``gen`` did not absorb, read beside the generation's own parts
    (``generation_parts``). ``usage``: the usage records ``gen`` absorbed
    (``absorbed_usage``), for the table ``usage``. ``succeeded``: the run's shards with a
    success outcome (``succeeded_shards``), for the table ``results``, whose per-shard file is
    read only once its shard's success outcome is there: a worker writes its results first,
    and a shard whose outcome write failed and whose failure then became final (the run
    cancelled before Lambda's retry, its retries exhausted on S3 errors) keeps a results file
    of a shard that never succeeded."""
    if table == RESULTS and succeeded is None:
        raise ValueError("the results table needs the run's succeeded shards")
    return [
        key
        for key in keys
        if absorbs(table, gen, key, usage) is False
        and (succeeded is None or shard_of_results(key) in succeeded)
    ]


def absorbs(
    table: str, gen: Generation | None, key: str, usage: frozenset[str] | None = None
) -> bool | None:
    """Whether ``gen`` holds the rows of the per-shard file ``key`` of ``table``; None when the
    key is no such file (a temp file, a stray)."""
    if table == RESULTS:
        shard = shard_of_results(key)
        return None if shard is None else gen is not None and shard in gen.results_shards
    if table == USAGE:
        if layout.parse_usage(key) is None:
            return None
        if gen is not None and USAGE in gen.parts and usage is None:
            raise ValueError("the usage records the generation absorbed were not read")
        return key.rsplit("/", 1)[-1] in (usage or ())
    parsed = layout.parse_outcome(key)
    return None if parsed is None else gen is not None and gen.holds_outcome(parsed)


def absorbed_usage(store: ObjectStore, gen: Generation | None) -> frozenset[str]:
    """The names of the usage records ``gen`` holds (empty for a generation without usage)."""
    if gen is None or USAGE not in gen.parts:
        return frozenset()
    data = store.get(layout.compaction_usage_absorbed(gen.run_id, gen.number, gen.token))
    return frozenset(name for name in gzip.decompress(data).decode().split("\n") if name)


def write_absorbed_usage(
    store: ObjectStore, run_id: str, number: int, token: str, names: Iterable[str]
) -> None:
    """Name the usage records a generation holds, before it is committed."""
    text = "\n".join(sorted(names)).encode()
    store.put(layout.compaction_usage_absorbed(run_id, number, token), gzip.compress(text, 6))


def shard_of_results(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    if not (name.startswith("shard-") and name.endswith(".parquet")):
        return None
    digits = name.removeprefix("shard-").removesuffix(".parquet")
    return int(digits) if digits.isdigit() else None


def pointed_at(store: ObjectStore, run_id: str, number: int) -> datetime | None:
    """When the catalog was pointed at generation ``number`` (None: not yet)."""
    try:
        return datetime.fromisoformat(store.get(layout.compaction_pointed(run_id, number)).decode())
    except KeyError:
        return None


def mark_pointed(
    store: ObjectStore, run_id: str, number: int, at: datetime, again: bool = False
) -> None:
    """First pointing only: the grace period runs from the first time the catalog stopped
    pointing at what the generation replaced. ``again``: the catalog was found pointing
    elsewhere and was pointed back, so the grace period starts over (a later time only ever
    delays the deletion)."""
    key = layout.compaction_pointed(run_id, number)
    data = at.isoformat().encode()
    if again:
        store.put(key, data)
    else:
        store.create(key, data)


@dataclass(frozen=True)
class Abandoned:
    """The reconciler gave up compacting the run: for the redrive jobs it was complete with (a
    redrive after that is a new chance), at the step it was stuck at."""

    redrive_jobs: tuple[str, ...]
    step: str | None  # "compact" or "clean"; None in a record that did not keep it

    @property
    def read_from_shards(self) -> bool:
        """Whether readers use the per-shard files: given up before the generation was
        committed and pointed. Given up at the clean-up, the generation is what readers use;
        only the files it replaced stay (``replaced_keys``), never deleted."""
        return self.step != "clean"


def abandoned_for(store: ObjectStore, run_id: str) -> Abandoned | None:
    """The reconciler's record of giving up compacting the run (None: it never did)."""
    try:
        record = json.loads(store.get(layout.compaction_abandoned(run_id)))
    except KeyError:
        return None
    return Abandoned(tuple(record["redrive_jobs"]), record.get("step"))


def cleaned(store: ObjectStore, run_id: str, number: int) -> bool:
    return store.exists(layout.compaction_cleaned(run_id, number))


def cleanup_due(pointed: datetime, grace_s: int, now: datetime) -> bool:
    """Whether a query that started before the catalog moved can no longer be running."""
    return now - pointed >= timedelta(seconds=grace_s)


def replaced_keys(store: ObjectStore, gen: Generation) -> list[str]:
    """What generation ``gen`` made obsolete: the per-shard results files it absorbed, and every
    part (and list of absorbed usage records) of the run's earlier generations or of a
    compactor that never committed (crashed, or lost the race) up to ``gen``'s number. Never a
    part of a later generation (one being written after a redrive), never a per-shard outcome
    file or usage record (see the module docstring)."""
    stale = [
        obj.key
        for prefix in layout.compacted_run_prefixes(gen.run_id).values()
        for obj in store.list(prefix)
        if (found := layout.parse_compacted_part(obj.key)) is not None
        and found[0] <= gen.number
        and found[1] != gen.token
    ]
    lists = [
        obj.key
        for obj in store.list(layout.compaction_records_prefix(gen.run_id))
        if (found := layout.parse_compaction_usage_absorbed(obj.key)) is not None
        and found[0] <= gen.number
        and found[1] != gen.token
    ]
    return [*(layout.results(gen.run_id, k) for k in sorted(gen.absorbed)), *stale, *lists]
