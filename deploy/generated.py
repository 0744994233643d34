"""Files generated from the sources (DDL, templates, policies) and the one way to check them.

Each generator module lists its files as ``{path: text}``; ``--write`` rewrites the stale ones
and ``--check`` fails while any differs, so ``make test`` catches a source changed without its
generated files.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from chalicelib.config import PROJECT_ROOT


def sync(files: dict[Path, str], write: bool) -> list[str]:
    """Names of the files that differ from ``files`` (rewritten when ``write``)."""
    stale = []
    for path, text in files.items():
        if path.exists() and path.read_text() == text:
            continue
        name = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
        stale.append(name.as_posix())
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return stale


def main(
    prog: str,
    description: str | None,
    files: Callable[[], dict[Path, str]],
    argv: Sequence[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated files")
    mode.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args(argv)
    stale = sync(files(), args.write)
    for name in stale:
        print(f"{'rewrote' if args.write else 'stale'}: {name}")
    return 1 if stale and args.check else 0
