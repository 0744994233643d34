"""The parent through ``chalice.test.Client``: moto S3, and real boto3 Lambda calls recorded.

The dispatcher tree is driven by hand: every recorded dispatcher event is fed back through
``client.lambda_.invoke('dispatcher', …)``, and worker events through
``client.lambda_.invoke('worker', …)``, so the same code paths run as on Lambda.
"""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import jsonschema
import pyarrow.parquet as pq
import pytest

from chalicelib.fanout.invoking import Backoff
from chalicelib.model import ids
from chalicelib.model.errors import ERROR_BODY_SCHEMA
from chalicelib.model.sharding import tree_size
from chalicelib.storage import layout
from chalicelib.storage.stores import S3Store
from scripts.invoke_standin import Call, Rule
from tests.support import CONTRACT_EXAMPLE, destination_record
from tests.support.harness import FIFTY, JSON, Harness, body_of


def test_fifty_shards_through_a_split_tree(harness: Harness) -> None:
    response = harness.post(FIFTY)
    assert response.status_code == 202
    answer = body_of(response)
    assert answer["total_points"] == 100 and answer["shard_count"] == 50
    assert answer["status_url"] == f"/sweeps/{answer['run_id']}"
    assert ids.is_run_id(answer["run_id"])

    dispatchers = harness.run_dispatchers()
    assert dispatchers > 1 + 3  # the root split, and its children split again (leaf: 8)
    assert dispatchers == tree_size(50, leaf_shards=8, width=3)  # what the estimate counts
    workers = harness.lambda_.take("worker")
    assert len(workers) == 50
    by_shard = {c.payload["shard_id"]: c.payload for c in workers}
    assert sorted(by_shard) == list(range(50))  # every shard exactly once
    for shard_id, payload in by_shard.items():  # 100 points in 50 shards: two each, in order
        assert (payload["start"], payload["end"]) == (2 * shard_id, 2 * shard_id + 2)
        assert payload["run_id"] == answer["run_id"]
        assert payload["request"]["fail_shards"] == [7, 31]
    assert all(manifest_first for _, manifest_first in harness.order)

    status = body_of(harness.get(answer["status_url"]))
    assert status["dispatch"] == {"dispatched": 50, "failed": 0}
    assert status["shards"] == {"succeeded": 0, "failed": 0, "pending": 50}
    assert status["complete"] is False

    harness.run_workers(workers)
    status = body_of(harness.get(answer["status_url"]))
    assert status["shards"] == {"succeeded": 48, "failed": 2, "pending": 0}
    assert status["complete"] is True
    assert status["failed_shards"] == [7, 31]
    assert status["points_succeeded"] == 96
    cost = status["cost"]  # every invocation the run caused, from its usage records
    assert cost["by_function"]["worker"]["invocations"] == 50
    assert cost["by_function"]["dispatcher"]["invocations"] == dispatchers
    assert cost["invocations"] == 50 + dispatchers and cost["upper_bound"] is False
    assert cost["lambda_gb_s"] >= (50 * 1769 + dispatchers * 1024) / 1024 / 1000  # >= 1 ms each
    assert cost["s3_requests"] >= 50 * 4 and cost["usd"] > 0
    assert cost["prices"].startswith("aws-us-east-1-")
    assert status["simulation_version"] == "1"
    assert status["request"] == by_shard[0]["request"]  # the normalized request, as sent on
    assert status["request"]["fail_shards"] == [7, 31]


def test_a_dispatch_job_beyond_its_runs_shards_hands_nothing_out(harness: Harness) -> None:
    """No dispatcher sends a job past its run's shards; one that arrives (forged, corrupted)
    is refused at once. Split as it stood, hi = 10**6 on a 2-shard run fanned out into 1,111
    dispatcher invocations, each leaf writing records of shards that do not exist."""
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [100, 200]}},
        "shards": {"count": 2},
    }
    run_id = body_of(harness.post(body))["run_id"]
    harness.run_dispatchers()
    assert len(harness.lambda_.take("worker")) == 2
    before = harness.all_keys()
    forged = {"dispatch": {"run_id": run_id, "job": "initial", "lo": 0, "hi": 10**6}}
    forged["dispatch"]["sliced"] = True
    answer = harness.client.lambda_.invoke("dispatcher", forged).payload
    assert answer["rejected"] is True
    assert harness.lambda_.take("dispatcher") == [] and harness.lambda_.take("worker") == []
    added = [k for k in harness.all_keys() if k not in before]
    assert [k.split("/")[0] for k in added] == ["usage"]  # only the invocation's own record


