"""A run's cancel marker: created once, holding the first reason; read where it is cheap.

Workers and dispatch leaves ask with one HEAD before doing work; status and cancel read the
reason with one GET.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from chalicelib.storage import layout
from chalicelib.storage.stores import ObjectStore

USER = "USER"
FAILURE_THRESHOLD = "FAILURE_THRESHOLD"


def cancel_reason(store: ObjectStore, run_id: str) -> str | None:
    """Why the run was cancelled, or None if it was not: one GET of the cancel marker."""
    try:
        data = json.loads(store.get(layout.cancel_marker(run_id)))
    except KeyError:
        return None
    return str(data.get("reason", USER))


def is_cancelled(store: ObjectStore, run_id: str) -> bool:
    """One HEAD: what workers and dispatch leaves ask before doing work."""
    return store.exists(layout.cancel_marker(run_id))


def mark_cancelled(store: ObjectStore, run_id: str, reason: str) -> bool:
    """Record the cancel once; False if the run was already cancelled (the first reason
    stands)."""
    record = {"reason": reason, "at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    return store.create(layout.cancel_marker(run_id), json.dumps(record).encode())
