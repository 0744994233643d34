"""Typed settings, read once from the environment that each stage sets in .chalice/config.json.

A missing or malformed variable fails at start with its name, rather than as a confusing
error deep inside the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# A task carries the canonical request; this cap keeps it inside Lambda's 1 MB async limit
# with room for the task's own fields.
MAX_BODY_LIMIT = 768 * 1024


class SettingsError(Exception):
    pass


def setting(
    env: str,
    default: Any,
    meaning: str,
    *,
    low: int = 1,
    local_default: Any = None,
    shown: str | None = None,
) -> Any:
    """One row of the settings table: its variable, default, lower bound (integers) and meaning.

    ``local_default`` replaces the default on the ``local`` backend (its workers have no timeout
    and no retry delays); ``shown`` is the default as docs/configuration.md prints it, where the
    value depends on the machine. The table is read in one loop (``Settings.from_env``) and
    rendered into docs/configuration.md (``deploy.settings_doc``)."""
    return field(
        default=default,
        metadata={
            "env": env,
            "meaning": meaning,
            "low": low,
            "local_default": local_default,
            "shown": shown,
        },
    )


@dataclass(frozen=True)
class Settings:
    stage: str = setting(
        "SWEEP_STAGE",
        "local",
        "stage name, recorded in manifests; for `sweep estimate` (and `submit --estimate`), the "
        "stage whose function sizes it prices",
    )
    backend: Literal["local", "aws"] = setting(
        "SWEEP_BACKEND", "local", "`local` (folder + process pool) or `aws` (S3 + Lambda)"
    )
    max_points: int = setting(
        "SWEEP_MAX_POINTS",
        100_000_000,
        "most points a sweep may have (400 beyond): 1,000 for each of 100,000 shards. Bounded by "
        "what a run stores and costs, not by the service: a worker's memory is flat in its shard "
        "size (results stream to Parquet in row groups)",
    )
    max_shards: int = setting(
        "SWEEP_MAX_SHARDS",
        100_000,
        "most shards a sweep may have (400 beyond). The dispatcher tree (3 levels at 100,000), "
        "the reconciler and status hold at that size: a complete run's status is constant work, "
        "a running one's lists its keys in ranges of 999 shards at once (docs/architecture.md)",
    )
    max_body_bytes: int = setting(
        "SWEEP_MAX_BODY_BYTES",
        256 * 1024,
        f"largest request body (413 beyond); at most {MAX_BODY_LIMIT:,}, so a task (which "
        "carries the request) stays below Lambda's 1 MB async limit",
    )
    allow_fault_injection: bool = setting(
        "SWEEP_FAULT_INJECTION",
        False,
        "whether `fail_shards` and `crash_shards` are honoured (else 400); a deployed stage "
        "honours them only where its config says `true` (dev does), so a new stage does not",
        local_default=True,
    )
    local_root: Path = setting(
        "SWEEP_LOCAL_ROOT",
        PROJECT_ROOT / ".sweep-data",
        "local data root; set it in the environment that starts `chalice local` (never in "
        "config.json, so yours always wins)",
        shown="`.sweep-data/` at the project root",
    )
    local_processes: int = setting(
        "SWEEP_LOCAL_PROCESSES",
        max(os.cpu_count() or 1, 1),
        "local worker processes",
        shown="cores",
    )
    local_warm_pool: bool = setting(
        "SWEEP_LOCAL_WARM_POOL",
        False,
        "start the worker processes, with the worker imported, before the local stage "
        "serves rather than at its first shard (`true` in the local stage's config)",
    )
    bucket: str | None = setting(
        "SWEEP_BUCKET",
        None,
        "bucket of runs, outcomes and results (required on `aws`); `.chalice/config.json` holds "
        "the placeholder `SET_BY_DEPLOY`, replaced at deploy time by the stack's bucket "
        "(`deploy/naming.py` derives every name; docs/runbook.md)",
    )
    prefix: str = setting("SWEEP_PREFIX", "", "key prefix inside the bucket")
    worker_function: str | None = setting(
        "SWEEP_WORKER_FUNCTION",
        None,
        "worker function name (required on `aws`; derived by `deploy/naming.py`)",
    )
    dispatcher_function: str | None = setting(
        "SWEEP_DISPATCHER_FUNCTION",
        None,
        "dispatcher function name (required on `aws`; derived by `deploy/naming.py`)",
    )
    compactor_function: str | None = setting(
        "SWEEP_COMPACTOR_FUNCTION",
        None,
        "compactor function name (derived by `deploy/naming.py`); unset on `aws`: complete runs "
        "are not compacted, and every engine reads their per-shard files",
    )
    glue_database: str | None = setting(
        "SWEEP_GLUE_DATABASE",
        None,
        "Glue database whose tables get each run's partitions; unset: no registration",
    )
    athena_workgroup: str | None = setting(
        "SWEEP_ATHENA_WORKGROUP",
        None,
        "workgroup of the `sweep` command's Athena engine (its default for a deployed stage)",
    )
    dispatch_threads: int = setting(
        "SWEEP_DISPATCH_THREADS",
        32,
        "invoke threads per leaf dispatcher on a deployed stage (the local stage uses one)",
    )
    dispatch_leaf_shards: int = setting(
        "SWEEP_DISPATCH_LEAF_SHARDS", 1000, "most shards one dispatcher invokes itself"
    )
    dispatch_width: int = setting(
        "SWEEP_DISPATCH_WIDTH", 10, "children per split dispatcher", low=2
    )
    dispatch_max_attempts: int = setting(
        "SWEEP_DISPATCH_MAX_ATTEMPTS",
        8,
        "Invoke attempts per shard before `DISPATCH_FAILED` (the API handler uses at most 4)",
    )
    dispatch_backoff_ms: int = setting(
        "SWEEP_DISPATCH_BACKOFF_MS",
        50,
        "base of the capped (5 s) exponential backoff with full jitter",
        low=0,
    )
    dispatch_not_ready_s: int = setting(
        "SWEEP_DISPATCH_NOT_READY_S",
        300,
        "how long a dispatcher leaf keeps asking a function Lambda answers is not ready yet (an "
        "inactive function being restored, one being updated) before `DISPATCH_FAILED`",
        low=0,
    )
    worker_max_attempts: int = setting(
        "SWEEP_WORKER_MAX_ATTEMPTS",
        3,
        "local stage: attempts per worker event (Lambda's own is 1 + 2 retries)",
    )
    deadline_margin_ms: int = setting(
        "SWEEP_DEADLINE_MARGIN_MS",
        10_000,
        "time a worker keeps in hand to record `DEADLINE_EXCEEDED`",
        low=0,
    )
    # The reconciler (contract: "Every run finishes"). The local stage's defaults are short: its
    # workers have no timeout and no retry delays. They are defaults here, not values in
    # .chalice/config.json, because chalice local lets the config override the environment.
    stall_timeout_s: int = setting(
        "SWEEP_STALL_TIMEOUT_S",
        22_800,
        "a run with no progress this long has its shards without an outcome re-dispatched by "
        "the reconciler (then closed as `LOST`); on a deployed stage it must be at least the "
        "worker's maximum event age plus its timeout (6 h + 900 s), so that no event of a "
        "closed shard can still arrive (deploy/timeline.py checks it at build time)",
        local_default=120,
    )
    worker_reserved_concurrency: int = setting(
        "SWEEP_WORKER_RESERVED_CONCURRENCY",
        0,
        "the worker's reserved concurrency, set on the function at deploy time (0: unset, the "
        "default). A reservation keeps one large sweep from taking the whole account's "
        "concurrency from the API; Lambda requires 100 unreserved, so a new account's low "
        "quota could make a default reservation fail the first deploy (docs/runbook.md)",
        low=0,
    )
    # Pacing (chalicelib/fanout/pacing.py): a run never has more worker events outstanding than
    # the worker can run at once, times this factor, so none waits near its maximum age.
    pacing_factor: int = setting(
        "SWEEP_PACING_FACTOR",
        1,
        "a paced run keeps at most this many times the worker's concurrency of its shards "
        "handed out and unfinished; a run with no more shards than that is not paced. 1: no "
        "event of a run ever waits for another of the same run, whatever order Lambda serves "
        "throttled events in; deploy/timeline.py checks that factor x (retries + 1) x the "
        "worker's timeout + Lambda's retry interval stays below the maximum event age",
    )
    pacing_poll_ms: int = setting(
        "SWEEP_PACING_POLL_MS",
        5_000,
        "how often a paced dispatcher re-reads its run's progress (one listing) while its "
        "window is full",
        local_default=200,
    )
    pacing_max_wait_s: int = setting(
        "SWEEP_PACING_MAX_WAIT_S",
        600,
        "longest one dispatcher invocation paces (it also stops a margin before its remaining "
        "time) before it hands the rest of the job to a continuation event (0: hand out what "
        "the window allows, then continue at once: for tests that run events in one thread; on "
        "a stage it would make continuations follow each other while the window is full)",
        local_default=30,
        low=0,
    )
    pacing_resume_s: int = setting(
        "SWEEP_PACING_RESUME_S",
        1_800,
        "a paced job whose state has not moved this long (its continuation event was lost, or "
        "its dispatcher died) is resumed by the reconciler from its cursor; at least twice the "
        "dispatcher's timeout, so a live pacer is never doubled (deploy/timeline.py checks it)",
        local_default=30,
    )
    worker_concurrency_fallback: int = setting(
        "SWEEP_WORKER_CONCURRENCY_FALLBACK",
        100,
        "the worker concurrency pacing assumes on a deployed stage when neither "
        "`SWEEP_WORKER_RESERVED_CONCURRENCY` is set nor Lambda's `GetAccountSettings` answers "
        "(its `UnreservedConcurrentExecutions` is used otherwise); either is a pool the "
        "stage's functions share, so a run's workers take it less a headroom "
        "(`invoking.shared_share`: a tenth, at least ten or half of a small pool)",
    )
    local_max_event_age_s: int = setting(
        "SWEEP_LOCAL_MAX_EVENT_AGE_S",
        0,
        "local stage: a worker event that waited in the pool longer than this is dropped to the "
        "failure recorder as `EVENT_AGE_EXCEEDED`, as Lambda drops one older than its "
        "`MaximumEventAgeInSeconds` (0: never). When set, dispatch is paced against the pool "
        "(`SWEEP_LOCAL_PROCESSES` events at once)",
        low=0,
    )
    max_auto_redrives: int = setting(
        "SWEEP_MAX_AUTO_REDRIVES",
        2,
        "automatic re-dispatches per run before the shards still without an outcome are closed "
        "as `LOST` (0: close at the first stall)",
        low=0,
    )
    reconcile_interval_s: int = setting(
        "SWEEP_RECONCILE_INTERVAL_S",
        300,
        "how often the reconciler runs: the `@app.schedule` rate (whole minutes, at least 1; "
        "read when the app is packaged) and the local timer's period",
        local_default=10,
    )
    # Compaction (chalicelib/execution/compaction.py, docs/analytics.md "Compaction").
    compaction_target_mb: int = setting(
        "SWEEP_COMPACTION_TARGET_MB",
        128,
        "size a compacted run's Parquet part reaches before the next one starts: Athena's tuning "
        "guide names files under 128 MB as the ones whose per-file overhead shows; larger parts "
        "gain little (aws-facts: 100k vs 1M rows a file, 2.8 s vs 2.4 s) and cost the compactor "
        "memory and /tmp",
    )
    compaction_grace_s: int = setting(
        "SWEEP_COMPACTION_GRACE_S",
        18_000,
        "how long files a compaction replaced are kept after the catalog stopped pointing at "
        "them: longer than Athena's longest query (the DML timeout, at most 240 min), so no "
        "running query loses a file",
        low=0,
        local_default=60,
    )
    compaction_retry_s: int = setting(
        "SWEEP_COMPACTION_RETRY_S",
        960,
        "the reconciler invokes the compactor again for a run whose compaction is not done at "
        "most this often: more than the compactor's timeout, so it never races itself for nothing",
        low=0,
        local_default=10,
    )
    compaction_max_tries: int = setting(
        "SWEEP_COMPACTION_MAX_TRIES",
        4,
        "how many times the reconciler asks the compactor for one complete run (after the "
        "summary writer's first ask) before it gives up: the run then stays readable from its "
        "per-shard files, and status says `compaction_abandoned` (a redrive tries again)",
    )
    local_reconciler: bool = setting(
        "SWEEP_LOCAL_RECONCILER",
        False,
        "start the reconciler's timer thread in the local stage's process (`chalice local` "
        "runs no schedules); a default in code, not in the stage's config, so the environment "
        "can turn it off",
        local_default=True,
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        hints = get_type_hints(cls)
        backend = _parse(_field("backend"), hints["backend"], env, "local")
        values = {f.name: _parse(f, hints[f.name], env, backend) for f in fields(cls) if f.init}
        settings = cls(**values)
        if settings.max_body_bytes > MAX_BODY_LIMIT:
            raise SettingsError(
                f"SWEEP_MAX_BODY_BYTES must be <= {MAX_BODY_LIMIT} (task payloads ride in "
                f"Lambda's 1 MB async events), got {settings.max_body_bytes}"
            )
        if backend == "aws":
            for name in ("bucket", "worker_function", "dispatcher_function"):
                if not getattr(settings, name):
                    raise SettingsError(f"{env_name(name)} must be set when SWEEP_BACKEND=aws")
        return settings


def env_name(field_name: str) -> str:
    """The environment variable of a ``Settings`` field."""
    return str(_field(field_name).metadata["env"])


def table() -> list[Field[Any]]:
    """The settings table, in declaration order."""
    return list(fields(Settings))


def _field(name: str) -> Field[Any]:
    return next(f for f in fields(Settings) if f.name == name)


def _parse(f: Field[Any], kind: Any, env: Mapping[str, str], backend: str) -> Any:
    """``f``'s value from ``env``: its default when unset or empty, else parsed by its type."""
    name, low = f.metadata["env"], f.metadata["low"]
    local_default = f.metadata["local_default"]
    default = local_default if backend == "local" and local_default is not None else f.default
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if get_origin(kind) is Literal:
        options = get_args(kind)
        if raw not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, got {raw!r}")
        return raw
    if kind is bool:
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    if kind is int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < low:
            raise SettingsError(f"{name} must be >= {low}, got {value}")
        return value
    if kind is Path:
        return Path(raw)
    if f.name == "prefix":
        return raw.strip("/")
    return raw