def test_a_reusing_run_through_the_dispatcher_tree(harness: Harness) -> None:
    """The root dispatcher plans before any worker runs (on moto S3), status counts it."""
    first = body_of(harness.post(FIFTY))["run_id"]
    harness.run_dispatchers()
    harness.run_workers()
    wider = {k: v for k, v in FIFTY.items() if k != "fail_shards"}
    wider["parameters"] = {"samples": {"range": {"start": 100, "stop": 20100, "step": 100}}}
    run_id = body_of(harness.post(wider | {"reuse": True, "shards": {"count": 40}}))["run_id"]
    assert body_of(harness.get(f"/sweeps/{run_id}"))["points_reused"] == 0  # not planned yet
    harness.run_dispatchers()
    harness.run_workers()
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    # FIFTY's 96 succeeded points are copied; its failed shards' 4 and the 100 new evaluated.
    assert status["request"]["reuse"] is True
    assert status["points_reused"] == 96
    assert status["points_evaluated"] == status["points_succeeded"] - 96
    assert first != run_id


def test_events_delivered_twice_change_nothing(harness: Harness) -> None:
    run_id = body_of(harness.post(FIFTY))["run_id"]
    harness.run_dispatchers()
    leaf = harness.dispatched[-1]  # the tree's last level is leaves
    harness.client.lambda_.invoke("dispatcher", leaf)
    workers = harness.lambda_.take("worker")
    assert len(workers) == 50 + leaf["dispatch"]["hi"] - leaf["dispatch"]["lo"]
    harness.run_workers(workers + workers[:5])
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    assert status["dispatch"] == {"dispatched": 50, "failed": 0}
    assert status["shards"] == {"succeeded": 48, "failed": 2, "pending": 0}
    assert len([k for k in harness.all_keys() if "status=succeeded" in k]) == 48
    assert len([k for k in harness.all_keys() if k.startswith("results/")]) == 48
    # A repeated leaf whose second delivery counted differently is counted once.
    lo, hi = leaf["dispatch"]["lo"], leaf["dispatch"]["hi"]
    harness.store.put(layout.dispatch_record(run_id, "initial", lo, hi, 0, hi - lo), b"")
    assert body_of(harness.get(f"/sweeps/{run_id}"))["dispatch"] == {
        "dispatched": 50,
        "failed": 0,
    }


def test_status_agrees_with_the_parquet_while_in_progress(harness: Harness) -> None:
    run_id = body_of(harness.post(FIFTY))["run_id"]
    harness.run_dispatchers()
    workers = sorted(harness.lambda_.take("worker"), key=lambda c: c.payload["shard_id"])
    harness.run_workers(workers[:20])  # shard 7 fails; 19 succeed
    status = body_of(harness.get(f"/sweeps/{run_id}"))

    rows = []
    for obj in harness.store.list(layout.outcomes_prefix(run_id)):
        key = layout.parse_outcome(obj.key)
        assert key is not None
        table = pq.read_table(io.BytesIO(harness.store.get(obj.key)))
        rows.append(
            (key.status, table.column("shard_id")[0].as_py(), table.column("retryable")[0].as_py())
        )
    succeeded = {s for st, s, _ in rows if st == "succeeded"}
    failed = {s for st, s, r in rows if st == "failed" and not r} - succeeded
    assert status["shards"] == {
        "succeeded": len(succeeded),
        "failed": len(failed),
        "pending": 50 - len(succeeded | failed),
    }
    assert status["failed_shards"] == sorted(failed) == [7]


