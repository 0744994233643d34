"""Path A's build: ``chalice package`` with the generated merge template, then the checks that a
green ``chalice package`` does not make.

Chalice prints "Could not install dependencies" and goes on, producing a zip without pyarrow
(aws-facts): that message fails the build here. The packaged SAM template must lint clean.

    python -m deploy.package --stage dev [--out build/dev]

Needs a region (``AWS_DEFAULT_REGION``, us-east-1 when unset) and PyPI; no credentials.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import PROJECT_ROOT
from deploy import sdk, timeline
from deploy.cfn import TEMPLATE_URL_MAX_BYTES, dump_yaml
from deploy.merge import merge_template
from deploy.tools import PackageError, tool

DEPENDENCY_FAILURE = "Could not install dependencies"
MB = 1_000_000


@dataclass(frozen=True)
class Packaged:
    template: Path
    zip: Path
    zip_bytes: int
    unzipped_bytes: int

    def summary(self) -> str:
        return (
            f"{self.zip.name}: {self.zip_bytes / MB:.1f} MB zipped, "
            f"{self.unzipped_bytes / MB:.1f} MB unzipped"
        )


def unzipped_size(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def cfn_lint(*templates: Path) -> None:
    done = subprocess.run(
        [tool("cfn-lint"), *map(str, templates)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise PackageError(f"cfn-lint found problems:\n{done.stdout}{done.stderr}")


def package(stage: str, out: Path) -> Packaged:
    try:
        sdk.check_build_python()
        timeline.check(stage)
    except (sdk.BuildPythonMismatch, timeline.TimelineError) as exc:
        raise PackageError(str(exc)) from None
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    merge = out.parent / f"merge-{stage}.yaml"
    merge.write_text(dump_yaml(merge_template(stage)))
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    # Chalice caches the zip in .chalice/deployments/ and reuses it across stages: two builds at
    # once (parallel tests) could read a half-written one.
    lock = PROJECT_ROOT / ".chalice" / "deployments.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = _chalice_package(stage, merge, out, env)
    output = done.stdout + done.stderr
    if done.returncode != 0 or DEPENDENCY_FAILURE in output:
        raise PackageError(f"chalice package --stage {stage} failed:\n{output}")
    template, archive = out / "sam.yaml", out / "deployment.zip"
    sdk.trim(archive)
    cfn_lint(template)
    size = template.stat().st_size
    if size > TEMPLATE_URL_MAX_BYTES:
        raise PackageError(
            f"{template} is {size:,} bytes: CloudFormation takes at most "
            f"{TEMPLATE_URL_MAX_BYTES:,} from S3"
        )
    return Packaged(template, archive, archive.stat().st_size, unzipped_size(archive))


def _chalice_package(
    stage: str, merge: Path, out: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tool("chalice"),
            "--project-dir",
            str(PROJECT_ROOT),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(merge),
            "--pkg-format",
            "cloudformation",
            "--template-format",
            "yaml",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.package", description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", type=Path, help="default: build/<stage>")
    args = parser.parse_args(argv)
    try:
        packaged = package(args.stage, args.out or PROJECT_ROOT / "build" / args.stage)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{packaged.template}: cfn-lint clean")
    print(packaged.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
