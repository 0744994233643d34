"""The local stage's Lambda stand-in: real processes, Lambda's retry-then-OnFailure semantics."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from chalicelib.config import PROJECT_ROOT, Settings
from chalicelib.execution.worker import run_task
from chalicelib.fanout.local_lambda import GROUP_EVENTS, GROUP_POINTS, LocalInvoker
from chalicelib.fanout.reconcile import reconcile_run
from chalicelib.logs import logger
from chalicelib.model.validation import validate_request
from chalicelib.pricing import PRICES
from chalicelib.runs import status as run_status
from chalicelib.runs.submit import submit as submit_run
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore
from scripts.local_runs import shard_payload
from tests.support.inline import QueueInvoker

RUN_ID = "20261126T000000000Z-0123456789ab"
SWEEP = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"values": [100, 200, 300, 400, 500, 600]}},
    "shards": {"count": 3},
    "fail_shards": [1],
}


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[Settings, LocalStore, LocalInvoker]]:
    settings = Settings(
        local_root=tmp_path / "data",
        dispatch_leaf_shards=2,
        dispatch_width=2,
        allow_fault_injection=True,  # as on the local stage
    )
    store = LocalStore(settings.local_root)
    invoker = LocalInvoker(settings, store)
    yield settings, store, invoker
    invoker.close()


def submit(settings: Settings, store: LocalStore, invoker: LocalInvoker) -> str:
    answer = submit_run(settings, store, invoker, SWEEP)
    run_id: str = answer["run_id"]
    return run_id


def test_a_run_completes_through_the_process_pool(
    local: tuple[Settings, LocalStore, LocalInvoker],
) -> None:
    settings, store, invoker = local
    run_id = submit(settings, store, invoker)
    assert invoker.wait_idle(120)
    status = run_status.status(store, run_id)
    assert status["shards"] == {"succeeded": 2, "failed": 1, "pending": 0}
    assert status["dispatch"] == {"dispatched": 3, "failed": 0}


def test_storage_failures_are_retried_then_recorded_as_final(
    local: tuple[Settings, LocalStore, LocalInvoker],
) -> None:
    settings, store, invoker = local
    (settings.local_root).mkdir(parents=True)
    (settings.local_root / "results").write_text("a file where a folder must be")
    run_id = submit(settings, store, invoker)
    assert invoker.wait_idle(120)

    status = run_status.status(store, run_id)
    assert status["complete"] and status["failed_shards"] == [0, 1, 2]
    rows: dict[int, list[dict[str, Any]]] = {}
    for obj in store.list(layout.outcomes_prefix(run_id)):
        table = pq.read_table(io.BytesIO(store.get(obj.key)))
        row = table.to_pylist()[0]
        rows.setdefault(row["shard_id"], []).append(row)
    injected = rows.pop(1)
    assert [r["error_code"] for r in injected] == ["INJECTED_FAILURE"]
    for shard_rows in rows.values():
        by_attempt = sorted(shard_rows, key=lambda r: r["attempt"])
        codes = [(r["attempt"], r["error_code"], r["retryable"]) for r in by_attempt]
        # the first delivery claimed the success (attempt 1); three storage failures, then the
        # failure recorder's final outcome
        assert codes == [
            (2, "STORAGE_ERROR", True),
            (3, "STORAGE_ERROR", True),
            (4, "STORAGE_ERROR", True),
            (5, "RETRIES_EXHAUSTED", False),
        ]
        assert "3 invocation(s)" in by_attempt[-1]["error_message"]


@contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """The JSON lines the powertools logger writes while the block runs."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = handler.setStream(buffer)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        handler.setStream(stream)
        lines.extend(json.loads(line) for line in buffer.getvalue().splitlines() if line.strip())


def shard_task(shard_id: int = 0) -> dict[str, Any]:
    return shard_payload(validate_request(SWEEP, None), RUN_ID, "2026-11-26", shard_id)


def test_each_finished_shard_logs_one_json_line_naming_its_shard_only_while_it_runs(
    local: tuple[Settings, LocalStore, LocalInvoker],
) -> None:
    _, store, _ = local
    with captured_logs() as lines:
        run_task(shard_task(), None, store, 1000)
        logger.info("after the task")
    finished = [line for line in lines if line.get("message") == "shard finished"]
    assert len(finished) == 1
    assert {"run_id", "shard_id", "attempt", "duration_ms", "status", "level"} <= set(finished[0])
    assert finished[0]["shard_id"] == 0 and finished[0]["attempt"] == 1
    assert finished[0]["run_id"] == RUN_ID
    after = [line for line in lines if line.get("message") == "after the task"]
    assert len(after) == 1 and "run_id" not in after[0] and "shard_id" not in after[0]