def test_redrive_reruns_only_failed_shards(harness: Harness) -> None:
    run_id = body_of(harness.post(FIFTY))["run_id"]
    harness.run_dispatchers()
    harness.run_workers()
    before = {k for k in harness.all_keys() if "status=succeeded" in k}

    response = harness.post({}, f"/sweeps/{run_id}/redrive")
    assert response.status_code == 202
    assert body_of(response)["redriven"] == [7, 31]
    pending = body_of(harness.get(f"/sweeps/{run_id}"))
    assert pending["shards"]["pending"] == 2 and pending["complete"] is False

    harness.run_dispatchers()
    workers = harness.lambda_.take("worker")
    assert sorted(c.payload["shard_id"] for c in workers) == [7, 31]
    harness.run_workers(workers)
    after = body_of(harness.get(f"/sweeps/{run_id}"))
    assert after["failed_shards"] == [7, 31] and after["complete"] is True
    assert after["redrives"] == {"redrive-1": {"dispatched": 2, "failed": 0}}
    assert {k for k in harness.all_keys() if "status=succeeded" in k} == before
    attempts = [k for k in harness.all_keys() if "status=failed" in k]
    assert sorted(k.rsplit("/", 1)[1] for k in attempts) == [
        "shard-000007-attempt-1.parquet",
        "shard-000007-attempt-2.parquet",
        "shard-000031-attempt-1.parquet",
        "shard-000031-attempt-2.parquet",
    ]


def test_redrive_include_pending_and_nothing_to_redrive(harness: Harness) -> None:
    run_id = body_of(harness.post(FIFTY))["run_id"]
    harness.run_dispatchers()
    harness.lambda_.take("worker")  # every event lost: all 50 shards stay pending
    assert body_of(harness.post({}, f"/sweeps/{run_id}/redrive"))["redriven"] == []
    response = harness.post({"include_pending": True}, f"/sweeps/{run_id}/redrive")
    assert body_of(response)["redriven"] == list(range(50))
    harness.run_dispatchers()
    harness.run_workers()
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    assert status["complete"] and status["failed_shards"] == [7, 31]
    redrive_url = f"/sweeps/{run_id}/redrive"
    bad = harness.post({"include_pending": "yes"}, redrive_url)
    assert bad.status_code == 400 and body_of(bad)["problems"][0]["path"] == "/include_pending"
    twice = harness.post('{"include_pending": true, "include_pending": false}', redrive_url)
    assert twice.status_code == 400 and body_of(twice)["problems"][0]["path"] == "/include_pending"
    assert body_of(harness.get(f"/sweeps/{run_id}"))["redrives"].keys() == {"redrive-1"}


def throttle_first(k: int) -> Rule:
    def rule(call: Call, tries: int) -> tuple[int, str] | None:
        if call.function.endswith("worker") and tries <= k:
            return 429, "TooManyRequestsException"
        return None

    return rule


def test_throttled_invokes_are_retried_until_dispatched(s3_store: S3Store) -> None:
    h = Harness(s3_store, throttle_first(2))
    try:
        run_id = body_of(h.post(FIFTY))["run_id"]
        h.run_dispatchers()
        workers = h.lambda_.take("worker")
        assert sorted(c.payload["shard_id"] for c in workers) == list(range(50))
        assert len(h.lambda_.refused) == 100  # two 429s per shard, then accepted
        status = body_of(h.get(f"/sweeps/{run_id}"))
        assert status["dispatch"] == {"dispatched": 50, "failed": 0}
    finally:
        h.close()


def test_shards_that_cannot_be_dispatched_get_final_failures(s3_store: S3Store) -> None:
    doomed = {4, 5, 40}

    def rule(call: Call, tries: int) -> tuple[int, str] | None:
        if call.function.endswith("worker") and call.payload["shard_id"] in doomed:
            return 429, "TooManyRequestsException"
        return None

    h = Harness(s3_store, rule, dispatch_max_attempts=3)
    try:
        run_id = body_of(h.post(FIFTY))["run_id"]
        h.run_dispatchers()
        h.run_workers()
        status = body_of(h.get(f"/sweeps/{run_id}"))
        assert status["dispatch"] == {"dispatched": 47, "failed": 3}
        assert status["failed_shards"] == [4, 5, 7, 31, 40]
        assert status["complete"] is True
        for shard in doomed:
            key = layout.outcome(run_id, "failed", status["created_at"][:10], shard, 1)
            table = pq.read_table(io.BytesIO(h.store.get(key)))
            assert table.column("error_code")[0].as_py() == "DISPATCH_FAILED"
            assert table.column("retryable")[0].as_py() is False
    finally:
        h.close()


