"""Path B's Lambda layer: pyarrow and numpy from the pinned manylinux wheels for Lambda's
Python 3.12 on x86_64, trimmed of what writing Parquet does not need.

``chalice deploy`` uploads its zip directly, capped at 50 MB, and pyarrow + numpy make it 72 MB
(aws-facts). In a layer published from S3 they are not capped at 50 MB, and trimmed they leave
room under the 250 MB (function + layers, unzipped) limit for a user's own dependencies.

Trimmed (each rule names why it is safe; ``tests/deploy/test_artifact.py`` imports the
result in a clean interpreter and runs the handlers on it):

- Flight, the Substrait bindings, and the S3/GCS/Azure/HDFS filesystems: boto3 does all I/O
  (``libarrow_substrait.so`` itself stays: ``libarrow_python`` links against it in pyarrow 26);
- headers, Cython sources, tests, CMake files;
- the copies of ``libarrow_python.so``: wheels store symlinks as copies, and the loader asks
  for the SONAME (``libarrow_python.so.2600``) only.

    python -m deploy.layer [--out build/layer]   # writes build/layer/python/ and build/layer.zip
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import PROJECT_ROOT

PLATFORM = "manylinux_2_28_x86_64"
PYTHON_VERSION = "3.12"
LAYER_PACKAGES = ("pyarrow", "numpy")
MB = 1_000_000

# Relative to the layer's python/ folder.
TRIM = (
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/tests",
    "pyarrow/*.pxd",
    "pyarrow/*.pyx",
    "pyarrow/*.pxi",
    "pyarrow/*/*.pxd",
    "pyarrow/*/*.pyx",
    "pyarrow/*.h",
    "pyarrow/*.cmake",
    "pyarrow/*flight*",
    "pyarrow/_substrait*",
    "pyarrow/substrait.py",
    "pyarrow/_pyarrow_cpp_tests*",
    "pyarrow/_s3fs*",
    "pyarrow/libarrow_s3*",
    "pyarrow/_gcsfs*",
    "pyarrow/_azurefs*",
    "pyarrow/_hdfs*",
    "pyarrow/libarrow_python.so",
    "pyarrow/libarrow_python.so.*.*",
    "pyarrow/libarrow_python_flight*",
    "pyarrow/libarrow_python_parquet_encryption.so",
    "pyarrow/libarrow_python_parquet_encryption.so.*.*",
    "numpy/*/tests",
    "numpy/tests",
    "numpy/_core/include",
    "numpy/_core/lib",
    "numpy/f2py",
    "numpy/_pyinstaller",
    "numpy/distutils",
    "*/__pycache__",
)


def pinned(requirements: Path = PROJECT_ROOT / "requirements.txt") -> list[str]:
    """``name==version`` of the layer's packages, as requirements.txt pins them."""
    pins = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line)
        if match:
            pins[match.group(1).lower()] = f"{match.group(1)}=={match.group(2)}"
    missing = [p for p in LAYER_PACKAGES if p not in pins]
    if missing:
        raise ValueError(f"requirements.txt must pin {missing}")
    return [pins[p] for p in LAYER_PACKAGES]


def download(dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--platform",
            PLATFORM,
            "--python-version",
            PYTHON_VERSION,
            "--implementation",
            "cp",
            "--no-deps",
            "-d",
            str(dest),
            *pinned(),
        ],
        check=True,
    )
    wheels = [
        w for p in pinned() for w in dest.glob(f"{p.split('==')[0]}-{p.split('==')[1]}-*.whl")
    ]
    if len(wheels) != len(LAYER_PACKAGES):
        raise RuntimeError(f"expected one wheel per package in {dest}, found {wheels}")
    return wheels


def _matches(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*"), reverse=True):
        rel = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatchcase(rel, pattern) for pattern in TRIM):
            yield path


def trim(root: Path) -> int:
    """Delete what TRIM names under ``root``; returns the bytes removed."""
    removed = 0
    for path in _matches(root):
        if not path.exists():
            continue
        if path.is_dir():
            removed += tree_size(path)
            shutil.rmtree(path)
        else:
            removed += path.stat().st_size
            path.unlink()
    return removed


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def zip_tree(root: Path, archive: Path) -> None:
    """The layer zip: ``python/...`` at the top, as Lambda adds /opt/python to sys.path."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root.parent).as_posix())


@dataclass(frozen=True)
class Layer:
    folder: Path  # holds python/
    zip: Path
    unzipped_bytes: int
    zip_bytes: int
    trimmed_bytes: int

    def summary(self) -> str:
        return (
            f"layer {self.zip.name}: {self.unzipped_bytes / MB:.1f} MB unzipped, "
            f"{self.zip_bytes / MB:.1f} MB zipped ({self.trimmed_bytes / MB:.1f} MB trimmed)"
        )


def build(out: Path) -> Layer:
    out = out.resolve()
    wheels = download(out.parent / "wheels")
    if out.exists():
        shutil.rmtree(out)
    python = out / "python"
    python.mkdir(parents=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(python)
    trimmed = trim(python)
    archive = out.with_suffix(".zip")
    zip_tree(python, archive)
    return Layer(out, archive, tree_size(python), archive.stat().st_size, trimmed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.layer", description=__doc__)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "layer")
    args = parser.parse_args(argv)
    print(build(args.out).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
