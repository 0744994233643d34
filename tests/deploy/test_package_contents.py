"""What ``chalice package``/``deploy`` ships is what Lambda runs: app code only, no tooling.

Chalice's own ``AppOnlyDeploymentPackager`` (the file selection ``chalice deploy`` uses, without
the dependency download) packs a copy of the tracked project, so the test sees exactly the files
the real zip would hold, and proves ``sweeps/``, ``deploy/``, ``athena/`` and the rest stay out.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from chalice.deploy.packager import AppOnlyDeploymentPackager, DependencyBuilder
from chalice.utils import UI, OSUtils

from chalicelib.config import PROJECT_ROOT

TOOLING = ("client/", "deploy/", "athena/", "bench/", "scripts/", "tests/", "infra/", "docs/")


def packaged(tmp_path: Path) -> dict[str, str]:
    """The package's Python sources by name (other files map to an empty text)."""
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    project = tmp_path / "project"
    for name in filter(None, tracked):
        if (PROJECT_ROOT / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, project / name)
    osutils = OSUtils()
    packager = AppOnlyDeploymentPackager(osutils, DependencyBuilder(osutils), UI())
    zip_path = packager.create_deployment_package(str(project), "python3.12")
    with zipfile.ZipFile(zip_path) as archive:
        return {
            n: archive.read(n).decode() if n.endswith(".py") else "" for n in archive.namelist()
        }


def test_the_lambda_package_holds_app_code_and_no_tooling(tmp_path: Path) -> None:
    sources = packaged(tmp_path)
    names = list(sources)
    assert "app.py" in names
    assert "chalicelib/execution/worker.py" in names
    assert "chalicelib/model/request_schema.json" in names  # data the validator reads at run time
    assert not [n for n in names if n.startswith(TOOLING)]
    allowed = ("app.py", "chalice/", "chalicelib/")
    assert [n for n in names if not n.startswith(allowed)] == []
    # nothing shipped is a command-line tool or a query engine
    ours = {n: s for n, s in sources.items() if not n.startswith("chalice/")}
    for marker in ("argparse", "import duckdb", "import sqlglot", '__name__ == "__main__"'):
        assert [n for n, source in ours.items() if marker in source] == [], marker
    # every module of the tooling packages exists in the project, yet none was shipped
    for package in ("sweeps", "deploy"):
        assert any((PROJECT_ROOT / package).glob("*.py"))
