"""A deployed stage's settings as its functions will read them: ``.chalice/config.json``'s
environment (top level, then the stage's) through the one settings table.

The deploy steps that configure AWS from a setting (the worker's reserved concurrency, the
reconciler's timeline) read it here, so the stack and the running code cannot disagree.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.config import PROJECT_ROOT, Settings

# Filled in by the deploy (path B's stage config, path A's merge template); placeholders here.
_DEPLOY_FILLED = {
    "SWEEP_BUCKET": "b",
    "SWEEP_WORKER_FUNCTION": "w",
    "SWEEP_DISPATCHER_FUNCTION": "d",
}


def chalice_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    return config


def settings(stage: str, config: dict[str, Any] | None = None) -> Settings:
    config = chalice_config() if config is None else config
    block = config["stages"][stage]
    env = {**config.get("environment_variables", {}), **block.get("environment_variables", {})}
    return Settings.from_env(_DEPLOY_FILLED | env)


def worker_timeout_s(stage: str, config: dict[str, Any] | None = None) -> int:
    return timeout_s(stage, "worker", config)


def timeout_s(stage: str, fn: str, config: dict[str, Any] | None = None) -> int:
    """A function's ``lambda_timeout`` on the stage (Chalice's default: 60 s)."""
    config = chalice_config() if config is None else config
    function = {
        **config.get("lambda_functions", {}).get(fn, {}),
        **config["stages"][stage].get("lambda_functions", {}).get(fn, {}),
    }
    return int(function.get("lambda_timeout", 60))
