"""``make demo``: a whole sweep on the local stage, driven only by the ``sweep`` command.

Each step prints the command a user would type and runs the installed ``sweep`` with it, so the
demo is also the CLI tour: start ``chalice local --stage local`` on a free port, submit the
demo sweep (two injected shard failures) and follow it, redrive (the injected failures fail
again), show the run's status, summary, failure rate and best points, estimate and submit a
widened grid that reuses the first run's points (its status shows how many were reused and the
run's cost), draw a heatmap, stop the server, and say where the data and the picture are.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from chalicelib.config import PROJECT_ROOT, Settings
from scripts.local_stack import local_server

SWEEP_FILE = PROJECT_ROOT / "examples" / "option-pricing.json"  # the contract's example
# The same grid with twice the volatilities (17 linspace values holding the 9 exactly) and
# "reuse": true: only the new points are evaluated.
WIDER_FILE = PROJECT_ROOT / "examples" / "option-pricing-wider.json"
SWEEP = Path(sys.executable).with_name("sweep")


class DemoFailed(Exception):
    pass


def shown(path: Path) -> str:
    """A path as the user would type it from the project folder."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def sweep(env: dict[str, str], *args: str, capture: bool = False) -> str:
    print(f"\n$ sweep {shlex.join(args)}", flush=True)
    done = subprocess.run(
        [str(SWEEP), *args],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE if capture else None,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DemoFailed(f"sweep {args[0]} exited {done.returncode}")
    if capture:
        print(done.stdout, end="", flush=True)
        return done.stdout.strip()
    return ""


def main() -> int:
    started = time.monotonic()
    root = Settings.from_env().local_root
    picture = root / "demo-heatmap.png"
    with local_server(root, root / "chalice-local.log") as base:
        env = os.environ | {"SWEEP_API_URL": base, "SWEEP_LOCAL_ROOT": str(root)}
        print(f"chalice local --stage local is serving {base} (SWEEP_API_URL); data under {root}")
        try:
            sweep(env, "simulations")
            run_id = sweep(env, "submit", shown(SWEEP_FILE), "--wait", capture=True)
            sweep(env, "redrive", run_id, "--wait")
            sweep(env, "status", run_id)
            sweep(env, "query", "run_summary", "--run", run_id)
            sweep(env, "query", "failure_rate")
            sweep(env, "query", "failure_by_error", "--run", run_id)
            sweep(env, "query", "best_points", "--run", run_id, "--metric", "abs_error")
            sweep(env, "estimate", shown(WIDER_FILE))
            wider = sweep(env, "submit", shown(WIDER_FILE), "--wait", capture=True)
            sweep(env, "status", wider)  # points reused / evaluated, and the run's cost
            sweep(env, "query", "run_cost", "--run", wider)
            sweep(
                env,
                "plot", run_id, "--x", "strike", "--y", "volatility", "--metric", "abs_error",
                "--where", "option=call", "-o", shown(picture),
            )  # fmt: skip
        except DemoFailed as exc:
            print(f"\ndemo failed: {exc}; server log: {shown(root / 'chalice-local.log')}")
            return 1
    print(
        f"\nStopped the local stage. {time.monotonic() - started:.0f} s in all.\n"
        f"  data (Parquet, manifests): {shown(root)}/\n"
        f"  heatmap:                   {shown(picture)}\n"
        f"Query it again: .venv/bin/sweep query run_summary --run {run_id}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
