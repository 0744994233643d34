"""The one key builder: every path of the storage layout is formatted and parsed here.

Keys are relative to the store's root (an S3 bucket/prefix or the local data root). The
``runs/<run_id>/`` area also holds the small bookkeeping records that let status, dispatch and
idempotency work from listings alone; ``outcomes/`` and ``results/`` follow the contract exactly.
"""

from __future__ import annotations

import functools
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Literal

from chalicelib.model import ids

# A data root on S3, as catalogs and query engines are given it: s3://bucket[/prefix].
S3_ROOT_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._=-]+)*$")
Status = Literal["succeeded", "failed"]


def _run(run_id: str) -> str:
    if not ids.is_run_id(run_id):
        raise ValueError(f"malformed run id {run_id!r}")
    return run_id


def run_prefix(run_id: str) -> str:
    return f"runs/{_run(run_id)}/"


def manifest(run_id: str) -> str:
    return f"{run_prefix(run_id)}manifest.json"


def success_locks_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}success/"


def success_lock(run_id: str, shard_id: int) -> str:
    """Claimed by conditional create; holds the attempt number of the shard's one success, and
    until when the invocation writing it may still be at work (``OutcomeWriter``)."""
    return f"{success_locks_prefix(run_id)}shard-{shard_id:06d}.json"


_SUCCESS_LOCK_RE = re.compile(r"/success/shard-(?P<shard>\d{6,})\.json$")


def parse_success_lock(key: str) -> int | None:
    """The shard id of a success lock's key."""
    found = _SUCCESS_LOCK_RE.search(key)
    return int(found["shard"]) if found else None


def retry_markers_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}retrying/"


def retry_marker(run_id: str, shard_id: int, attempt: int) -> str:
    """Written before a retryable failure outcome: that attempt is not final."""
    return f"{retry_markers_prefix(run_id)}shard-{shard_id:06d}-attempt-{attempt}"


def dispatch_records_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}dispatch/"


def dispatch_prefix(run_id: str, job: str) -> str:
    if not ids.is_job(job):
        raise ValueError(f"malformed dispatch job {job!r}")
    return f"{dispatch_records_prefix(run_id)}{job}/"


def dispatch_record(run_id: str, job: str, lo: int, hi: int, dispatched: int, failed: int) -> str:
    """One per leaf chunk; the counts live in the key so status needs only a listing."""
    return f"{dispatch_prefix(run_id, job)}{lo:06d}-{hi:06d}-ok-{dispatched}-failed-{failed}"


def redrive_lists_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}redrives/"


def redrive_list(run_id: str, job: str) -> str:
    return f"{redrive_lists_prefix(run_id)}{job}.json"


def parse_redrive_list(key: str) -> str | None:
    """The job name of a redrive list's key, or None for any other key."""
    folder, _, name = key.rpartition("/")
    if not folder.endswith("/redrives") or not name.endswith(".json"):
        return None
    job = name.removesuffix(".json")
    return job if ids.is_job(job) else None


def summary(run_id: str) -> str:
    """Written once the run is complete: its status without listing (``storage.summary``)."""
    return f"{run_prefix(run_id)}summary.json"


def cancel_marker(run_id: str) -> str:
    """Created once (conditional create) when a run is cancelled; holds the reason."""
    return f"{run_prefix(run_id)}cancel.json"


def registered_marker(run_id: str) -> str:
    """Written once the run's Glue partitions are registered: status's ``queryable``."""
    return f"{run_prefix(run_id)}registered"


def closed_claim(run_id: str, shard_id: int, after_attempt: int) -> str:
    """Claimed by conditional create before the reconciler closes a shard (LOST/CANCELLED), so
    concurrent reconcilers write one final outcome, not two. Only the reconciler uses it: a
    late delivery is refused by the final outcome itself (``OutcomeWriter.decided``)."""
    return f"{run_prefix(run_id)}closed/shard-{shard_id:06d}-after-{after_attempt}"


def pacing_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}pacing/"


def pacing_state(run_id: str, job: str) -> str:
    """A paced job's cursor (JSON: step, cursor, hi, at), rewritten by its pacer at every
    hand-out and poll; the reconciler resumes a pacer whose state has gone quiet."""
    return f"{pacing_prefix(run_id)}{job}.json"


