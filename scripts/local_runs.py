"""Real outputs of a local run: every shard goes through the worker into a LocalStore.

Used by bench/queries.py and by the analytics tests, so that the queries are measured and
checked against exactly what workers write, not against hand-made files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.execution.worker import run_task
from chalicelib.model.events import run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits, SweepRequest
from chalicelib.model.validation import validate_request
from chalicelib.storage import layout, manifests
from chalicelib.storage.stores import LocalStore, ObjectStore


def manifest_of(request: SweepRequest, run_id: str, dt: str) -> Manifest:
    """The manifest the API would store for this request, created at midnight UTC of ``dt``,
    with limits that admit it (fault injection allowed)."""
    created = datetime.fromisoformat(dt).replace(tzinfo=UTC)
    limits = Limits(request.total_points, request.shard_count, allow_fault_injection=True)
    return Manifest.new(run_id, created, "bench", request, limits)


def shard_payload(request: SweepRequest, run_id: str, dt: str, shard_id: int) -> dict[str, Any]:
    """Shard ``shard_id``'s event, as a dispatcher builds it (``events.run_task_payload``)."""
    return run_task_payload(manifest_of(request, run_id, dt), shard_id)


def run_shards(
    store: ObjectStore,
    request: SweepRequest,
    run_id: str,
    dt: str,
    shard_ids: Iterable[int] | None = None,
) -> list[dict[str, Any]]:
    """Deliver each shard's task once to the worker, in order; returns the worker summaries."""
    wanted = set(shard_ids) if shard_ids is not None else None
    return [
        run_task(
            shard_payload(request, run_id, dt, k),
            None,
            store,
            0,
        )
        for k in range(request.shard_count)
        if wanted is None or k in wanted
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
    """Run every shard of a sweep request into the data root ``root``, after storing the run's
    manifest as the API would (workers read it, e.g. for the failure threshold)."""
    request = validate_request(body, None)
    store = LocalStore(root)
    if not store.exists(layout.manifest(run_id)):
        manifests.save(store, manifest_of(request, run_id, dt))
    ids = list(range(request.shard_count))
    if processes <= 1:
        run_shards(store, request, run_id, dt)
        return request
    chunks = [ids[i :: processes * 4] for i in range(processes * 4)]
    with ProcessPoolExecutor(processes) as pool:
        jobs = [(str(root), body, run_id, dt, chunk) for chunk in chunks if chunk]
        for done in pool.map(_run_slice, jobs):
            if progress is not None:
                progress(done)
    return request
