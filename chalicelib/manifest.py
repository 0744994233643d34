"""A run's manifest: written before anything is dispatched, read by dispatchers, status, redrive."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib import layout
from chalicelib.errors import InvalidRequest, NotFound, Problem
from chalicelib.stores import ObjectStore
from chalicelib.validator import Limits, SweepRequest, validate_request


@dataclass(frozen=True)
class Manifest:
    run_id: str
    created_at: datetime
    stage: str
    request: SweepRequest
    limits: Limits

    @property
    def dt(self) -> str:
        """The run's date partition: its creation date (UTC), the same for every file."""
        return self.created_at.astimezone(UTC).strftime("%Y-%m-%d")

    @property
    def created_at_text(self) -> str:
        return self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{self.created_at.microsecond // 1000:03d}Z"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "created_at": self.created_at_text,
            "dt": self.dt,
            "stage": self.stage,
            "request": self.request.to_dict(),
            "plan": {
                "total_points": self.request.total_points,
                "shard_count": self.request.shard_count,
                "shards": self.request.shards.to_dict(),
            },
            "limits": {
                "max_points": self.limits.max_points,
                "max_shards": self.limits.max_shards,
                "allow_fault_injection": self.limits.allow_fault_injection,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            run_id=data["run_id"],
            created_at=datetime.fromisoformat(data["created_at"].replace("Z", "+00:00")),
            stage=data["stage"],
            request=validate_request(data["request"], limits=None),
            limits=Limits(**data["limits"]),
        )


def save(store: ObjectStore, manifest: Manifest) -> None:
    data = json.dumps(manifest.to_dict(), indent=1).encode()
    if not store.create(layout.manifest(manifest.run_id), data):
        raise RuntimeError(f"run {manifest.run_id} already has a manifest")


def load(store: ObjectStore, run_id: str) -> Manifest:
    """The run's manifest; 400 for a malformed id (it never reaches a key), 404 if unknown."""
    if not layout.is_run_id(run_id):
        raise InvalidRequest(
            "malformed run id", [Problem("/run_id", "run ids match ^[A-Za-z0-9-]{8,64}$")]
        )
    try:
        return Manifest.from_dict(json.loads(store.get(layout.manifest(run_id))))
    except KeyError:
        raise NotFound(f"no run {run_id}") from None
