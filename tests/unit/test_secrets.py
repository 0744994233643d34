"""The secret scan fails on anything new: a baseline that swallowed findings would be no check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chalicelib.config import PROJECT_ROOT

HOOK = Path(sys.executable).parent / "detect-secrets-hook"
BASELINE = PROJECT_ROOT / ".secrets.baseline"


def scan(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOOK), "--baseline", str(BASELINE), str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )


def test_the_baseline_accepts_nothing() -> None:
    assert json.loads(BASELINE.read_text())["results"] == {}


def test_a_new_credential_fails_the_scan(tmp_path: Path) -> None:
    leak = tmp_path / "settings.py"
    # Assembled here so that this file itself holds no credential-shaped string.
    key = "AKIA" + "Q7ZKXJ4M2PLR5TBW"
    leak.write_text(f'aws_access_key_id = "{key}"\n')
    assert scan(leak).returncode != 0


def test_a_clean_file_passes(tmp_path: Path) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text('region = "eu-west-1"\n')
    assert scan(clean).returncode == 0
