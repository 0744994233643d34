"""GET /sweeps: the runs, newest first, a page at a time, from the run index.

The index holds one empty object per run whose key sorts newest first and carries what the
listing shows (``layout.run_index``), so a page costs one listing that stops after ``limit``
keys (S3 starts it at the page token with ``StartAfter``), plus, for each run on the page
(the runs at once where the store gains from it), a HEAD of its cancel marker and the progress
read status uses (``summary.run_progress``: a complete run's summary, else its listings). No
manifest is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from chalicelib.fanout.invoking import Invoker, compactor_trigger
from chalicelib.model import ids
from chalicelib.model.errors import InvalidRequest, Problem
from chalicelib.storage import layout
from chalicelib.storage.cancel_marker import is_cancelled
from chalicelib.storage.stores import ObjectStore
from chalicelib.storage.summary import run_progress

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def list_runs(
    store: ObjectStore, params: Mapping[str, str] | None, invoker: Invoker | None = None
) -> dict[str, Any]:
    """``invoker``: where a run this page finds complete is handed to the compactor."""
    params = params or {}
    limit = _limit(params.get("limit"))
    token = params.get("next")
    if token is None:
        listing = store.list(layout.RUN_INDEX)
    elif ids.is_run_id(token):
        listing = store.list_after(layout.RUN_INDEX, layout.run_index_after(token))
    else:
        raise InvalidRequest("malformed next token", [Problem("/next", "use the last page's next")])
    entries: list[layout.RunIndexEntry] = []
    for obj in listing:
        if (entry := layout.parse_run_index(obj.key)) is not None:
            entries.append(entry)
            if len(entries) > limit:
                break
    page = entries[:limit]
    with ThreadPoolExecutor(max(1, min(store.request_parallelism, len(page)))) as pool:
        runs = list(pool.map(lambda entry: _summary(store, entry, invoker), page))
    return {
        "runs": runs,
        "next": page[-1].run_id if len(entries) > limit else None,
    }


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT):
        raise InvalidRequest(
            "limit must be an integer from 1 to 100", [Problem("/limit", f"got {raw[:20]!r}")]
        )
    return int(raw)


def _summary(
    store: ObjectStore, entry: layout.RunIndexEntry, invoker: Invoker | None
) -> dict[str, Any]:
    trigger = compactor_trigger(invoker)
    complete = run_progress(store, entry.run_id, entry.shard_count, trigger).complete
    return {
        "run_id": entry.run_id,
        "label": entry.label,
        "simulation": entry.simulation,
        "created_at": created_at(entry.run_id),
        "shard_count": entry.shard_count,
        "complete": complete,
        "cancelled": is_cancelled(store, entry.run_id),
    }


def created_at(run_id: str) -> str | None:
    """The creation time a server-made run id starts with (``ids.new_run_id``)."""
    try:
        when = datetime.strptime(run_id[:18], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + run_id[15:18] + "Z"