def test_a_worker_function_not_ready_yet_is_waited_for(
    s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inactive worker function (a stage left idle for weeks) answers 409 "Lambda is
    initializing your function" until it is restored: every shard was DISPATCH_FAILED."""
    refused = 0

    def rule(call: Call, tries: int) -> tuple[int, str] | None:
        nonlocal refused
        if call.function.endswith("worker") and refused < 120:  # > two answers per shard
            refused += 1
            return 409, "CodeArtifactUserPendingException"
        return None

    # The 1-5 s pauses shortened: the test checks who waits, not how long.
    monkeypatch.setattr(Backoff, "not_ready_pause", lambda self, left_s: min(left_s, 0.001))
    h = Harness(s3_store, rule, dispatch_max_attempts=2)
    try:
        run_id = body_of(h.post(FIFTY))["run_id"]
        h.run_dispatchers()
        workers = h.lambda_.take("worker")
        assert sorted(c.payload["shard_id"] for c in workers) == list(range(50))
        assert len(h.lambda_.refused) == 120
        assert body_of(h.get(f"/sweeps/{run_id}"))["dispatch"] == {"dispatched": 50, "failed": 0}
    finally:
        h.close()


def test_non_retryable_invoke_errors_fail_at_once(s3_store: S3Store) -> None:
    def rule(call: Call, tries: int) -> tuple[int, str] | None:
        return (404, "ResourceNotFoundException") if call.function.endswith("worker") else None

    h = Harness(s3_store, rule)
    try:
        run_id = body_of(h.post(FIFTY))["run_id"]
        h.run_dispatchers()
        assert len(h.lambda_.refused) == 50  # one try each: retrying cannot help
        assert body_of(h.get(f"/sweeps/{run_id}"))["dispatch"] == {"dispatched": 0, "failed": 50}
    finally:
        h.close()


def test_dispatcher_unavailable_is_a_503_with_the_error_body(s3_store: S3Store) -> None:
    h = Harness(s3_store, lambda call, tries: (429, "TooManyRequestsException"))
    try:
        response = h.post(FIFTY)
        assert response.status_code == 503
        body = body_of(response)
        assert body["error"] == "dispatch_unavailable" and "redrive" in body["message"]
    finally:
        h.close()


def test_a_redrive_that_cannot_be_dispatched_redrives_nothing_and_can_be_asked_again(
    s3_store: S3Store,
) -> None:
    """The redrive's hand-off fails (503): its list is withdrawn, so its shards read failed as
    before and the run stays complete; asked again once dispatch is back, the same redrive
    sends them. Before, they read pending from the list alone, the same redrive answered
    202 with nothing to send, and the run waited for the reconciler's stall timeout."""
    down = [False]

    def rule(call: Call, tries: int) -> tuple[int, str] | None:
        if down[0] and call.function.endswith("dispatcher"):
            return 500, "ServiceException"
        return None

    h = Harness(s3_store, rule)
    try:
        run_id = body_of(h.post(FIFTY))["run_id"]
        h.run_dispatchers()
        h.run_workers()
        down[0] = True
        refused = h.post({}, f"/sweeps/{run_id}/redrive")
        assert refused.status_code == 503
        assert "nothing was redriven" in body_of(refused)["message"]
        status = body_of(h.get(f"/sweeps/{run_id}"))
        assert status["complete"] is True and status["failed_shards"] == [7, 31]
        down[0] = False
        again = h.post({}, f"/sweeps/{run_id}/redrive")
        assert again.status_code == 202 and body_of(again)["redriven"] == [7, 31]
        h.run_dispatchers()
        workers = h.lambda_.take("worker")
        assert sorted(c.payload["shard_id"] for c in workers) == [7, 31]
        h.run_workers(workers)
        after = body_of(h.get(f"/sweeps/{run_id}"))
        assert after["complete"] is True and after["failed_shards"] == [7, 31]
        assert after["redrives"]["redrive-2"] == {"dispatched": 2, "failed": 0}
    finally:
        h.close()


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(CONTRACT_EXAMPLE)
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


INVALID: list[tuple[str, Any, int, str]] = [
    ("unknown field", mutate(["colour"], "red"), 400, "/colour"),
    ("no simulation", mutate(["simulation"], KeyError), 400, "/simulation"),
    ("unknown simulation", mutate(["simulation"], "weather"), 400, "/simulation"),
    ("no parameters", mutate(["parameters"], KeyError), 400, "/parameters"),
    ("empty parameters", mutate(["parameters"], {}), 400, "/parameters"),
    (
        "parameter not taken",
        mutate(["parameters", "colour"], {"values": [1]}),
        400,
        "/parameters/colour",
    ),
    ("bad parameter name", mutate(["parameters", "Vol"], {"values": [1]}), 400, "/parameters/Vol"),
    (
        "axis with two kinds",
        mutate(["parameters", "paths"], {"values": [1], "range": {}}),
        400,
        "/parameters/paths",
    ),
    (
        "empty values",
        mutate(["parameters", "paths", "values"], []),
        400,
        "/parameters/paths/values",
    ),
    (
        "duplicate values",
        mutate(["parameters", "option", "values"], ["call", "call"]),
        400,
        "/parameters/option/values",
    ),
    (
        "range step 0",
        mutate(["parameters", "strike", "range", "step"], 0),
        400,
        "/parameters/strike/range/step",
    ),
    (
        "float range",
        mutate(["parameters", "strike", "range", "start"], 80.5),
        400,
        "/parameters/strike/range/start",
    ),
    (
        "empty range",
        mutate(["parameters", "strike", "range", "stop"], 80),
        400,
        "/parameters/strike/range",
    ),
    (
        "linspace num 0",
        mutate(["parameters", "volatility", "linspace", "num"], 0),
        400,
        "/parameters/volatility/linspace/num",
    ),
    (
        "wrong type",
        mutate(["parameters", "option", "values"], ["call", 3]),
        400,
        "/parameters/option/values/1",
    ),
    (
        "out of domain",
        mutate(["parameters", "volatility", "linspace", "start"], -0.1),
        400,
        "/parameters/volatility/linspace",
    ),
    (
        "not a choice",
        mutate(["parameters", "option", "values"], ["straddle"]),
        400,
        "/parameters/option/values/0",
    ),
    ("no shards", mutate(["shards"], KeyError), 400, "/shards"),
    ("count and size", mutate(["shards"], {"count": 2, "size": 3}), 400, "/shards"),
    ("count 0", mutate(["shards", "count"], 0), 400, "/shards/count"),
    ("count over points", mutate(["shards", "count"], 163), 400, "/shards/count"),
    (
        "too many shards",
        mutate(["shards"], {"size": 1})
        | {
            "parameters": {"paths": {"range": {"start": 1, "stop": 200001, "step": 1}}},
            "fail_shards": [],
        },
        400,
        "/shards/size",
    ),
    (
        "too many points",
        mutate(["parameters", "paths"], {"range": {"start": 1, "stop": 10**7, "step": 1}}),
        400,
        "/parameters",
    ),
    ("negative seed", mutate(["seed"], -1), 400, "/seed"),
    ("bad label", mutate(["label"], "a label"), 400, "/label"),
    ("fail shard out of range", mutate(["fail_shards"], [12]), 400, "/fail_shards/0"),
    ("body is a list", [CONTRACT_EXAMPLE], 400, "/"),
    ("invalid JSON", '{"simulation": ', 400, ""),
    ("NaN", json.dumps(mutate(["seed"], 1)).replace('"seed": 1', '"seed": NaN'), 400, "/seed"),
    ("empty body", "", 400, ""),
    ("not UTF-8", b"\xff\xfe{}", 400, ""),
    # Valid JSON that Python will not read as an int (over sys.get_int_max_str_digits()).
    (
        "an integer of 5,000 digits",
        json.dumps(CONTRACT_EXAMPLE)[:-1] + ', "label": ' + "9" * 5000 + "}",
        400,
        "",
    ),
    # A count of more digits than Python turns into text: named as a power of ten.
    (
        "10^5000 points",
        mutate(
            ["parameters"],
            {
                name: {"range": {"start": 1, "stop": 10**1000 + 1, "step": 1}}
                for name in ("spot", "strike", "paths", "maturity", "volatility")
            },
        ),
        400,
        "/parameters",
    ),
    # JSON parsers keep the last of two equal names silently; the contract makes a zip member
    # named twice a 400, and a request that says two things at once is one whatever the field.
    (
        "a zip member named twice",
        '{"simulation": "option_pricing", "shards": {"count": 2}, "parameters": {"pair": '
        '{"zip": {"spot": [90, 110], "rate": [0.01, 0.02], "spot": [1, 2]}}}}',
        400,
        "/parameters/pair/zip/spot",
    ),
    (
        "a parameter named twice",
        '{"simulation": "option_pricing", "shards": {"count": 2}, "parameters": '
        '{"strike": {"values": [80]}, "strike": {"values": [90, 100]}}}',
        400,
        "/parameters/strike",
    ),
    (
        "a field given twice",
        json.dumps(CONTRACT_EXAMPLE)[:-1] + ', "seed": 8}',
        400,
        "/seed",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "path"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_bodies_dispatch_and_write_nothing(
    harness: Harness, body: Any, status: int, path: str
) -> None:
    response = harness.post(body)
    assert response.status_code == status
    answer = body_of(response)
    assert set(answer) == {"error", "message", "problems"}
    assert answer["message"] and "\n" not in answer["message"]
    if path:
        assert path in [p["path"] for p in answer["problems"]], answer
    assert harness.lambda_.accepted == [] and harness.all_keys() == []


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Type": "text/plain"}, json.dumps(CONTRACT_EXAMPLE), 415),
        ({}, json.dumps(CONTRACT_EXAMPLE), 415),
        (JSON, json.dumps(CONTRACT_EXAMPLE | {"label": "x" * 300_000}), 413),
    ],
    ids=["text/plain", "no content type", "oversize"],
)
def test_transport_errors_are_4xx(
    harness: Harness, headers: dict[str, str], body: str, status: int
) -> None:
    response = harness.post(body, headers=headers)
    assert response.status_code == status
    assert set(body_of(response)) == {"error", "message", "problems"}
    assert harness.lambda_.accepted == [] and harness.all_keys() == []


def test_fault_injection_refused_where_the_stage_forbids_it(s3_store: S3Store) -> None:
    h = Harness(s3_store, allow_fault_injection=False)
    try:
        response = h.post(CONTRACT_EXAMPLE)
        assert response.status_code == 400
        assert body_of(response)["problems"][0]["path"] == "/fail_shards"
        assert h.all_keys() == []
    finally:
        h.close()


@pytest.mark.parametrize(
    "run_id", ["nope", "dots.and_underscores", "a" * 65, "20261126T000000000Z-000000000000"]
)
def test_status_cancel_and_redrive_of_a_run_that_does_not_exist_are_404s(
    harness: Harness, run_id: str
) -> None:
    """The contract's GET /sweeps/{run_id} answers 200 or 404: an id no run can have names no
    run, as an unknown one does (it still never reaches a key)."""
    answers = [
        harness.get(f"/sweeps/{run_id}"),
        harness.post({}, f"/sweeps/{run_id}/cancel"),
        harness.post({}, f"/sweeps/{run_id}/redrive"),
    ]
    for response in answers:
        assert response.status_code == 404
        assert body_of(response)["error"] == "not_found"
        assert set(body_of(response)) == {"error", "message", "problems"}
    assert harness.lambda_.accepted == [] and harness.all_keys() == []


def test_simulations_come_from_the_registry(harness: Harness) -> None:
    sims = {s["name"]: s for s in body_of(harness.get("/simulations"))["simulations"]}
    assert set(sims) >= {"option_pricing", "monte_carlo_pi"}
    params = {p["name"]: p for p in sims["option_pricing"]["parameters"]}
    assert params["volatility"]["default"] == 0.2 and params["paths"]["type"] == "int"
    assert sims["option_pricing"]["metrics"] == ["price", "stderr", "analytic", "abs_error"]
    assert sims["option_pricing"]["version"] == "1" and sims["monte_carlo_pi"]["version"] == "1"


def test_the_failure_recorder_function_closes_a_crashed_shard(harness: Harness) -> None:
    run_id = body_of(harness.post(FIFTY))["run_id"]
    harness.run_dispatchers()
    workers = sorted(harness.lambda_.take("worker"), key=lambda c: c.payload["shard_id"])
    crashed, rest = workers[0], workers[1:]
    harness.run_workers(rest)
    assert body_of(harness.get(f"/sweeps/{run_id}"))["shards"]["pending"] == 1

    def record(payload: dict[str, Any]) -> dict[str, Any]:
        return destination_record(
            payload, response={"errorType": "Runtime.ExitError", "errorMessage": "OOM"}
        )

    answer = harness.client.lambda_.invoke("failure_recorder", record(crashed.payload)).payload
    assert answer["error_code"] == "RETRIES_EXHAUSTED"
    status = body_of(harness.get(f"/sweeps/{run_id}"))
    assert status["complete"] is True
    assert status["failed_shards"] == [0, 7, 31]
    crashed_cost = status["cost"]["by_function"]["worker"]
    assert status["cost"]["upper_bound"] is True and crashed_cost["bounded"] >= 1
    # Each crashed try charged the worker's timeout (900 s at 1,769 MB): an upper bound.
    assert crashed_cost["lambda_gb_s"] >= crashed_cost["bounded"] * 900 * 1769 / 1024
    before = harness.all_keys()
    late = harness.client.lambda_.invoke("failure_recorder", record(rest[0].payload)).payload
    assert late["status"] == "already_succeeded" and harness.all_keys() == before


def test_an_unhandled_error_answers_the_contracts_body(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr("chalicelib.api.handlers.list_runs", boom)
    answer = harness.get("/sweeps")
    assert answer.status_code == 500
    assert body_of(answer) == {
        "error": "internal_error",
        "message": "internal error",
        "problems": [],
    }
    jsonschema.validate(body_of(answer), ERROR_BODY_SCHEMA)


def test_a_get_with_any_content_type_is_answered(harness: Harness) -> None:
    """A GET has no body, so its Content-Type says nothing; Chalice refused one other than
    JSON with a 415 in its own body ({"Code", "Message"}), on every stage."""
    plain = {"Content-Type": "text/plain"}
    for path in ("/simulations", "/sweeps?limit=1", "/sweeps/20261126T000000000Z-000000000000"):
        answer = harness.client.http.get(path, headers=plain)
        assert answer.status_code in (200, 404), (path, answer.body)
        jsonschema.validate(body_of(answer), {"type": "object"})
    assert harness.client.http.get("/sweeps/nope", headers=plain).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/sweeps"),
        ("PUT", "/sweeps/20261126T000000000Z-000000000000"),
        ("GET", "/sweeps/x/cancel"),
    ],
)
def test_a_method_a_route_lacks_answers_the_contracts_body(
    harness: Harness, method: str, path: str
) -> None:
    """Deployed, API Gateway answers it (its gateway responses carry the contract's body); on
    the local stage Chalice does, in its own body unless the app reshapes it."""
    answer = harness.client.http.request(method, path, headers=JSON, body=b"")
    assert answer.status_code == 405
    jsonschema.validate(body_of(answer), ERROR_BODY_SCHEMA)
    assert body_of(answer)["error"] == "method_not_allowed"
    assert harness.all_keys() == []