def parse_pacing_state(key: str, run_id: str) -> str | None:
    """The job of a pacing state key, or None (a step claim, or not under the run's folder)."""
    job = key.removeprefix(pacing_prefix(run_id)).removesuffix(".json")
    return job if key.endswith(".json") and ids.is_job(job) else None


def pacing_claim(run_id: str, job: str, step: int) -> str:
    """Taken by conditional create when a pacer starts ``step``: a duplicate delivery of the
    same step finds it and stops."""
    return f"{pacing_prefix(run_id)}{job}/step-{step:06d}"


AUTO_REDRIVE = "auto-"
MANUAL_REDRIVE = "redrive-"


def auto_redrive_job(number: int) -> str:
    """The job name of the reconciler's ``number``-th re-dispatch of a stalled run."""
    return f"{AUTO_REDRIVE}{number}"


def manual_redrive_job(number: int) -> str:
    """The job name of the ``number``-th ``POST /sweeps/{id}/redrive``."""
    return f"{MANUAL_REDRIVE}{number}"


def reuse_plan(run_id: str) -> str:
    """A reusing run's plan summary (JSON): how many points each shard copies. Written last,
    once per run, by the root dispatcher; a shard reads its plan only once this exists."""
    return f"{run_prefix(run_id)}reuse/plan.json"


def reuse_planning(run_id: str) -> str:
    """Made (a token of its own) by the root dispatcher before it plans a reusing run: one that
    finds it and no ``reuse_plan`` knows an earlier one died planning (out of memory or time,
    which no handler catches) and writes an empty plan instead of planning again."""
    return f"{run_prefix(run_id)}reuse/planning"


def reuse_shard_plan(run_id: str, shard_id: int) -> str:
    """The points shard ``shard_id`` of a reusing run copies (Parquet, tables.REUSE_PLAN)."""
    return f"{run_prefix(run_id)}reuse/shard-{shard_id:06d}.parquet"


def usage_prefix(run_id: str) -> str:
    """A run's usage records: the table ``usage`` (one file per invocation the run caused)."""
    return f"{table_root('usage')}run_id={_run(run_id)}/"


def function_usage_prefix(run_id: str, function: str) -> str:
    """One function's usage records of a run (``usage_record`` starts with the function)."""
    return f"{usage_prefix(run_id)}{function}~"


@dataclass(frozen=True)
class Usage:
    """One function invocation a run caused, as billed: all of it is in the key, so a run's
    cost needs only a listing (the file holds the same as a row, for the ``run_cost`` query).
    ``bound``: the duration is an upper bound (the timeout of a crashed attempt), not a
    measurement."""

    function: str
    what: str
    memory_mb: int
    duration_ms: int
    s3_reads: int
    s3_writes: int
    bound: bool = False

    @property
    def kind(self) -> UsageKind:
        """What a sum of records needs of this one (``usage_counts``)."""
        return (
            self.function,
            self.memory_mb,
            self.duration_ms,
            self.s3_reads,
            self.s3_writes,
            self.bound,
        )


# How a shard's invocation ended, in a worker's ``what``: ``raised`` is a try that ended in an
# unhandled error (the worker's own record), ``crashed`` a try the failure recorder reports.
_SHARD_WHAT_RE = re.compile(r"^shard-(?P<shard>\d+)-(?P<ended>[a-z]+)$")


def shard_what(shard_id: int, ended: str) -> str:
    return f"shard-{shard_id}-{ended}"


def what_shard(what: str) -> tuple[int, str] | None:
    """(shard id, how it ended) of a worker record's ``what``; None for other records."""
    m = _SHARD_WHAT_RE.match(what)
    return (int(m["shard"]), m["ended"]) if m else None


def usage_record(run_id: str, usage: Usage, unique: str) -> str:
    u = usage
    return (
        f"{usage_prefix(run_id)}{u.function}~{u.what}~{u.memory_mb}~{u.duration_ms}~"
        f"{u.s3_reads}~{u.s3_writes}~{'bound' if u.bound else 'measured'}~{unique}.json"
    )


