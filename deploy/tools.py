"""The command-line tools the build and deploy steps run (``chalice``, ``cfn-lint``), found in
this virtual environment first, and the error every such step raises."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

TOOLS = Path(sys.executable).parent


class PackageError(Exception):
    """A build or deploy step failed; the message says which and why."""


def tool(name: str) -> str:
    """The path of the executable ``name``: the venv's own, else the one on ``PATH``."""
    found = shutil.which(name, path=str(TOOLS)) or shutil.which(name)
    if not found:
        raise PackageError(f"{name} is not installed (make setup)")
    return found