def test_a_body_whose_events_would_exceed_1_mb_once_encoded_is_413(s3_store: S3Store) -> None:
    """Within the body limit as sent (about 640 KB, ``80000e9`` style numbers), but each
    worker event carries the canonical request (``80000000000000.0``), 1.3 MB: refused before
    anything is stored, not a 202 whose every shard then fails to dispatch."""
    h = Harness(s3_store, max_body_bytes=768 * 1024)
    try:
        spots = ",".join(f"{k}e9" for k in range(1, 80_001))
        body = json.dumps(CONTRACT_EXAMPLE | {"parameters": {"spot": {"values": [0]}}})
        body = body.replace('"values": [0]', f'"values": [{spots}]')
        assert len(body.encode()) < 768 * 1024
        response = h.post(body)
        assert response.status_code == 413, body_of(response)
        assert "once encoded" in body_of(response)["message"]
        assert h.lambda_.accepted == [] and h.all_keys() == []
    finally:
        h.close()


def test_a_name_given_twice_does_not_hide_the_bodys_other_problems(harness: Harness) -> None:
    """The repeated name is one problem among all of them: the 400 names every one."""
    raw = (
        '{"simulation":"option_pricing","parameters":{"spot":{"values":[-1]},'
        '"option":{"values":["x"]}},"shards":{"count":0},"seed":1,"seed":2,"extra":true}'
    )
    answer = harness.post(raw)
    assert answer.status_code == 400
    paths = [p["path"] for p in body_of(answer)["problems"]]
    assert paths[0] == "/seed"  # the body's text first, then as validation lists them
    assert "given more than once" in body_of(answer)["problems"][0]["message"]
    assert set(paths) == {
        "/seed",
        "/extra",
        "/shards/count",
        "/parameters/spot/values/0",
        "/parameters/option/values/0",
    }
    assert "(and 4 more problems)" in body_of(answer)["message"]
    assert harness.lambda_.accepted == [] and harness.all_keys() == []


