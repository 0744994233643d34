"""GET /sweeps through ``chalice.test.Client`` on moto S3: newest first, paged, from the index."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.runs.listing import created_at
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore
from tests.support.harness import Harness, body_of

ONE = {
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"values": [100, 200]}},
    "shards": {"count": 2},
}


def test_pages_newest_first_without_reading_manifests(harness: Harness) -> None:
    posted = [body_of(harness.post(ONE | {"label": f"run-{k}"}))["run_id"] for k in range(7)]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        path = "/sweeps?limit=3" + (f"&next={token}" if token else "")
        answer = body_of(harness.get(path))
        seen += [r["run_id"] for r in answer["runs"]]
        pages += 1
        token = answer["next"]
        if token is None:
            break
    assert pages == 3
    assert seen == sorted(posted, reverse=True)  # run ids sort by creation time

    first = body_of(harness.get("/sweeps"))["runs"][0]
    newest = body_of(harness.get(f"/sweeps/{first['run_id']}"))
    assert first == {
        "run_id": newest["run_id"],
        "label": newest["label"],
        "simulation": "monte_carlo_pi",
        "created_at": newest["created_at"],
        "shard_count": 2,
        "complete": False,
        "cancelled": False,
    }


def test_complete_and_cancelled_flags(harness: Harness) -> None:
    done = body_of(harness.post(ONE))["run_id"]
    harness.run_dispatchers()
    harness.run_workers()
    cancelled = body_of(harness.post(ONE))["run_id"]
    harness.post({}, f"/sweeps/{cancelled}/cancel")
    runs = {r["run_id"]: r for r in body_of(harness.get("/sweeps"))["runs"]}
    assert (runs[done]["complete"], runs[done]["cancelled"]) == (True, False)
    assert (runs[cancelled]["complete"], runs[cancelled]["cancelled"]) == (False, True)


def test_no_runs_is_an_empty_page(harness: Harness) -> None:
    assert body_of(harness.get("/sweeps")) == {"runs": [], "next": None}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "limit=1.5",
        "limit=%EF%BC%91",
        "next=..%2F..%2Fx",
        "next=short",
        "next=" + "a" * 65,
        "next=a%00aaaaaaaa",
        # Python's $ matches before a final newline: a run id and a newline is no token
        "next=20260101T000000000Z-aaaaaaaaaaaa%0A",
    ],
)
def test_bad_query_is_a_400(harness: Harness, query: str) -> None:
    answer = harness.get(f"/sweeps?{query}")
    assert answer.status_code == 400
    assert set(body_of(answer)) == {"error", "message", "problems"}


def test_index_keys_sort_newest_first_on_a_folder(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    run_ids = [
        "20260101T000000000Z-aaaaaaaaaaaa",
        "20260101T000000001Z-000000000000",
        "20261231T235959999Z-ffffffffffff",
    ]
    for run_id in run_ids:
        store.create(layout.run_index(layout.RunIndexEntry(run_id, 3, "option_pricing", None)), b"")
    listed = [layout.parse_run_index(o.key) for o in store.list(layout.RUN_INDEX)]
    assert [e.run_id for e in listed if e] == sorted(run_ids, reverse=True)
    after = store.list_after(layout.RUN_INDEX, layout.run_index_after(run_ids[2]))
    assert next(layout.parse_run_index(o.key) for o in after) == layout.RunIndexEntry(
        run_ids[1], 3, "option_pricing", None
    )
    assert created_at(run_ids[1]) == "2026-01-01T00:00:00.001Z"
