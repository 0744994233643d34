"""Path B's function package: the app without what the layer brings (pyarrow, numpy).

Chalice installs whatever ``requirements.txt`` lists and has no way to leave a package out,
so this builds a copy of the project (app.py, chalicelib/, .chalice/ config and policies) whose
requirements omit the layer's packages, and packages that. ``chalice deploy`` run from the
same copy uploads the same zip.

    python -m deploy.slim --stage dev [--out build/slim-dev]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import PROJECT_ROOT
from deploy.layer import LAYER_PACKAGES
from deploy.package import DEPENDENCY_FAILURE, MB, unzipped_size
from deploy.tools import PackageError, tool

# Lambda's own limits (aws-facts): a directly uploaded zip, and function + layers unzipped.
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
UNZIPPED_GOAL = 200 * MB


def project_copy(dest: Path) -> Path:
    """A minimal Chalice project: what Chalice packages plus its config."""
    # chalice deploy records what it created in .chalice/deployed/: keep it, or the next
    # deploy would try to create every resource again.
    deployed = dest / ".chalice" / "deployed"
    kept = dest.parent / ".deployed-kept"
    if kept.exists():
        shutil.rmtree(kept)
    if deployed.exists():
        shutil.move(deployed, kept)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "app.py", dest / "app.py")
    shutil.copytree(
        PROJECT_ROOT / "chalicelib",
        dest / "chalicelib",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (dest / ".chalice").mkdir()
    for path in (PROJECT_ROOT / ".chalice").glob("*.json"):
        shutil.copy2(path, dest / ".chalice" / path.name)
    keep = [
        line
        for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
        if line.split("==")[0].strip().lower() not in LAYER_PACKAGES
    ]
    (dest / "requirements.txt").write_text("\n".join(keep) + "\n")
    if kept.exists():
        shutil.move(kept, deployed)
    return dest


@dataclass(frozen=True)
class Slim:
    project: Path
    zip: Path
    zip_bytes: int
    unzipped_bytes: int

    def summary(self) -> str:
        return (
            f"function {self.zip.name}: {self.zip_bytes / MB:.1f} MB zipped, "
            f"{self.unzipped_bytes / MB:.1f} MB unzipped"
        )


def package(stage: str, out: Path) -> Slim:
    out = out.resolve()
    project = project_copy(out / "project")
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    done = subprocess.run(
        [
            tool("chalice"),
            "--project-dir",
            str(project),
            "package",
            "--stage",
            stage,
            str(out / "package"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0 or DEPENDENCY_FAILURE in output:
        raise PackageError(f"chalice package (slim) --stage {stage} failed:\n{output}")
    archive = out / "package" / "deployment.zip"
    with zipfile.ZipFile(archive) as zf:
        leaked = {n.split("/")[0] for n in zf.namelist()} & set(LAYER_PACKAGES)
    if leaked:
        raise PackageError(f"the function zip still holds {sorted(leaked)}")
    return Slim(project, archive, archive.stat().st_size, unzipped_size(archive))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.slim", description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    slim = package(args.stage, args.out or PROJECT_ROOT / "build" / f"slim-{args.stage}")
    print(slim.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
