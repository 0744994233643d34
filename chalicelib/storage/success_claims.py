"""A shard's success lock: what it holds, written by the worker (``OutcomeWriter``) and read by
it and by status (``storage.summary.successes_on_their_way``), in one place.

The lock is claimed by conditional create. It holds the attempt number of the shard's one
success and, when its writer gave one, until when that invocation may still be at work (epoch
ms): a success still being written keeps its shard pending rather than letting a final
failure recorded meanwhile freeze the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    attempt: int
    writing_until_ms: int | None = None

    def encode(self) -> bytes:
        claim: dict[str, int] = {"attempt": self.attempt}
        if self.writing_until_ms is not None:
            claim["writing_until_ms"] = self.writing_until_ms
        return json.dumps(claim).encode()

    def writing_at(self, now_ms: int) -> bool:
        """Whether its writer may still be at work at ``now_ms``."""
        return self.writing_until_ms is not None and self.writing_until_ms > now_ms


def decode(data: bytes) -> Claim:
    """A lock's claim; ValueError if it holds none."""
    try:
        claim = json.loads(data)
        until = claim.get("writing_until_ms")
        return Claim(int(claim["attempt"]), until if isinstance(until, int) else None)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a success claim: {data[:80]!r}") from exc
