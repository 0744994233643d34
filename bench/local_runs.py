"""Real outputs of a local run: every shard goes through the worker into a LocalStore.

Used by bench/queries.py and by the analytics tests, so that the queries are measured and
checked against exactly what workers write, not against hand-made files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from chalicelib.partitioner import plan_shards
from chalicelib.stores import LocalStore, ObjectStore
from chalicelib.task import ShardTask
from chalicelib.validator import SweepRequest, validate_request
from chalicelib.worker import run_task


def shard_payload(request: SweepRequest, run_id: str, dt: str, shard_id: int) -> dict[str, Any]:
    shard = plan_shards(request.total_points, request.shards)[shard_id]
    return ShardTask(run_id, shard.shard_id, shard.start, shard.end, dt, request).to_payload()


def run_shards(
    store: ObjectStore,
    request: SweepRequest,
    run_id: str,
    dt: str,
    shard_ids: Iterable[int] | None = None,
) -> list[dict[str, Any]]:
    """Deliver each shard's task once to the worker, in order; returns the worker summaries."""
    shards = plan_shards(request.total_points, request.shards)
    wanted = set(shard_ids) if shard_ids is not None else None
    return [
        run_task(
            ShardTask(run_id, s.shard_id, s.start, s.end, dt, request).to_payload(),
            None,
            store,
            0,
        )
        for s in shards
        if wanted is None or s.shard_id in wanted
    ]


def _run_slice(args: tuple[str, dict[str, Any], str, str, list[int]]) -> int:
    root, body, run_id, dt, shard_ids = args
    from chalicelib.logs import logger

    logger.setLevel("WARNING")
    request = validate_request(body, None)
    return len(run_shards(LocalStore(Path(root)), request, run_id, dt, shard_ids))


def run_sweep(
    root: Path,
    body: dict[str, Any],
    run_id: str,
    dt: str,
    *,
    processes: int = 1,
    progress: Callable[[int], None] | None = None,
) -> SweepRequest:
    """Run every shard of a sweep request into the data root ``root``."""
    request = validate_request(body, None)
    ids = [s.shard_id for s in plan_shards(request.total_points, request.shards)]
    if processes <= 1:
        run_shards(LocalStore(root), request, run_id, dt)
        return request
    chunks = [ids[i :: processes * 4] for i in range(processes * 4)]
    with ProcessPoolExecutor(processes) as pool:
        jobs = [(str(root), body, run_id, dt, chunk) for chunk in chunks if chunk]
        for done in pool.map(_run_slice, jobs):
            if progress is not None:
                progress(done)
    return request
