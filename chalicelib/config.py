"""Typed settings, read once from the environment that each stage sets in .chalice/config.json.

A missing or malformed variable fails at start with its name, rather than as a confusing
error deep inside the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# A task carries the canonical request; this cap keeps it inside Lambda's 1 MB async limit
# with room for the task's own fields.
MAX_BODY_LIMIT = 768 * 1024


LOCAL_STALL_TIMEOUT_S = 120
LOCAL_RECONCILE_INTERVAL_S = 10


class SettingsError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    backend: Literal["local", "aws"] = "local"
    max_points: int = 100_000_000
    max_shards: int = 100_000
    max_body_bytes: int = 256 * 1024
    allow_fault_injection: bool = True
    local_root: Path = PROJECT_ROOT / ".sweep-data"
    local_processes: int = max(os.cpu_count() or 1, 1)
    local_warm_pool: bool = False
    bucket: str | None = None
    prefix: str = ""
    worker_function: str | None = None
    dispatcher_function: str | None = None
    glue_database: str | None = None
    athena_workgroup: str | None = None
    dispatch_threads: int = 32
    dispatch_leaf_shards: int = 1000
    dispatch_width: int = 10
    dispatch_max_attempts: int = 8
    dispatch_backoff_ms: int = 50
    worker_max_attempts: int = 3
    deadline_margin_ms: int = 10_000
    # The reconciler (contract: "Every run finishes"). The stall timeout must exceed a worker's
    # timeout plus Lambda's retry schedule (900 s x 3 attempts + 1 + 2 min of retry delays):
    # a run that made no progress for that long has lost events, not slow workers.
    # The local stage's defaults are short (LOCAL_STALL_TIMEOUT_S, LOCAL_RECONCILE_INTERVAL_S):
    # its workers have no timeout and no retry delays. They are set in code, not in
    # .chalice/config.json, because chalice local lets the config override the environment.
    stall_timeout_s: int = 3600
    max_auto_redrives: int = 2
    reconcile_interval_s: int = 300
    local_reconciler: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        reader = _Reader(env)
        backend = reader.choice("SWEEP_BACKEND", ("local", "aws"), cls.backend)
        settings = cls(
            stage=reader.text("SWEEP_STAGE", cls.stage),
            backend=backend,  # type: ignore[arg-type]
            max_points=reader.integer("SWEEP_MAX_POINTS", cls.max_points),
            max_shards=reader.integer("SWEEP_MAX_SHARDS", cls.max_shards),
            max_body_bytes=reader.integer("SWEEP_MAX_BODY_BYTES", cls.max_body_bytes),
            allow_fault_injection=reader.flag("SWEEP_FAULT_INJECTION", cls.allow_fault_injection),
            local_root=Path(reader.text("SWEEP_LOCAL_ROOT", str(cls.local_root))),
            local_processes=reader.integer("SWEEP_LOCAL_PROCESSES", cls.local_processes),
            local_warm_pool=reader.flag("SWEEP_LOCAL_WARM_POOL", cls.local_warm_pool),
            bucket=reader.optional("SWEEP_BUCKET"),
            prefix=reader.text("SWEEP_PREFIX", cls.prefix).strip("/"),
            worker_function=reader.optional("SWEEP_WORKER_FUNCTION"),
            dispatcher_function=reader.optional("SWEEP_DISPATCHER_FUNCTION"),
            glue_database=reader.optional("SWEEP_GLUE_DATABASE"),
            athena_workgroup=reader.optional("SWEEP_ATHENA_WORKGROUP"),
            dispatch_threads=reader.integer("SWEEP_DISPATCH_THREADS", cls.dispatch_threads),
            dispatch_leaf_shards=reader.integer(
                "SWEEP_DISPATCH_LEAF_SHARDS", cls.dispatch_leaf_shards
            ),
            dispatch_width=reader.integer("SWEEP_DISPATCH_WIDTH", cls.dispatch_width, low=2),
            dispatch_max_attempts=reader.integer(
                "SWEEP_DISPATCH_MAX_ATTEMPTS", cls.dispatch_max_attempts
            ),
            dispatch_backoff_ms=reader.integer(
                "SWEEP_DISPATCH_BACKOFF_MS", cls.dispatch_backoff_ms, low=0
            ),
            worker_max_attempts=reader.integer(
                "SWEEP_WORKER_MAX_ATTEMPTS", cls.worker_max_attempts
            ),
            deadline_margin_ms=reader.integer(
                "SWEEP_DEADLINE_MARGIN_MS", cls.deadline_margin_ms, low=0
            ),
            stall_timeout_s=reader.integer(
                "SWEEP_STALL_TIMEOUT_S",
                LOCAL_STALL_TIMEOUT_S if backend == "local" else cls.stall_timeout_s,
            ),
            max_auto_redrives=reader.integer(
                "SWEEP_MAX_AUTO_REDRIVES", cls.max_auto_redrives, low=0
            ),
            reconcile_interval_s=reader.integer(
                "SWEEP_RECONCILE_INTERVAL_S",
                LOCAL_RECONCILE_INTERVAL_S if backend == "local" else cls.reconcile_interval_s,
            ),
            local_reconciler=reader.flag("SWEEP_LOCAL_RECONCILER", cls.local_reconciler),
        )
        if settings.max_body_bytes > MAX_BODY_LIMIT:
            raise SettingsError(
                f"SWEEP_MAX_BODY_BYTES must be <= {MAX_BODY_LIMIT} (task payloads ride in "
                f"Lambda's 1 MB async events), got {settings.max_body_bytes}"
            )
        if backend == "aws":
            for name, value in (
                ("SWEEP_BUCKET", settings.bucket),
                ("SWEEP_WORKER_FUNCTION", settings.worker_function),
                ("SWEEP_DISPATCHER_FUNCTION", settings.dispatcher_function),
            ):
                if not value:
                    raise SettingsError(f"{name} must be set when SWEEP_BACKEND=aws")
        return settings


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def optional(self, name: str) -> str | None:
        return self.env.get(name) or None

    def text(self, name: str, default: str) -> str:
        return self.env.get(name) or default

    def integer(self, name: str, default: int, low: int = 1) -> int:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < low:
            raise SettingsError(f"{name} must be >= {low}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        raw = self.env.get(name) or default
        if raw not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, got {raw!r}")
        return raw
