"""``make load``: 20 concurrent sweeps of 100 shards each against the local stage over loopback,
with cancels and redrives mixed in; every run must complete, and per run the status must agree
with the Parquet on disk shard by shard.

Bounded: 20 runs x 100 shards, 2 local worker processes, at most LOAD_TIMEOUT_S seconds for
everything. Exits 1 on any disagreement or timeout, printing what disagreed.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pyarrow.parquet as pq

from chalicelib.storage import layout
from scripts.local_stack import local_server

RUNS = 20
SHARDS = 100
LOAD_TIMEOUT_S = 600
CANCELLED = {3, 8, 13}  # cancelled right after submission
REDRIVEN = {1, 6, 11, 16}  # redriven (failed shards) once complete


def sweep(k: int) -> dict[str, Any]:
    return {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 1000, "stop": 1000 + 2 * SHARDS, "step": 1}}},
        "shards": {"count": SHARDS},
        "seed": k,
        "label": f"load-{k}",
        "fail_shards": [k % SHARDS, (k * 7 + 3) % SHARDS],
    }


# chalice local serves with Python's http.server, whose listen backlog is 5: 20 clients
# connecting at once can be reset before a request is read. Those are retried (and counted).
RESETS = [0]


def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    for attempt in range(6):
        request = Request(base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except ConnectionError:
            RESETS[0] += 1
            time.sleep(0.2 * (attempt + 1))
    raise ConnectionError(f"{method} {path}: reset 6 times")


def on_disk(data: Path, run_id: str) -> dict[int, str]:
    """Each shard's state from the Parquet alone: a success file wins, else the latest failure."""
    succeeded: dict[int, int] = {}
    latest: dict[int, tuple[int, str]] = {}
    for path in (data / layout.outcomes_prefix(run_id)).rglob("*.parquet"):
        key = layout.parse_outcome(path.relative_to(data).as_posix())
        assert key is not None, path
        row = pq.read_table(io.BytesIO(path.read_bytes())).to_pylist()[0]
        if key.status == "succeeded":
            succeeded[key.shard_id] = succeeded.get(key.shard_id, 0) + 1
            results = data / row["results_key"]
            rows = pq.read_metadata(results).num_rows
            assert rows == row["point_count"] == row["results_rows"], (run_id, key.shard_id)
        elif key.attempt > latest.get(key.shard_id, (0, ""))[0]:
            latest[key.shard_id] = (key.attempt, row["error_code"])
    assert all(n == 1 for n in succeeded.values()), f"{run_id}: a shard succeeded twice"
    return {
        k: ("succeeded" if k in succeeded else f"failed:{latest[k][1]}" if k in latest else "none")
        for k in range(SHARDS)
    }


def submit_all(base: str, problems: list[str]) -> list[str]:
    """Submit the runs concurrently; cancel some at once."""
    with ThreadPoolExecutor(RUNS) as pool:
        answers = list(pool.map(lambda k: call(base, "POST", "/sweeps", sweep(k)), range(RUNS)))
    run_ids = []
    for k, (code, answer) in enumerate(answers):
        if code != 202:
            problems.append(f"submit {k}: {code} {answer}")
            continue
        run_ids.append(answer["run_id"])
        if k in CANCELLED:
            cancelled, reply = call(base, "POST", f"/sweeps/{answer['run_id']}/cancel", {})
            if cancelled not in (202, 409):
                problems.append(f"cancel {k}: {cancelled} {reply}")
    return run_ids


def follow(
    base: str, run_ids: list[str], started: float, problems: list[str]
) -> tuple[dict[int, dict[str, Any]], set[int]]:
    """Poll until every run is complete, redriving some once they are."""
    pending = dict(enumerate(run_ids))
    redriven: set[int] = set()
    statuses: dict[int, dict[str, Any]] = {}
    while pending and time.monotonic() - started < LOAD_TIMEOUT_S:
        for k, run_id in list(pending.items()):
            code, status = call(base, "GET", f"/sweeps/{run_id}")
            if code != 200:
                problems.append(f"status {k}: {code} {status}")
                del pending[k]
            elif status["complete"] and k in REDRIVEN and k not in redriven:
                redriven.add(k)
                code, answer = call(base, "POST", f"/sweeps/{run_id}/redrive", {})
                if code != 202 or not answer["redriven"]:
                    problems.append(f"redrive {k}: {code} {answer}")
            elif status["complete"]:
                statuses[k] = status
                del pending[k]
        time.sleep(0.5)
    if pending:
        problems.append(f"not complete after {LOAD_TIMEOUT_S} s: runs {sorted(pending)}")
    return statuses, redriven


def verify(data: Path, run_ids: list[str], statuses: dict[int, dict[str, Any]]) -> list[str]:
    """Status against the Parquet on disk, shard by shard."""
    problems = []
    for k, status in sorted(statuses.items()):
        shards = on_disk(data, run_ids[k])
        counts = {
            "succeeded": sum(s == "succeeded" for s in shards.values()),
            "failed": sum(s.startswith("failed") for s in shards.values()),
            "pending": sum(s == "none" for s in shards.values()),
        }
        if counts != status["shards"]:
            problems.append(f"run {k}: status {status['shards']} but disk {counts}")
        failed = sorted(s for s, v in shards.items() if v.startswith("failed"))
        if failed != status["failed_shards"]:
            problems.append(f"run {k}: failed_shards disagree with disk")
        if status["cancelled"] != (k in CANCELLED):
            problems.append(f"run {k}: cancelled={status['cancelled']}")
    return problems


def main() -> int:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sweeps-load-") as tmp:
        data = Path(tmp) / "data"
        with local_server(data, Path(tmp) / "server.log") as base:
            started = time.monotonic()
            run_ids = submit_all(base, problems)
            submitted = time.monotonic() - started
            statuses, redriven = follow(base, run_ids, started, problems)
            took = time.monotonic() - started
            _, listing = call(base, "GET", "/sweeps?limit=100")
            if [r["run_id"] for r in listing["runs"]] != sorted(run_ids, reverse=True):
                problems.append("GET /sweeps does not list the runs newest first")
        problems += verify(data, run_ids, statuses)
    print(
        f"{RUNS} runs x {SHARDS} shards submitted concurrently in {submitted:.1f} s; "
        f"{len(statuses)} complete in {took:.1f} s "
        f"({len(CANCELLED)} cancelled, {len(redriven)} redriven); connections reset and "
        f"retried: {RESETS[0]}; problems: {len(problems)}"
    )
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
