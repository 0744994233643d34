"""The API handler's cold-start import cost, and which heavy modules the API path pulls in.

    .venv/bin/python -m bench.imports            # a table
    .venv/bin/python -m bench.imports --json

- ``import app`` in a fresh interpreter, best of ``--repeats``: wall time of
  ``python -c "import app"`` minus that of ``python -c "pass"``, and the cumulative time
  ``python -X importtime`` gives the ``app`` module, with its largest top-level imports.
- pyarrow, numpy and duckdb in ``sys.modules`` after ``import app``, and after building the API
  path's wiring (``wiring.current()``) for SWEEP_BACKEND=local and for SWEEP_BACKEND=aws (fake
  names, nothing contacted), and after the API answers a 400 and ``GET /simulations``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

from chalicelib.config import PROJECT_ROOT
from scripts.fake_stage import AWS_ENV

HEAVY = ("pyarrow", "numpy", "duckdb")

# Runs in a clean interpreter (cwd = project root); prints one JSON object.
PROBE = """
import json, sys
heavy = %r
seen = {}
import app
seen["import app"] = {m: m in sys.modules for m in heavy}
from chalicelib import wiring
wiring.current()
seen["wiring.current()"] = {m: m in sys.modules for m in heavy}
from chalice.test import Client
client = Client(app.app, stage_name="local", project_dir=".")
bad = client.http.post("/sweeps", headers={"Content-Type": "application/json"}, body="{}")
sims = client.http.get("/simulations")
assert (bad.status_code, sims.status_code) == (400, 200), (bad.status_code, sims.status_code)
seen["POST /sweeps (400) + GET /simulations"] = {m: m in sys.modules for m in heavy}
print(json.dumps(seen))
"""


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEP_", "PYTHON"))}
    return env | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"} | extra


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def best_wall_s(code: str, env: dict[str, str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        run_python(["-c", code], env)
        samples.append(time.perf_counter() - began)
    return min(samples)


def importtime(env: dict[str, str], repeats: int) -> tuple[float, list[tuple[str, float]]]:
    """Best cumulative ms of ``app`` under -X importtime, and the largest packages it loads.

    A package's cumulative time is counted where it is first imported, so nested packages
    (botocore under boto3) overlap their parent's figure.
    """
    best: tuple[float, list[tuple[str, float]]] | None = None
    for _ in range(repeats):
        stderr = run_python(["-X", "importtime", "-c", "import app"], env).stderr
        rows = []
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, name = line[len("import time:") :].split("|")
            rows.append((name.strip(), int(cumulative) / 1000))
        total = next(ms for name, ms in rows if name == "app")
        packages = sorted(
            ((n, ms) for n, ms in rows if "." not in n and n != "app"), key=lambda r: -r[1]
        )
        if best is None or total < best[0]:
            best = (total, packages[:8])
    assert best is not None
    return best


def modules_seen(env: dict[str, str]) -> dict[str, dict[str, bool]]:
    seen: dict[str, dict[str, bool]] = json.loads(run_python(["-c", PROBE % (HEAVY,)], env).stdout)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        local = clean_env({"SWEEP_BACKEND": "local", "SWEEP_LOCAL_ROOT": tmp})
        aws = clean_env(AWS_ENV)
        bare = best_wall_s("pass", local, args.repeats)
        with_app = best_wall_s("import app", local, args.repeats)
        app_ms, top = importtime(local, args.repeats)
        seen = {"local": modules_seen(local), "aws": modules_seen(aws)}

    report: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "python_startup_ms": round(bare * 1000, 1),
        "python_import_app_ms": round(with_app * 1000, 1),
        "import_app_ms": round((with_app - bare) * 1000, 1),
        "importtime_app_cumulative_ms": round(app_ms, 1),
        "importtime_top": [{"module": n, "cumulative_ms": round(ms, 1)} for n, ms in top],
        "modules": seen,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"python {report['python']}, {report['cpus']} CPUs, best of {args.repeats}")
    print(
        f"import app: {report['import_app_ms']:.0f} ms wall over a bare interpreter "
        f"({report['python_import_app_ms']:.0f} vs {report['python_startup_ms']:.0f} ms); "
        f"-X importtime: {report['importtime_app_cumulative_ms']:.0f} ms"
    )
    print("largest packages imported (cumulative ms; nested ones overlap):")
    for n, ms in top:
        print(f"  {n:<40} {ms:>7.1f}")
    print()
    print(f"{'backend':<8} {'after':<40} " + " ".join(f"{m:>8}" for m in HEAVY))
    for backend, stages in seen.items():
        for stage, flags in stages.items():
            marks = " ".join(f"{'yes' if flags[m] else 'no':>8}" for m in HEAVY)
            print(f"{backend:<8} {stage:<40} {marks}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
