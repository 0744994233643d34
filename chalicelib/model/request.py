"""A validated sweep request: what the API accepted, the manifest records and a worker runs.

``to_dict`` is its canonical form. ``from_dict`` trusts it: it reads back what this code wrote
after validation (the manifest), so it does not validate again; bodies from outside go through
``validation.validate_request``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.model.sharding import ShardSpec, shard_count
from chalicelib.model.space import ParameterSpace

# The defaults of the request's optional fields, here only: the dataclass, its canonical form
# and the validator all read them.
DEFAULT_SEED = 0
TOLERATE_ALL = 100  # tolerated_failure_percentage that never cancels a run


@dataclass(frozen=True)
class Limits:
    """What a stage allows; the worker re-parses a request with ``None`` (the parent checked)."""

    max_points: int
    max_shards: int
    allow_fault_injection: bool


@dataclass(frozen=True)
class SweepRequest:
    simulation: str
    space: ParameterSpace
    shards: ShardSpec
    seed: int = DEFAULT_SEED
    label: str | None = None
    fail_shards: tuple[int, ...] = ()
    # Fault injection (contract): workers of these shards raise an unhandled error on every
    # attempt, so Lambda retries them and hands them to the failure recorder (OnFailure).
    crash_shards: tuple[int, ...] = ()
    # Once final failures exceed this share of the shards, the run is cancelled (contract:
    # "Every run finishes"); TOLERATE_ALL never triggers.
    tolerated_failure_percentage: float = TOLERATE_ALL
    # Take points earlier runs of this stage computed (same simulation, version, seed and
    # effective parameters) instead of evaluating them (contract: "Reuse").
    reuse: bool = False

    @property
    def total_points(self) -> int:
        return self.space.size

    @property
    def shard_count(self) -> int:
        return shard_count(self.total_points, self.shards)

    def to_dict(self) -> dict[str, Any]:
        """Canonical form: what the manifest records and the worker re-parses."""
        body: dict[str, Any] = {
            "simulation": self.simulation,
            "parameters": self.space.to_dict(),
            "shards": self.shards.to_dict(),
            "seed": self.seed,
        }
        if self.space.sample is not None:
            body["sample"] = self.space.sample.to_dict()
        if self.space.replicates != 1:
            body["replicates"] = self.space.replicates
        if self.label is not None:
            body["label"] = self.label
        if self.fail_shards:
            body["fail_shards"] = list(self.fail_shards)
        if self.crash_shards:
            body["crash_shards"] = list(self.crash_shards)
        if self.tolerated_failure_percentage != TOLERATE_ALL:
            body["tolerated_failure_percentage"] = self.tolerated_failure_percentage
        if self.reuse:
            body["reuse"] = True
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> SweepRequest:
        """The canonical form back into a request; for data this project wrote itself."""
        return cls(
            simulation=body["simulation"],
            space=ParameterSpace.from_request(
                body["parameters"],
                body.get("sample"),
                body.get("replicates", 1),
                body.get("seed", 0),
                body["simulation"],
            ),
            shards=ShardSpec.from_dict(body["shards"]),
            seed=body.get("seed", DEFAULT_SEED),
            label=body.get("label"),
            fail_shards=tuple(body.get("fail_shards", ())),
            crash_shards=tuple(body.get("crash_shards", ())),
            tolerated_failure_percentage=body.get("tolerated_failure_percentage", TOLERATE_ALL),
            reuse=body.get("reuse", False),
        )
