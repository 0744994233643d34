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
    config = chalice_config() if config is None else config
    worker = {
        **config.get("lambda_functions", {}).get("worker", {}),
        **config["stages"][stage].get("lambda_functions", {}).get("worker", {}),
    }
    return int(worker.get("lambda_timeout", 60))
