"""Storing and finding run manifests: one object per run, created once, never overwritten."""

from __future__ import annotations

import json

from chalicelib.model import ids
from chalicelib.model.errors import NotFound, Problem
from chalicelib.model.manifest import Manifest
from chalicelib.storage import layout
from chalicelib.storage.stores import ObjectStore


def save(store: ObjectStore, manifest: Manifest) -> None:
    """The manifest, then the run's two index keys: its entry in the newest-first run index
    (GET /sweeps lists it without reading manifests) and its open-run marker (the reconciler
    looks only at open runs). A crash between the writes leaves a run the listing or the
    reconciler does not see, never an index entry without a manifest."""
    data = json.dumps(manifest.to_dict(), indent=1).encode()
    if not store.create(layout.manifest(manifest.run_id), data):
        raise RuntimeError(f"run {manifest.run_id} already has a manifest")
    request = manifest.request
    entry = layout.RunIndexEntry(
        manifest.run_id, request.shard_count, request.simulation, request.label
    )
    store.create(layout.run_index(entry), b"")
    store.create(layout.open_run(manifest.run_id), b"{}")


def load(store: ObjectStore, run_id: str) -> Manifest:
    """The run's manifest; 404 if there is none. An id no run can have is a 404 too (the
    contract's GET /sweeps/{run_id} answers 200 or 404), and never reaches a key."""
    if not ids.is_run_id(run_id):
        raise NotFound(
            f"no run {run_id[:70]!r}: run ids match {ids.RUN_ID_RE.pattern}",
            [Problem("/run_id", f"run ids match {ids.RUN_ID_RE.pattern}")],
        )
    try:
        return Manifest.from_dict(json.loads(store.get(layout.manifest(run_id))))
    except KeyError:
        raise NotFound(f"no run {run_id}") from None