_USAGE_RE = re.compile(
    r"/(?P<fn>[a-z_]+)~(?P<what>[a-z0-9-]+)~(?P<mem>\d+)~(?P<ms>\d+)~(?P<r>\d+)~"
    r"(?P<w>\d+)~(?P<kind>bound|measured)~[A-Za-z0-9-]+\.json$"
)


def parse_usage(key: str) -> Usage | None:
    fields = usage_fields(key)
    return None if fields is None else Usage(*fields)


UsageFields = tuple[str, str, int, int, int, int, bool]


def usage_fields(key: str) -> UsageFields | None:
    """``Usage``'s fields of a usage record's key, in order, without building the record (a
    running run's cost reads 100,000 of them)."""
    # The pattern starts at a "/" and holds no other, so it can only match at the last one.
    m = _USAGE_RE.match(key, max(0, key.rfind("/")))
    if m is None:
        return None
    fn, what, mem, ms, reads, writes, kind = m.groups()
    return fn, what, int(mem), int(ms), int(reads), int(writes), kind == "bound"


# A usage record's kind (``usage_counts``): function, memory_mb, duration_ms, s3_reads,
# s3_writes, bound.
UsageKind = tuple[str, int, int, int, int, bool]


_UNSEEN = object()


class ParsedKeys[T]:
    """Keys parsed, each kept: a running run's status reads the same 100,000 keys on every
    poll but the few hundred that landed since, and looking a key up costs a fraction of
    parsing it (status of a running 100,000-shard run on a folder: 0.25 s of CPU a poll,
    against 0.40 when every key was parsed each time). The keys not kept yet are parsed
    together by ``parse`` (one regex pass over them, ``_lines``: the first poll parses them
    all). Past ``most`` keys kept, it starts afresh."""

    def __init__(self, parse: Callable[[list[str]], list[T | None]], most: int = 400_000) -> None:
        self.parse = parse
        self.most = most
        self._kept: dict[str, T | None] = {}

    def __call__(self, keys: Sequence[str]) -> list[T | None]:
        kept = self._kept  # another thread may start afresh meanwhile: this call keeps its own
        found: list[Any] = list(map(kept.get, keys, repeat(_UNSEEN)))
        if _UNSEEN not in found:
            return found
        new = [at for at, parsed in enumerate(found) if parsed is _UNSEEN]
        if len(kept) + len(new) > self.most:  # afresh, with this call's keys
            kept = self._kept = {k: f for k, f in zip(keys, found, strict=True) if f is not _UNSEEN}
        for at, parsed in zip(new, self.parse([keys[at] for at in new]), strict=True):
            found[at] = kept[keys[at]] = parsed
        return found


def _line_pattern(key: re.Pattern[str], lazy: bool) -> re.Pattern[str]:
    """A key's pattern (ending ``$``) as ``_lines`` reads it: found anywhere in a line, the
    first place it fits (``lazy``: as ``search``) or the last (as a match at the last "/"),
    else the line is matched empty, so every line gives one tuple of ``key``'s groups."""
    prefix = "[^\n]*?" if lazy else "[^\n]*"
    return re.compile(rf"^(?:{prefix}{key.pattern.removesuffix('$')}|[^\n]*)$", re.M)


def _lines(pattern: re.Pattern[str], keys: list[str]) -> list[Any]:
    """``pattern``'s groups on each key, in order (``_line_pattern``): one regex pass over the
    keys one a line, a key that is not of the kind giving empty groups. A key with a line
    break is not one the layout builds: it is taken as an empty line."""
    text = "\n".join("" if "\n" in key else key for key in keys)
    return pattern.findall(text)


# ``_USAGE_RE`` for ``_lines``: function, what, memory, duration, reads, writes, kind.
_USAGE_LINES = _line_pattern(_USAGE_RE, lazy=False)


