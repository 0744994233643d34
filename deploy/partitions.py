"""Re-register a run's partitions in Glue by hand, e.g. after registration failed at dispatch.

    python -m deploy.partitions <run_id> <dt>

Uses the same settings (``SWEEP_BUCKET``, ``SWEEP_PREFIX``, ``SWEEP_GLUE_DATABASE``) as the
functions, and the same idempotent registration the dispatcher runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chalicelib.analytics.catalog import catalog_for
from chalicelib.config import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.partitions", description=__doc__)
    parser.add_argument("run_id")
    parser.add_argument("dt", help="the run's creation date, YYYY-MM-DD (UTC)")
    args = parser.parse_args(argv)
    catalog = catalog_for(Settings.from_env())
    created = catalog.register_run(args.run_id, args.dt)
    print(f"{type(catalog).__name__}: {created} new partition(s) for run {args.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
