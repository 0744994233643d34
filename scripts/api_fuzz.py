"""``make api-fuzz``: schemathesis against the OpenAPI document (``scripts/openapi.py``) on a
running ``chalice local --stage local``: no server errors, every response conforms.

The stage gets one worker process (SWEEP_LOCAL_PROCESSES=1) and a temporary data root, and is
stopped (with its pool) when schemathesis ends. Extra arguments go to ``schemathesis run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.local_stack import local_server
from scripts.openapi import document

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def main(extra: list[str]) -> int:
    os.environ["SWEEP_LOCAL_PROCESSES"] = "1"
    with tempfile.TemporaryDirectory(prefix="sweeps-api-fuzz-") as tmp:
        spec = Path(tmp) / "openapi.json"
        spec.write_text(json.dumps(document()))
        with local_server(Path(tmp) / "data", Path(tmp) / "server.log") as base:
            command = [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                str(spec),
                "--url",
                base,
                "--checks",
                CHECKS,
                "--workers",
                "1",
                *extra,
            ]
            return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