@functools.cache
def _usages(apart: tuple[str, ...]) -> ParsedKeys[UsageKind | Usage]:
    """Usage keys parsed for ``usage_counts``: a record's kind (one object for each kind:
    100,000 records kept are of a few hundred), or the whole record for a shard's try that
    ends in one of ``apart``."""
    kinds: dict[UsageKind, UsageKind] = {}

    def parse(keys: list[str]) -> list[UsageKind | Usage | None]:
        out: list[UsageKind | Usage | None] = []
        for function, what, mem, ms, reads, writes, bound in _lines(_USAGE_LINES, keys):
            if not function:
                out.append(None)
                continue
            fields = (function, int(mem), int(ms), int(reads), int(writes), bound == "bound")
            if what.endswith(apart) and what_shard(what) is not None:
                out.append(Usage(function, what, *fields[1:]))
            else:
                out.append(kinds.setdefault(fields, fields))
        return out

    return ParsedKeys(parse)


def usage_counts(
    keys: Sequence[str], apart: tuple[str, ...]
) -> tuple[Counter[UsageKind], list[Usage]]:
    """The usage records among ``keys``, as a sum needs them: how many there are of each kind
    (function, memory_mb, duration_ms, s3_reads, s3_writes, bound), leaving out a shard's
    tries that end in one of ``apart`` (``what_shard``), which come back whole. The same as
    ``parse_usage`` of every key, each key parsed once in the process (``ParsedKeys``) and
    the parses counted alike at once (a running run's 100,000 records are of a few hundred
    kinds)."""
    counts: Counter[UsageKind] = Counter()
    tries: list[Usage] = []
    for found, n in Counter(_usages(apart)(keys)).items():
        if isinstance(found, Usage):
            tries += [found] * n
        elif found is not None:
            counts[found] += n
    return counts, tries


REUSE_INDEX = "reuse/"


def reuse_family(family: str) -> str:
    """The reuse index of one (simulation, version, seed): ``family`` is a hex digest of it."""
    if not re.fullmatch(r"[0-9a-f]{32}", family):
        raise ValueError(f"malformed reuse family {family!r}")
    return f"{REUSE_INDEX}{family}/"


def reuse_pending(family: str, run_id: str, job: str) -> str:
    """A job of a run of the family whose evaluated points are not in the merged index yet:
    made (empty) by the job's root dispatcher before any of its workers is invoked, deleted by
    the merge that folded the run's results in. Until then plans read those results."""
    if not re.fullmatch(r"[a-z0-9-]{1,64}", job):
        raise ValueError(f"malformed job name {job!r}")
    return f"{reuse_pending_prefix(family, run_id)}{job}"


def reuse_pending_prefix(family: str, run_id: str = "") -> str:
    """The family's pending markers (``reuse_pending``), or one run's with ``run_id``."""
    folder = f"{reuse_family(family)}pending/"
    return f"{folder}run_id={_run(run_id)}/" if run_id else folder


_REUSE_PENDING_RE = re.compile(r"/pending/run_id=(?P<run_id>[A-Za-z0-9-]{8,64})/[a-z0-9-]{1,64}$")


def parse_reuse_pending(key: str) -> str | None:
    """The run a pending marker names, or None for any other key."""
    m = _REUSE_PENDING_RE.search(key)
    return m["run_id"] if m and key.startswith(REUSE_INDEX) else None


def reuse_merged_prefix(family: str) -> str:
    """The family's partition of the table ``reuse`` (its merged index)."""
    reuse_family(family)  # checks the name
    return f"{table_root('reuse')}family={family}/"


def reuse_merged(family: str, number: int) -> str:
    """Generation ``number`` of a family's merged index: every distinct point its merged runs
    evaluated, once each (tables.REUSE_MERGED), made where a run's compaction runs."""
    return f"{reuse_merged_prefix(family)}gen-{number:06d}.parquet"


_REUSE_MERGED_RE = re.compile(r"^reuse/merged/family=[0-9a-f]{32}/gen-(?P<n>\d{6,})\.parquet$")


def parse_reuse_merged(key: str) -> int | None:
    m = _REUSE_MERGED_RE.match(key)
    return int(m["n"]) if m else None


PROBES = "runs/_probe/"  # never written: the probe HEADs a random key here and expects 404


