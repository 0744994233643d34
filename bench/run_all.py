"""``make bench``: every benchmark in turn; docs/benchmarks.md records their figures."""

from __future__ import annotations

import sys

from bench import dispatch, imports, partition_and_decode, queries, worker_throughput

BENCHES = {
    "partition_and_decode": partition_and_decode.main,
    "worker_throughput": worker_throughput.main,
    "dispatch": dispatch.main,
    "imports": imports.main,
    "queries": queries.main,
}


def main() -> int:
    failed = 0
    for name, run in BENCHES.items():
        print(f"\n=== bench.{name} ===", flush=True)
        failed += run([]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
