"""What several test modules share: the contract's example sweep, Lambda's OnFailure record as
its documentation gives it, and stores that fail the way S3 sometimes does."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from chalicelib.config import PROJECT_ROOT
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore, ObjectStore, StorageError

# The contract's POST /sweeps example, also what `make demo` submits.
CONTRACT_EXAMPLE: dict[str, Any] = json.loads(
    (PROJECT_ROOT / "examples" / "option-pricing.json").read_text()
)

BUCKET = "sweeps-test"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:sweeps-dev-worker:$LATEST"
REQUEST_ID = "c0ffee00-0000-4000-8000-000000000001"


def destination_record(
    payload: Any,
    condition: str = "RetriesExhausted",
    invokes: int = 3,
    response: dict[str, Any] | None = None,
    failed_at: datetime | None = None,
) -> dict[str, Any]:
    """An OnFailure record in the shape Lambda documents (written out here, independently of
    the local stage's own builder, so the recorder is tested against the documentation)."""
    when = failed_at or (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=123000)
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": REQUEST_ID,
            "functionArn": FUNCTION_ARN,
            "condition": condition,
            "approximateInvokeCount": invokes,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
    }
    if response is not None:
        record["responseContext"]["functionError"] = "Unhandled"
        record["responsePayload"] = response
    return record


class ResultsFailingStore(LocalStore):
    """A real local store whose results writes fail while ``failing`` is set."""

    failing = False

    def create(self, key: str, data: bytes) -> bool:
        if self.failing and key.startswith("results/"):
            raise StorageError(f"create {key}: injected")
        return super().create(key, data)

    def create_file(self, key: str, path: Path) -> bool:
        if self.failing and key.startswith("results/"):
            raise StorageError(f"create {key}: injected")
        return super().create_file(key, path)


class FirstCreateFailingStore(LocalStore):
    """Fails the first create of each given key, as S3 sometimes does (SlowDown)."""

    def __init__(self, root: Path, keys: set[str]) -> None:
        super().__init__(root)
        self.keys = set(keys)

    def create(self, key: str, data: bytes) -> bool:
        if key in self.keys:
            self.keys.discard(key)
            raise StorageError(f"create {key}: SlowDown")
        return super().create(key, data)

    def create_file(self, key: str, path: Path) -> bool:
        if key in self.keys:
            self.keys.discard(key)
            raise StorageError(f"create {key}: SlowDown")
        return super().create_file(key, path)


def failed_codes(store: ObjectStore, run_id: str) -> dict[int, list[str]]:
    """shard -> error codes of its failed outcomes, read from the Parquet rows."""
    found: dict[int, list[str]] = {}
    for obj in store.list(layout.outcomes_prefix(run_id)):
        key = layout.parse_outcome(obj.key)
        if key is not None and key.status == "failed":
            row = pq.read_table(io.BytesIO(store.get(obj.key))).to_pylist()[0]
            found.setdefault(key.shard_id, []).append(row["error_code"])
    return found