def probe_key(token: str) -> str:
    """A key nothing ever writes, under ``runs/``, which every function may read
    (deploy/policies.py): the probe's HEAD of it answers 404 with the caller's own grants."""
    if not token or not all(c in string.hexdigits for c in token):
        raise ValueError(f"a probe token is hex digits, got {token!r}")
    return f"{PROBES}{token}"


OPEN_RUNS = "runs/_index/open/"  # "_" is in no run id: never a run folder
RUN_INDEX = "runs/_index/all/"


def open_run(run_id: str) -> str:
    """Present while a run may still need the reconciler; removed once it is complete."""
    return f"{OPEN_RUNS}{_run(run_id)}"


def parse_open_run(key: str) -> str | None:
    run_id = key.removeprefix(OPEN_RUNS)
    return run_id if key.startswith(OPEN_RUNS) and ids.is_run_id(run_id) else None


# Run ids sort oldest first (they start with the creation time); the index wants newest first,
# so its keys start with the id's characters mirrored (0<->9, A<->Z, a<->z).
_ALNUM = (string.digits, string.ascii_uppercase, string.ascii_lowercase)
_MIRROR = str.maketrans("".join(_ALNUM), "".join(part[::-1] for part in _ALNUM))


@dataclass(frozen=True)
class RunIndexEntry:
    """What GET /sweeps shows of a run without reading its manifest; all of it is in the key.

    ``~`` separates the fields: no run id, simulation name or label may contain it."""

    run_id: str
    shard_count: int
    simulation: str
    label: str | None


def run_index(entry: RunIndexEntry) -> str:
    head = run_index_after(entry.run_id)[:-1]
    return f"{head}{entry.shard_count}~{entry.simulation}~{entry.label or ''}"


def run_index_after(run_id: str) -> str:
    """A key that sorts after ``run_id``'s index entry and before the next older run's: where
    the next page starts."""
    return f"{RUN_INDEX}{_run(run_id).translate(_MIRROR)}~{run_id}~~"


_INDEX_RE = re.compile(
    rf"^runs/_index/all/[A-Za-z0-9-]+~(?P<run_id>{ids.RUN_ID})~(?P<shards>\d+)~"
    r"(?P<sim>[a-z0-9_]+)~(?P<label>[A-Za-z0-9._-]{0,64})$"
)


def parse_run_index(key: str) -> RunIndexEntry | None:
    m = _INDEX_RE.match(key)
    if m is None:
        return None
    return RunIndexEntry(m["run_id"], int(m["shards"]), m["sim"], m["label"] or None)


def table_root(table: str) -> str:
    """The folder under the data root that holds one table's files, named after the table
    (``reuse``: the merged index, ``reuse/merged/``)."""
    if table == "reuse":  # the merged index; beside the per-shard files (not a table)
        return f"{REUSE_INDEX}merged/"
    if table not in ("outcomes", "results", "usage"):
        raise ValueError(f"no table {table!r}")
    return f"{table}/"


def run_table_prefix(table: str, run_id: str) -> str:
    """The folder of one run's per-shard (per-invocation) files of ``table``."""
    return f"{table_root(table)}run_id={_run(run_id)}/"


def outcomes_prefix(run_id: str) -> str:
    return f"{table_root('outcomes')}run_id={_run(run_id)}/"


def succeeded_prefix(run_id: str) -> str:
    """The folder of one run's success outcomes (every dt)."""
    return f"{outcomes_prefix(run_id)}status=succeeded/"


def outcomes_partition(run_id: str, status: Status, dt: str) -> str:
    """The folder of one (run, status, dt) partition of the outcomes table."""
    return f"{outcomes_prefix(run_id)}status={status}/dt={dt}/"


def outcome(run_id: str, status: Status, dt: str, shard_id: int, attempt: int) -> str:
    return f"{shard_outcomes_prefix(run_id, status, dt, shard_id)}{attempt}.parquet"


def shard_outcomes_prefix(run_id: str, status: Status, dt: str, shard_id: int) -> str:
    return f"{outcomes_partition(run_id, status, dt)}shard-{shard_id:06d}-attempt-"


COMPACTED = "compacted/"


def compaction_records_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}compaction/"


