"""Sizes of what each deploy path uploads, against Lambda's limits.

    .venv/bin/python -m bench.package_sizes            # a line per artifact
    .venv/bin/python -m bench.package_sizes --json     # the same numbers as JSON

Builds the real artifacts into a temporary folder with the project's own builders: path A's
function (``chalice package`` with the merge template, pyarrow and numpy inside), path B's
trimmed layer and path B's function without them. Limits (aws-facts): a zip uploaded directly
(``chalice deploy``) ≤ 50 MB; function + layers ≤ 250 MB unzipped, and this project's goal of
≤ 200 MB for path B, to leave a user room for their own simulation's dependencies.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from deploy import layer, package, slim

MB = 1_000_000


def measure(stage: str, out: Path) -> dict[str, float]:
    path_a = package.package(stage, out / "package")
    built = layer.build(out / "layer")
    function = slim.package(stage, out / "slim")
    return {
        "path_a_zip_mb": path_a.zip_bytes / MB,
        "path_a_unzipped_mb": path_a.unzipped_bytes / MB,
        "layer_zip_mb": built.zip_bytes / MB,
        "layer_unzipped_mb": built.unzipped_bytes / MB,
        "layer_trimmed_mb": built.trimmed_bytes / MB,
        "path_b_function_zip_mb": function.zip_bytes / MB,
        "path_b_function_unzipped_mb": function.unzipped_bytes / MB,
        "path_b_total_unzipped_mb": (built.unzipped_bytes + function.unzipped_bytes) / MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sizes = measure(args.stage, Path(tmp))
    report = {"stage": args.stage, **{k: round(v, 1) for k, v in sizes.items()}}
    print(
        json.dumps(report, indent=2)
        if args.json
        else "\n".join(f"{k}: {v}" for k, v in report.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