def test_lambda_functions_log_cold_start_and_request_id(
    local: tuple[Settings, LocalStore, LocalInvoker],
) -> None:
    """Through Chalice's Lambda test client: Powertools' inject_lambda_context adds the
    invocation's context to every line."""
    from chalice.test import Client

    from app import app
    from chalicelib import wiring

    settings, store, invoker = local
    wiring.use(wiring.Runtime(settings, store, invoker))
    try:
        client = Client(app, stage_name="local", project_dir=str(PROJECT_ROOT))
        with client, captured_logs() as lines:
            client.lambda_.invoke("worker", shard_task(1))
    finally:
        wiring.use(None)
    finished = [line for line in lines if line.get("message") == "shard finished"]
    assert len(finished) == 1
    assert {"cold_start", "function_request_id", "function_name"} <= set(finished[0])
    assert finished[0]["shard_id"] == 1


ORPHAN_SCRIPT = """
import multiprocessing, os, sys
from concurrent.futures import ProcessPoolExecutor
from chalicelib.fanout.local_lambda import pool_context, watch_parent

if __name__ == "__main__":
    context = pool_context() if sys.argv[1] == "stage" else multiprocessing.get_context("spawn")
    alive, _ = multiprocessing.Pipe(duplex=False)  # as LocalInvoker holds it
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=watch_parent, initargs=(alive,))
    print(pool.submit(os.getpid).result(), flush=True)
    os._exit(0)  # as if killed: no clean-up runs
"""


