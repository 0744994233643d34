"""A run's manifest: written before anything is dispatched, read by dispatchers, status, redrive.

It keeps the request in canonical form (``request_body``), so dispatchers hand the very same
dict to every worker without re-serialising the parsed request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.model.request import Limits, SweepRequest
from chalicelib.simulations.declarations import Simulation
from chalicelib.simulations.registry import REGISTRY


@dataclass(frozen=True)
class Manifest:
    run_id: str
    created_at: datetime
    stage: str
    request: SweepRequest
    limits: Limits
    request_body: dict[str, Any]  # the request's canonical form, as stored and sent on
    # The simulation's version when the run was accepted: part of every point's stream key.
    simulation_version: str = "1"

    @classmethod
    def new(
        cls, run_id: str, created_at: datetime, stage: str, request: SweepRequest, limits: Limits
    ) -> Manifest:
        version = REGISTRY[request.simulation].version
        return cls(run_id, created_at, stage, request, limits, request.to_dict(), version)

    def simulation_as_accepted(self) -> Simulation | None:
        """The run's simulation as registered here, if at the version the run was accepted
        under; None once that version is gone (bumped since, or no longer registered): its
        points are then neither evaluated nor reused with this deployment's code."""
        sim = REGISTRY.get(self.request.simulation)
        return sim if sim is not None and sim.version == self.simulation_version else None

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
            "simulation_version": self.simulation_version,
            "request": self.request_body,
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
            request=SweepRequest.from_dict(data["request"]),
            limits=Limits(**data["limits"]),
            request_body=data["request"],
            simulation_version=data.get("simulation_version", "1"),
        )
