"""Generates chalicelib/function_sizes.json (each stage's function memory and timeout) from
.chalice/config.json, so deployed functions, which do not ship .chalice/, know them too.

    python -m deploy.function_sizes --write | --check
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chalicelib.config import PROJECT_ROOT
from chalicelib.pricing import SIZES_FILE, sizes_from_config
from deploy.generated import main

CONFIG = PROJECT_ROOT / ".chalice" / "config.json"


def generated_files() -> dict[Path, str]:
    config = json.loads(CONFIG.read_text())
    table = {
        stage: {
            fn: {"memory_mb": size.memory_mb, "timeout_s": size.timeout_s}
            for fn, size in sorted(sizes_from_config(config, stage).items())
        }
        for stage in sorted(config["stages"])
    }
    return {SIZES_FILE: json.dumps(table, indent=2, sort_keys=True) + "\n"}


if __name__ == "__main__":
    sys.exit(main("python -m deploy.function_sizes", __doc__, generated_files))
