"""S3 under a burst: a store that answers SlowDown to every request above a sustained rate per
prefix, and 300 workers finishing together (16 at once, as a burst of Lambda workers would):
the run still ends complete with every shard succeeded once, because every request goes
through ``PacedStore`` (what the deployed wiring wraps S3 in)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.execution.worker import run_task
from chalicelib.runs.status import status
from chalicelib.storage import layout
from chalicelib.storage.pacing import PacedStore
from chalicelib.storage.stores import CountingStore, ObjectStore, S3Store, SlowDown, StorageError
from chalicelib.wiring import build
from tests.support.inline import Inline
from tests.support.store_models import S3LatencyStore, SlowDownStore

SHARDS = 300


def test_a_burst_against_a_throttling_store_ends_with_every_shard_succeeded() -> None:
    throttling = SlowDownStore(rate=150)
    store = PacedStore(throttling)  # the deployed defaults
    inline = Inline(store)
    held: list[dict[str, Any]] = []
    inline.worker = held.append  # hold the workers' events back, then release them at once
    run_id = inline.submit(
        {
            "simulation": "monte_carlo_pi",
            "parameters": {"samples": {"range": {"start": 10, "stop": 10 + SHARDS, "step": 1}}},
            "shards": {"count": SHARDS},
        }
    )
    inline.drain()
    assert len(held) == SHARDS

    def work(payload: dict[str, Any]) -> str:
        summary: dict[str, Any] = run_task(payload, None, store, 0)
        return str(summary["status"])

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(work, held)) == {"succeeded"}
    assert throttling.refused > 100 and store.throttled >= throttling.refused

    answer = status(store, run_id)
    assert answer["complete"] and answer["shards"]["succeeded"] == SHARDS
    assert successes(store, run_id) == SHARDS


def successes(store: ObjectStore, run_id: str) -> int:
    """Success outcomes on disk, each with its results file of the right size."""
    found = 0
    for obj in store.list(layout.outcomes_prefix(run_id)):
        key = layout.parse_outcome(obj.key)
        assert key is not None and key.status == "succeeded" and key.attempt == 1
        row = pq.read_table(io.BytesIO(store.get(obj.key))).to_pylist()[0]
        results = pq.read_metadata(io.BytesIO(store.get(row["results_key"])))
        assert results.num_rows == row["results_rows"] == row["point_count"]
        found += 1
    return found


def test_the_deployed_wiring_paces_its_s3_store() -> None:
    from chalicelib.config import Settings

    settings = Settings(
        backend="aws", bucket="b", worker_function="w", dispatcher_function="d", stage="dev"
    )
    assert isinstance(build(settings).store, PacedStore)


def test_s3s_slow_down_answer_is_what_the_pacing_retries(s3_store: S3Store) -> None:
    """A 503 SlowDown from S3 (after botocore's own retries) surfaces as ``SlowDown``; any
    other error stays a plain StorageError, which the pacing does not retry."""
    answers = iter(["SlowDown", "SlowDown", "InternalError"])

    def throttle(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        code = next(answers, "SlowDown")
        parsed = {"Error": {"Code": code, "Message": "Please reduce your request rate."}}
        return AWSResponse(params["url"], 503, {}, None), parsed | {
            "ResponseMetadata": {"HTTPStatusCode": 503}
        }

    s3_store.client.meta.events.register("before-call.s3.PutObject", throttle)
    with pytest.raises(SlowDown):
        s3_store.put("runs/x", b"")
    answers = iter(["SlowDown", "SlowDown", "SlowDown", "SlowDown", "SlowDown", "InternalError"])
    with pytest.raises(StorageError) as raised:
        PacedStore(s3_store, sleep=lambda _: None).put("runs/x", b"")
    assert not isinstance(raised.value, SlowDown)  # retried through the throttling only


def test_the_deployed_wrappers_delete_a_thousand_keys_a_request() -> None:
    """A compaction's clean-up goes through ``CountingStore(PacedStore(S3))`` on a deployed
    stage: 2,500 keys must take 3 DeleteObjects, not 2,500 DELETEs (100,000 of them would
    outlast the compactor's timeout)."""
    s3 = S3LatencyStore(latency_s=0)
    keys = [f"results/run_id=x/shard-{k:06d}.parquet" for k in range(2500)]
    for key in keys:
        s3.put(key, b"")
    before = s3.requests
    CountingStore(PacedStore(s3)).delete_many(keys)
    assert s3.requests - before == 3
    assert list(s3.list("results/")) == []


class ThrottledOnce(S3LatencyStore):
    """DeleteObjects answered SlowDown on its first request (S3 scaling the prefix up)."""

    def __init__(self) -> None:
        super().__init__(latency_s=0)
        self.batches: list[int] = []

    def delete_many(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        self.batches.append(len(batch))
        if len(self.batches) == 1:
            raise SlowDown("SlowDown")
        super().delete_many(batch)


def test_a_throttled_delete_batch_is_sent_again_whole() -> None:
    s3 = ThrottledOnce()
    keys = [f"r/{k:05d}" for k in range(1500)]
    for key in keys:
        s3.put(key, b"")
    PacedStore(s3, sleep=lambda _: None).delete_many(keys)
    assert s3.batches == [1000, 1000, 500]  # the first batch again, then the rest
    assert list(s3.list("r/")) == []
