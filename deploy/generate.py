"""Every committed file generated from a source of truth, in one run: the DDL, the infra
templates (which carry the named queries of each simulation), the per-stage policies and the
settings table of docs/configuration.md. ``make generate`` writes them, ``make lint`` checks
them, and the new-simulation test runs exactly this in a copy of the project::

    python -m deploy.generate --write    # rewrite every stale generated file
    python -m deploy.generate --check    # exit 1 while one is stale
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy import generated

# Each module has ``generated_files()`` and its own ``--write``/``--check`` for one family.
GENERATORS = (
    "deploy.ddl",
    "deploy.infra",
    "deploy.policies",
    "deploy.settings_doc",
    "deploy.function_sizes",
)


def generated_files() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for name in GENERATORS:
        files |= importlib.import_module(name).generated_files()
    return files


def main(argv: Sequence[str] | None = None) -> int:
    return generated.main("python -m deploy.generate", __doc__, generated_files, argv)


if __name__ == "__main__":
    sys.exit(main())