def compaction_record(run_id: str, generation: int) -> str:
    """The commit of a run's compaction generation (JSON, ``storage.compaction``): created once
    (conditional create) after its files are all written, so it names complete files only."""
    return f"{compaction_records_prefix(run_id)}gen-{generation:06d}.json"


def compaction_cleaned(run_id: str, generation: int) -> str:
    """Written once the files generation ``generation`` replaced are deleted (after the grace
    period): the run needs the reconciler no more."""
    return f"{compaction_records_prefix(run_id)}gen-{generation:06d}.cleaned"


def compaction_abandoned(run_id: str) -> str:
    """Written by the reconciler once it gave up compacting the run (JSON: tries, and the
    redrive jobs it was for): the run is read from its per-shard files."""
    return f"{compaction_records_prefix(run_id)}abandoned.json"


def compaction_pointed(run_id: str, generation: int) -> str:
    """Written once the catalog points at generation ``generation`` (holds the time): the
    grace period before deleting what it replaced runs from then."""
    return f"{compaction_records_prefix(run_id)}gen-{generation:06d}.pointed"


_GENERATION_RE = re.compile(r"/compaction/gen-(?P<gen>\d{6,})\.json$")


def parse_compaction_record(key: str) -> int | None:
    m = _GENERATION_RE.search(key)
    return int(m["gen"]) if m else None


def compacted_folder(
    table: str, run_id: str, generation: int, token: str, status: Status | None = None, dt: str = ""
) -> str:
    """Where one compaction generation of a run's partition is written: outside the table's
    own folders (``outcomes/``, ``results/``), so no partition location holds another's files,
    and with a token per compactor, so two compactors racing never write one key. The
    ``gen-…`` folder has no ``=``: engines that read hive paths see only the table's partition
    columns in it."""
    if not re.fullmatch(r"[0-9a-f]{8,32}", token):
        raise ValueError(f"malformed compaction token {token!r}")
    where = f"gen-{generation:06d}-{token}/"
    if table in ("results", "usage"):
        return f"{COMPACTED}{table}/run_id={_run(run_id)}/{where}"
    if table == "outcomes" and status is not None and ids.is_dt(dt):
        return f"{COMPACTED}outcomes/run_id={_run(run_id)}/status={status}/dt={dt}/{where}"
    raise ValueError(f"no compacted folder for {table!r} {status!r} {dt!r}")


_COMPACTED_RE = re.compile(
    r"/gen-(?P<gen>\d{6,})-(?P<token>[0-9a-f]{8,32})/part-\d{5,}\.(?:parquet|json\.gz)$"
)


def parse_compacted_part(key: str) -> tuple[int, str] | None:
    """(generation, token) of a compacted part's key, or None for any other key."""
    m = _COMPACTED_RE.search(key)
    return (int(m["gen"]), m["token"]) if m and key.startswith(COMPACTED) else None


def compacted_part(folder: str, number: int, suffix: str = ".parquet") -> str:
    """A part of a compacted partition: Parquet, or gzipped JSON Lines (``.json.gz``) for the
    table ``usage`` (``tables.FORMATS``)."""
    if suffix not in (".parquet", ".json.gz"):
        raise ValueError(f"no compacted part of kind {suffix!r}")
    return f"{folder}part-{number:05d}{suffix}"


# The tables a run's compaction rewrites (docs/analytics.md "Compaction"): every table with a
# file per shard or per invocation.
COMPACTED_TABLES = ("outcomes", "results", "usage")


def compacted_run_prefixes(run_id: str) -> dict[str, str]:
    """The folders holding every compaction generation of a run, per table."""
    return {table: f"{COMPACTED}{table}/run_id={_run(run_id)}/" for table in COMPACTED_TABLES}


def compaction_usage_absorbed(run_id: str, generation: int, token: str) -> str:
    """The usage records a generation absorbed (their names under ``usage_prefix``, one a line,
    gzipped), written before its commit. A usage record's name is unique and random, so the set
    cannot be stored as ranges; kept out of the commit record, which every query reads."""
    if not re.fullmatch(r"[0-9a-f]{8,32}", token):
        raise ValueError(f"malformed compaction token {token!r}")
    return f"{compaction_records_prefix(run_id)}gen-{generation:06d}-{token}.usage.gz"