@pytest.mark.parametrize("route", ["redrive", "cancel"])
def test_a_run_routes_body_with_a_name_given_twice_names_its_other_problems(
    harness: Harness, route: str
) -> None:
    run_id = body_of(harness.post(FIFTY))["run_id"]
    answer = harness.post('{"x": 1, "x": 2, "y": true}', f"/sweeps/{run_id}/{route}")
    assert answer.status_code == 400
    assert [p["path"] for p in body_of(answer)["problems"]] == ["/x", "/x", "/y"]
    assert "more than once" in body_of(answer)["problems"][0]["message"]
    assert "unknown field" in body_of(answer)["problems"][1]["message"]


@pytest.mark.parametrize(
    ("where", "value"),
    [(["label"], "abc\n"), (["label"], "a" * 64 + "\n")],
    ids=["short label", "64 characters and a newline"],
)
def test_a_label_ending_in_a_newline_is_refused(
    harness: Harness, where: list[str], value: str
) -> None:
    """JSON Schema's ``$`` (ECMA 262) is the end of the text; Python's also matches before a
    final newline, which let ``abc\\n`` through (and ``GET /sweeps`` then listed ``abc``)."""
    answer = harness.post(mutate(where, value))
    assert answer.status_code == 400, body_of(answer)
    assert [p["path"] for p in body_of(answer)["problems"]] == ["/label"]
    assert "'^[A-Za-z0-9._-]{1,64}$'" in body_of(answer)["problems"][0]["message"]
    assert harness.all_keys() == []