@pytest.mark.parametrize("context", ["stage", "spawn"])
def test_pool_workers_do_not_outlive_a_killed_server(tmp_path: Path, context: str) -> None:
    """With the stage's own context (a fork server, whose children are not the server's) and
    with spawn (the fallback where there is no fork server)."""
    script = tmp_path / "server.py"
    script.write_text(ORPHAN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    out = tmp_path / "out.txt"
    with out.open("w") as sink:  # a file, not a pipe: an orphan would hold a pipe open
        subprocess.run([sys.executable, str(script), context], stdout=sink, env=env, check=True)
    worker = int(out.read_text().split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not alive(worker):
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError(f"worker {worker} outlived its server")


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_restarted_stage_redrives_the_runs_of_the_stage_it_replaced_at_once(
    tmp_path: Path,
) -> None:
    """A run whose events died with the process that queued them (here: queued on an invoker
    nobody runs) is re-dispatched by the next process's first reconciler pass, with the
    stall timeout at the local default: that process knows nothing of the run is in flight.
    A run of its own with nothing in flight is not orphaned (its events may be on their way)."""
    settings = Settings.from_env({"SWEEP_LOCAL_ROOT": str(tmp_path / "data")})
    assert settings.stall_timeout_s == 120  # the local default
    store = LocalStore(settings.local_root)
    old = submit_run(settings, store, QueueInvoker(), SWEEP)["run_id"]
    time.sleep(0.01)
    invoker = LocalInvoker(settings, store)
    try:
        mine = submit_run(settings, store, QueueInvoker(), SWEEP)["run_id"]
        actions = {
            run_id: reconcile_run(store, invoker, settings, run_id) for run_id in (old, mine)
        }
        assert actions == {old: "redriven", mine: "progressing"}
        assert invoker.wait_idle(120)
        after = run_status.status(store, old)
        assert after["complete"] and after["auto_redrives"] == 1
        assert after["shards"] == {"succeeded": 2, "failed": 1, "pending": 0}
    finally:
        invoker.close()


def test_a_crashed_shard_is_billed_once_per_try_at_the_timeout_and_flagged(
    local: tuple[Settings, LocalStore, LocalInvoker],
) -> None:
    """crash_shards on the local stand-in: every try raises (the worker's own record) and then
    the failure recorder charges each try the timeout. The cost counts each try once."""
    settings, store, invoker = local
    body = {k: v for k, v in SWEEP.items() if k != "fail_shards"} | {"crash_shards": [1]}
    run_id = submit_run(settings, store, invoker, body)["run_id"]
    assert invoker.wait_idle(120)
    status = run_status.status(store, run_id)
    assert status["complete"] and status["failed_shards"] == [1]
    tries = settings.worker_max_attempts
    raised = [k for k in keys_under(store, layout.usage_prefix(run_id)) if "-raised~" in k]
    assert len(raised) == tries  # the double count's source: each try also recorded itself

    worker = status["cost"]["by_function"]["worker"]
    assert worker["invocations"] == 2 + tries and worker["bounded"] == tries
    assert status["cost"]["upper_bound"] is True
    timeout = 900 * 1769 / 1024  # the local stage's worker: 900 s at 1,769 MB
    assert tries * timeout <= worker["lambda_gb_s"] < (tries + 1) * timeout


def test_the_run_cost_query_agrees_with_the_status_cost_on_every_function(
    local: tuple[Settings, LocalStore, LocalInvoker],
) -> None:
    """athena/run_cost.sql (Athena SQL, through sqlglot onto DuckDB: the local engine) and GET
    /sweeps/<id>'s cost on the same run: a dispatcher tree (leaves of 2 shards), workers, a
    crashed shard (its tries at the timeout) and a failed one."""
    from sweeps.engines.local import LocalEngine

    settings, store, invoker = local
    body = SWEEP | {"shards": {"count": 6}, "crash_shards": [4]}
    run_id = submit_run(settings, store, invoker, body)["run_id"]
    assert invoker.wait_idle(120)
    cost = run_status.status(store, run_id)["cost"]
    assert set(cost["by_function"]) == {"dispatcher", "worker"}
    rows = LocalEngine(settings.local_root).run("run_cost", run_id=run_id).rows
    by_name = {r["function_name"]: r for r in rows}
    assert [r["function_name"] for r in rows] == ["dispatcher", "worker", "total"]
    for name, fn in cost["by_function"].items():
        row = by_name[name]
        assert row["invocations"] == fn["invocations"] and row["bounded"] == fn["bounded"]
        assert row["s3_requests"] == fn["s3_requests"]
        assert row["lambda_gb_s"] == pytest.approx(fn["lambda_gb_s"], abs=1e-6)
    total = by_name["total"]
    assert total["invocations"] == cost["invocations"]
    assert total["s3_requests"] == cost["s3_requests"] and total["upper_bound"] is True
    assert total["lambda_gb_s"] == pytest.approx(cost["lambda_gb_s"], abs=1e-6)
    assert total["usd"] == pytest.approx(cost["usd"], abs=1e-9)
    # Reads and writes priced apart: the total is not the all-writes price of the requests.
    reads, writes = total["s3_reads"], total["s3_writes"]
    assert reads > 0 and writes > 0 and reads + writes == total["s3_requests"]
    s3_usd = reads * PRICES.s3_read_request + writes * PRICES.s3_write_request
    lambda_usd = total["lambda_gb_s"] * PRICES.lambda_gb_second
    assert total["usd"] == pytest.approx(
        lambda_usd + total["invocations"] * PRICES.lambda_request + s3_usd
    )
    assert all(r["prices"] == PRICES.id for r in rows)


def keys_under(store: LocalStore, prefix: str) -> list[str]:
    return [o.key for o in store.list(prefix)]


def busy_pool_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> tuple[LocalStore, str, list[int], int]:
    """``body`` submitted to a one-process local stage whose pool has no room until every
    shard's delivery waits: the sizes of the groups handed to the pool, in order."""
    settings = Settings(local_root=tmp_path / "data", local_processes=1, allow_fault_injection=True)
    store = LocalStore(settings.local_root)
    invoker = LocalInvoker(settings, store)
    sizes: list[int] = []
    submit_group = invoker._submit_group

    def spy(group: list[Any]) -> None:
        sizes.append(len(group))
        submit_group(group)

    monkeypatch.setattr(invoker, "_submit_group", spy)
    try:
        for _ in range(2 * settings.local_processes):  # two groups a process: none fits
            invoker._slots.acquire()
        run_id: str = submit_run(settings, store, invoker, body)["run_id"]
        shards = body["shards"]["count"]
        deadline = time.monotonic() + 60
        while invoker._waiting.qsize() < shards and time.monotonic() < deadline:
            time.sleep(0.01)
        assert invoker._waiting.qsize() == shards
        for _ in range(2 * settings.local_processes):
            invoker._slots.release()
        assert invoker.wait_idle(120)
    finally:
        invoker.close()
    return store, run_id, sizes, settings.worker_max_attempts


def test_waiting_deliveries_go_to_the_pool_in_groups_each_event_its_own_invocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 one-point shards waiting for a busy pool go as a group of ``GROUP_EVENTS`` and one of
    the rest, each event run as its own invocation: the shard that crashes fails alone, its
    group-mates each succeed at their first attempt, and only it is retried (a group of one a
    retry) until its final failure."""
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 1, "stop": 41, "step": 1}}},
        "shards": {"count": 40},
        "crash_shards": [5],
    }
    store, run_id, sizes, attempts = busy_pool_run(tmp_path, monkeypatch, body)
    assert sizes == [GROUP_EVENTS, 40 - GROUP_EVENTS] + [1] * (attempts - 1)
    status = run_status.status(store, run_id)
    assert status["shards"] == {"succeeded": 39, "failed": 1, "pending": 0}
    assert status["failed_shards"] == [5]
    succeeded = store.list_keys(f"outcomes/run_id={run_id}/status=succeeded/")
    assert len(succeeded) == 39 and all(k.endswith("-attempt-1.parquet") for k in succeeded)
    failed = store.list_keys(f"outcomes/run_id={run_id}/status=failed/")
    assert failed and all("/shard-000005-" in k for k in failed)


def test_a_group_ends_at_its_points_so_large_shards_go_alone_or_in_pairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards of 600 points go two by two (a group's ``GROUP_POINTS``, 1,000, is reached at
    its second); shards of 1,000 points go alone."""
    assert GROUP_POINTS == 1_000
    for shards, per_shard, expected in ((6, 600, [2, 2, 2]), (3, 1_000, [1, 1, 1])):
        body = {
            "simulation": "monte_carlo_pi",
            "parameters": {
                "samples": {"range": {"start": 1, "stop": shards * per_shard + 1, "step": 1}}
            },
            "shards": {"count": shards},
        }
        _, _, sizes, _ = busy_pool_run(tmp_path / str(per_shard), monkeypatch, body)
        assert sizes == expected
