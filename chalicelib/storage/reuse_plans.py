"""What status needs of a reusing run's plan: how many points each shard copies.

The plan itself (Parquet per shard) is written and read by ``chalicelib.execution.reuse``; its
summary is a small JSON, so the API path reads it without pyarrow.
"""

from __future__ import annotations

import json

from chalicelib.storage import layout
from chalicelib.storage.stores import ObjectStore


def reuse_counts(store: ObjectStore, run_id: str) -> dict[int, int]:
    """Points each shard copies, from the plan's summary (one GET of a small JSON); empty
    while the plan is not written, or when planning failed (then every point is evaluated)."""
    try:
        summary = json.loads(store.get(layout.reuse_plan(run_id)))
    except KeyError:
        return {}
    return {int(shard): count for shard, count in summary["shards"].items()}