def test_a_zip_group_name_ending_in_a_newline_is_refused(harness: Harness) -> None:
    body = {
        "simulation": "option_pricing",
        "parameters": {"sc\n": {"zip": {"spot": [90, 100], "rate": [0.01, 0.02]}}},
        "shards": {"count": 1},
    }
    answer = harness.post(body)
    assert answer.status_code == 400, body_of(answer)
    assert [p["path"] for p in body_of(answer)["problems"]] == ["/parameters/sc\n"]
    assert harness.all_keys() == []


def test_values_are_unique_as_the_simulation_receives_them(harness: Harness) -> None:
    """Two JSON numbers that are one float64 are one point (the stream key's text is the
    float's): refused as ``80`` and ``80.0`` are. ``0.0`` and ``-0.0`` are two floats the
    function tells apart, with two stream keys: two points."""
    one_float = mutate(["parameters", "spot"], {"values": [9007199254740992, 9007199254740993]})
    answer = harness.post(one_float)
    assert answer.status_code == 400, body_of(answer)
    assert [p["path"] for p in body_of(answer)["problems"]] == ["/parameters/spot/values"]
    assert "more than once" in body_of(answer)["problems"][0]["message"]
    zipped = mutate(
        ["parameters", "spot"], {"zip": {"spot": [2**53, 2**53 + 1], "rate": [0.01, 0.01]}}
    )
    zipped["parameters"]["pair"] = zipped["parameters"].pop("spot")
    answer = harness.post(zipped)
    assert answer.status_code == 400, body_of(answer)
    assert [p["path"] for p in body_of(answer)["problems"]] == ["/parameters/pair/zip"]
    assert harness.all_keys() == []

    signed = mutate(["parameters", "rate"], {"values": [0.0, -0.0]})
    answer = harness.post(signed)
    assert answer.status_code == 202, body_of(answer)
    assert body_of(answer)["total_points"] == 2 * 162  # the example's 162 points, twice
