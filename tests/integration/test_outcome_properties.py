"""Whatever Lambda does (duplicates, storage faults, retries given up), outcomes stay consistent
and status agrees with the Parquet on disk: a property over random event sequences."""

from __future__ import annotations

import io
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.execution.failure_recorder import record_destination
from chalicelib.execution.worker import run_task
from chalicelib.fanout.local_lambda import destination_record
from chalicelib.model.events import run_task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits
from chalicelib.model.validation import validate_request
from chalicelib.runs.status import status
from chalicelib.storage import layout
from chalicelib.storage.manifests import save
from chalicelib.storage.stores import LocalStore, StorageError
from tests.support import ResultsFailingStore

SHARDS = 4
REQUEST = validate_request(
    {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [10, 20, 30, 40, 50, 60, 70, 80]}},
        "shards": {"count": SHARDS},
        "fail_shards": [3],
    },
    None,
)


Event = tuple[str, int]
EVENTS = st.lists(
    st.tuples(st.sampled_from(["deliver", "deliver_faulty", "give_up"]), st.integers(0, 3)),
    max_size=14,
)


def apply(store: ResultsFailingStore, manifest: Manifest, event: Event) -> None:
    kind, shard_id = event
    payload = run_task_payload(manifest, shard_id)
    if kind == "give_up":
        record_destination(destination_record(payload, RuntimeError("crash"), 3), store)
        return
    store.failing = kind == "deliver_faulty"
    try:
        run_task(payload, None, store, 0)
    except StorageError:
        pass
    finally:
        store.failing = False


def rows(store: LocalStore, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for obj in store.list(layout.outcomes_prefix(run_id)):
        key = layout.parse_outcome(obj.key)
        assert key is not None
        row = pq.read_table(io.BytesIO(store.get(obj.key))).to_pylist()[0]
        assert (row["shard_id"], row["attempt"]) == (key.shard_id, key.attempt)
        found.append((key.status, row))
    return found


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_outcomes_stay_consistent_and_status_agrees(events: list[Event]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsFailingStore(Path(tmp))
        manifest = Manifest.new(
            "20261126T000000000Z-0123456789ab",
            datetime(2026, 11, 26, tzinfo=UTC),
            "local",
            REQUEST,
            Limits(10**7, 10**4, True),
        )
        save(store, manifest)
        for event in events:
            apply(store, manifest, event)

        found = rows(store, manifest.run_id)
        expected: dict[str, list[int]] = {"succeeded": [], "failed": [], "pending": []}
        for shard_id in range(SHARDS):
            mine = [(s, r) for s, r in found if r["shard_id"] == shard_id]
            successes = [r for s, r in mine if s == "succeeded"]
            failures = sorted((r for s, r in mine if s == "failed"), key=lambda r: r["attempt"])
            assert len(successes) <= 1
            attempts = [r["attempt"] for r in failures] + [r["attempt"] for r in successes]
            assert len(attempts) == len(set(attempts))  # no attempt number is ever shared
            results = store.exists(layout.results(manifest.run_id, shard_id))
            assert results == bool(successes)
            if successes:
                assert successes[0]["results_rows"] == 2
                expected["succeeded"].append(shard_id)
            elif failures and not failures[-1]["retryable"]:
                expected["failed"].append(shard_id)
            else:
                expected["pending"].append(shard_id)
            if shard_id == 3:
                assert not successes  # the injected failure never succeeds

        answer = status(store, manifest.run_id)
        assert answer["shards"] == {k: len(v) for k, v in expected.items()}
        assert answer["failed_shards"] == expected["failed"]
        assert answer["points_succeeded"] == 2 * len(expected["succeeded"])
        assert json.dumps(answer)  # serialisable as the API answers it


# ------------------------------------------------------------------- two writers, interleaved


class InterleavingStore(LocalStore):
    """Runs a second writer's whole ``record_failure`` at the first writer's ``step``-th store
    call: every point at which a concurrent writer can slip in, in one deterministic test."""

    def __init__(self, root: Path, step: int, rival: Any) -> None:
        super().__init__(root)
        self.calls, self.step, self.rival = 0, step, rival

    def _maybe_interleave(self) -> None:
        self.calls += 1
        if self.calls == self.step and self.rival is not None:
            rival, self.rival = self.rival, None
            rival()

    def create(self, key: str, data: bytes) -> bool:
        self._maybe_interleave()
        return super().create(key, data)

    def put(self, key: str, data: bytes) -> None:
        self._maybe_interleave()
        super().put(key, data)

    def list(self, prefix: str) -> Any:
        self._maybe_interleave()
        return super().list(prefix)


@settings(max_examples=60, deadline=None)
@given(
    first_retryable=st.booleans(),
    second_retryable=st.booleans(),
    step=st.integers(1, 6),
    earlier_failures=st.integers(0, 2),
)
def test_two_interleaved_failure_writers_never_mark_each_others_attempts(
    first_retryable: bool, second_retryable: bool, step: int, earlier_failures: int
) -> None:
    """Every retryable attempt has its retry marker, so status never reads it final; a marker
    on an attempt that is not retryable is only ever the mark a writer that lost that number's
    claim put first (a marker precedes its outcome), and then that writer's own attempt
    follows it, so it is never the shard's latest failure, the one status reads."""
    from chalicelib.execution.failure_codes import FailureCode
    from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing

    codes = {True: FailureCode.STORAGE_ERROR, False: FailureCode.SIMULATION_ERROR}
    ref = ShardRef("20261126T000000000Z-0123456789ab", 1, "2026-11-26", 2, 4, "monte_carlo_pi")
    timing = Timing(datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        plain = OutcomeWriter(LocalStore(Path(tmp)))
        for _ in range(earlier_failures):
            plain.record_failure(ref, codes[False], "earlier", timing, "")
        claimed: dict[str, int] = {}

        def second() -> None:
            claimed["second"] = plain.record_failure(
                ref, codes[second_retryable], "second", timing, "second"
            )

        store = InterleavingStore(Path(tmp), step, second)
        claimed["first"] = OutcomeWriter(store).record_failure(
            ref, codes[first_retryable], "first", timing, "first"
        )
        late, store.rival = store.rival, None
        if late is not None:  # the first writer made fewer store calls than ``step``
            late()
        assert claimed["first"] != claimed["second"]
        by_attempt = {key.attempt: row for key, row in _failed_rows(store, ref.run_id)}
        assert sorted(by_attempt) == list(range(1, earlier_failures + 3))
        for writer, attempt in claimed.items():
            assert by_attempt[attempt]["request_id"] == writer
        markers = {
            marker[1]
            for obj in store.list(layout.retry_markers_prefix(ref.run_id))
            if (marker := layout.parse_retry_marker(obj.key)) is not None
        }
        retryable = {a for a, row in by_attempt.items() if row["retryable"]}
        assert retryable <= markers
        assert max(by_attempt) not in markers - retryable


def _failed_rows(store: LocalStore, run_id: str) -> list[tuple[Any, dict[str, Any]]]:
    found = []
    for obj in store.list(layout.outcomes_prefix(run_id)):
        key = layout.parse_outcome(obj.key)
        assert key is not None and key.status == "failed"
        found.append((key, pq.read_table(io.BytesIO(store.get(obj.key))).to_pylist()[0]))
    return found