_USAGE_ABSORBED_RE = re.compile(
    r"/compaction/gen-(?P<gen>\d{6,})-(?P<token>[0-9a-f]{8,32})\.usage\.gz$"
)


def parse_compaction_usage_absorbed(key: str) -> tuple[int, str] | None:
    """(generation, token) of a ``compaction_usage_absorbed`` key, or None."""
    m = _USAGE_ABSORBED_RE.search(key)
    return (int(m["gen"]), m["token"]) if m else None


def results_prefix(run_id: str) -> str:
    return f"{table_root('results')}run_id={_run(run_id)}/"


def results(run_id: str, shard_id: int) -> str:
    return f"{results_prefix(run_id)}shard-{shard_id:06d}.parquet"


@dataclass(frozen=True)
class OutcomeKey:
    run_id: str
    status: Status
    dt: str
    shard_id: int
    attempt: int


_OUTCOME_RE = re.compile(
    r"outcomes/run_id=(?P<run_id>[A-Za-z0-9-]+)/status=(?P<status>succeeded|failed)/"
    r"dt=(?P<dt>\d{4}-\d{2}-\d{2})/shard-(?P<shard>\d{6,})-attempt-(?P<attempt>\d+)\.parquet$"
)
_RETRY_RE = re.compile(r"retrying/shard-(?P<shard>\d{6,})-attempt-(?P<attempt>\d+)$")
_DISPATCH_RE = re.compile(
    r"dispatch/(?P<job>[a-z0-9-]+)/(?P<lo>\d+)-(?P<hi>\d+)-ok-(?P<ok>\d+)-failed-(?P<failed>\d+)$"
)


def _outcome_match(key: str) -> re.Match[str] | None:
    """``_OUTCOME_RE.search``, tried first where a key relative to the data root starts: the
    same answer, without scanning (status parses 100,000 of them)."""
    return _OUTCOME_RE.match(key) or _OUTCOME_RE.search(key)


def parse_outcome(key: str) -> OutcomeKey | None:
    m = _outcome_match(key)
    if m is None:
        return None
    run_id, found, dt, shard, attempt = m.groups()
    status: Status = "succeeded" if found == "succeeded" else "failed"
    return OutcomeKey(run_id, status, dt, int(shard), int(attempt))


# ``_OUTCOME_RE`` for ``_lines``: run id, status, date, shard id, attempt.
_OUTCOME_LINES = _line_pattern(_OUTCOME_RE, lazy=True)


def _outcomes_of(keys: list[str]) -> list[tuple[bool, int, int] | None]:
    """Outcome keys' (succeeded, shard id, attempt)."""
    return [
        (status == "succeeded", int(shard), int(attempt)) if status else None
        for _, status, _, shard, attempt in _lines(_OUTCOME_LINES, keys)
    ]


_OUTCOMES = ParsedKeys(_outcomes_of)


def outcome_ids(keys: Sequence[str]) -> tuple[list[int], list[tuple[int, int]]]:
    """The outcome keys among ``keys``: the shard id of each success, and (shard id, attempt)
    of each failure; ``parse_outcome`` of every key, each key parsed once in the process
    (``ParsedKeys``)."""
    found = [p for p in _OUTCOMES(keys) if p is not None]
    succeeded = [shard for ok, shard, _ in found if ok]
    failed = [(shard, attempt) for ok, shard, attempt in found if not ok]
    return succeeded, failed


def parse_retry_marker(key: str) -> tuple[int, int] | None:
    m = _RETRY_RE.search(key)
    return (int(m["shard"]), int(m["attempt"])) if m else None


@dataclass(frozen=True)
class DispatchRecord:
    job: str
    lo: int
    hi: int
    dispatched: int
    failed: int


def parse_dispatch_record(key: str) -> DispatchRecord | None:
    m = _DISPATCH_RE.search(key)
    if m is None:
        return None
    return DispatchRecord(m["job"], int(m["lo"]), int(m["hi"]), int(m["ok"]), int(m["failed"]))
