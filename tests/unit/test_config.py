"""Settings from the environment: defaults, checks that name the variable, failing at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import pytest

from chalicelib.config import Settings, SettingsError, table
from deploy import settings_doc
from deploy.generated import sync

ROOT = Path(__file__).resolve().parents[2]
AWS = {
    "SWEEP_BACKEND": "aws",
    "SWEEP_BUCKET": "b",
    "SWEEP_WORKER_FUNCTION": "w",
    "SWEEP_DISPATCHER_FUNCTION": "d",
}


def test_defaults_are_the_local_stage() -> None:
    settings = Settings.from_env({})
    assert settings.backend == "local" and settings.allow_fault_injection is True
    assert (settings.max_points, settings.max_shards) == (100_000_000, 100_000)
    assert settings.local_root == ROOT / ".sweep-data"
    assert ".sweep-data/" in (ROOT / ".gitignore").read_text().splitlines()


def test_a_deployed_stage_injects_faults_only_where_its_config_says_so() -> None:
    """The contract: fault injection is honoured on the local and dev stages, others answer
    400. A deployed stage whose config does not set SWEEP_FAULT_INJECTION (a new one, say)
    refuses ``fail_shards``; the local stage, and every stage that sets it, as set."""
    assert Settings.from_env(AWS).allow_fault_injection is False
    assert Settings.from_env(AWS | {"SWEEP_FAULT_INJECTION": "true"}).allow_fault_injection
    assert Settings.from_env({}).allow_fault_injection is True
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    allowed = {
        name: Settings.from_env(stage["environment_variables"]).allow_fault_injection
        for name, stage in stages.items()
    }
    assert allowed == {name: name in ("local", "dev") for name in stages}


def test_the_environments_local_root_wins_because_config_json_never_sets_it() -> None:
    """Contract: SWEEP_LOCAL_ROOT set where `chalice local` starts wins over .chalice/config.json.
    chalice local lets config.json's variables override the environment's, so that holds only
    while config.json sets it nowhere (globally, per stage, per function)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    scopes = [config, *config["stages"].values()]
    scopes += [f for s in list(scopes) for f in s.get("lambda_functions", {}).values()]
    assert all("SWEEP_LOCAL_ROOT" not in s.get("environment_variables", {}) for s in scopes)


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        AWS | {"SWEEP_PREFIX": "/a/b/", "SWEEP_FAULT_INJECTION": "false", "SWEEP_MAX_SHARDS": "7"}
    )
    assert (settings.prefix, settings.allow_fault_injection, settings.max_shards) == (
        "a/b",
        False,
        7,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SWEEP_MAX_SHARDS": "many"}, "SWEEP_MAX_SHARDS"),
        ({"SWEEP_MAX_POINTS": "0"}, "SWEEP_MAX_POINTS"),
        ({"SWEEP_FAULT_INJECTION": "perhaps"}, "SWEEP_FAULT_INJECTION"),
        ({"SWEEP_BACKEND": "gcp"}, "SWEEP_BACKEND"),
        ({"SWEEP_DISPATCH_WIDTH": "1"}, "SWEEP_DISPATCH_WIDTH"),
        ({"SWEEP_MAX_BODY_BYTES": str(2 * 1024 * 1024)}, "SWEEP_MAX_BODY_BYTES"),
        (AWS | {"SWEEP_BUCKET": ""}, "SWEEP_BUCKET"),
        (AWS | {"SWEEP_WORKER_FUNCTION": ""}, "SWEEP_WORKER_FUNCTION"),
        (
            {"SWEEP_BACKEND": "aws", "SWEEP_BUCKET": "b", "SWEEP_WORKER_FUNCTION": "w"},
            "SWEEP_DISPATCHER_FUNCTION",
        ),
    ],
)
def test_bad_settings_name_their_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_a_bad_setting_fails_the_cold_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEP_")}
    env["SWEEP_MAX_SHARDS"] = "lots"
    result = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SettingsError: SWEEP_MAX_SHARDS must be an integer" in result.stderr


def test_every_setting_is_read_from_its_variable() -> None:
    """Each row of the table is read by the one loop: a value set in its variable arrives."""
    for row in table():
        kind = get_type_hints(Settings)[row.name]
        raw, expected = {
            bool: ("false", False) if row.default else ("true", True),
            int: ("7", 7),
            Path: ("/tmp/x", Path("/tmp/x")),
        }.get(
            kind, ("aws" if row.name == "backend" else "v", "aws" if row.name == "backend" else "v")
        )
        got = getattr(Settings.from_env(AWS | {row.metadata["env"]: raw}), row.name)
        assert got == expected, row.metadata["env"]


def test_docs_table_is_the_settings_table() -> None:
    """docs/configuration.md lists exactly the table's rows (rendered by deploy.settings_doc)."""
    assert sync(settings_doc.generated_files(), write=False) == []
    text = settings_doc.DOC.read_text()
    assert [f"`{row.metadata['env']}`" in text for row in table()] == [True] * len(table())
