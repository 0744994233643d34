"""What a dispatcher invocation is asked to do; kept apart so the API path can hand a run over
without importing the dispatcher (and with it pyarrow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib import layout

INITIAL = "initial"


@dataclass(frozen=True)
class DispatchJob:
    """Positions ``[lo, hi)`` of a job's shard list: all shards for the initial job, the
    stored list for a redrive."""

    run_id: str
    job: str
    lo: int
    hi: int

    def to_payload(self) -> dict[str, Any]:
        return {"dispatch": {"run_id": self.run_id, "job": self.job, "lo": self.lo, "hi": self.hi}}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> DispatchJob:
        d = payload["dispatch"]
        job = cls(str(d["run_id"]), str(d["job"]), int(d["lo"]), int(d["hi"]))
        layout.dispatch_prefix(job.run_id, job.job)  # rejects malformed ids
        if not 0 <= job.lo <= job.hi:
            raise ValueError(f"bad dispatch range [{job.lo}, {job.hi})")
        return job
