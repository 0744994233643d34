"""``sweeps.Client`` without a stage: which engine it queries through (chosen by the stage its
URL names, the Athena workgroup and database from the settings), how it reads requests and
listing items, and ``Run.wait``'s timeout against a loopback server that always answers
"pending" (a run that never completes cannot be made on a real stage on purpose)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sweeps import Client, QueryError
from sweeps import client as client_module
from sweeps.client import Run, RunRecord, read_request
from sweeps.engines.athena import AthenaEngine
from sweeps.engines.local import LocalEngine
from sweeps.errors import ApiError, WaitTimeout

DEPLOYED = "https://abc123.execute-api.eu-west-1.amazonaws.com/api"


def test_the_local_stage_queries_its_data_root_with_duckdb(tmp_path: Path) -> None:
    engine = Client("http://127.0.0.1:8000", local_root=tmp_path).engine()
    assert isinstance(engine, LocalEngine)
    assert engine.root == tmp_path


def test_a_default_data_root_that_does_not_exist_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed client's default root is not the stage's: say so rather than answer empty
    tables. A root given explicitly is the caller's choice and may be empty."""
    monkeypatch.setenv("SWEEP_LOCAL_ROOT", str(tmp_path / "missing"))
    with pytest.raises(QueryError, match="SWEEP_LOCAL_ROOT"):
        Client("http://127.0.0.1:8000").engine()
    assert isinstance(Client(local_root=tmp_path / "missing").engine("local"), LocalEngine)


def test_a_deployed_stage_queries_athena_with_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWEEP_ATHENA_WORKGROUP", "sweeps-dev")
    monkeypatch.setenv("SWEEP_GLUE_DATABASE", "sweeps_dev")
    client = Client(DEPLOYED)
    engine = client.engine()
    assert isinstance(engine, AthenaEngine)
    assert (engine.workgroup, engine.database) == ("sweeps-dev", "sweeps_dev")
    assert client.engine() is engine  # one per client
    given = Client(DEPLOYED, workgroup="wg", database="db").engine()
    assert isinstance(given, AthenaEngine)
    assert (given.workgroup, given.database) == ("wg", "db")


def test_athena_without_a_workgroup_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWEEP_ATHENA_WORKGROUP", raising=False)
    monkeypatch.delenv("SWEEP_GLUE_DATABASE", raising=False)
    with pytest.raises(QueryError, match="SWEEP_ATHENA_WORKGROUP"):
        Client(DEPLOYED).engine()


def test_a_request_is_a_mapping_json_text_or_a_file(tmp_path: Path) -> None:
    body = {"simulation": "pi", "parameters": {}}
    path = tmp_path / "r.json"
    path.write_text('{"simulation": "pi", "parameters": {}}')
    assert read_request(body) == read_request(' {"simulation": "pi", "parameters": {}}') == body
    assert read_request(path) == read_request(str(path)) == body
    with pytest.raises(ApiError, match="cannot read"):
        read_request(tmp_path / "missing.json")


def test_a_json_body_that_is_not_an_object_goes_to_the_api_to_be_judged() -> None:
    """The API answers a non-object body with the contract's problems (`/: ... is not of type
    'object'`); the client must send it, not take it for a file's path."""
    assert read_request(" [1, 2]") == [1, 2]
    assert read_request([]) == []  # already parsed (the CLI reads FILE itself)


def test_a_listing_item_becomes_a_typed_record() -> None:
    record = RunRecord.from_json(
        {
            "run_id": "20261126T100000000Z-0123456789ab",
            "label": None,
            "simulation": "pi",
            "created_at": "2026-11-26T10:00:00.000Z",
            "shard_count": 3,
            "complete": False,
            "cancelled": False,
        }
    )
    assert record.created_at.isoformat() == "2026-11-26T10:00:00+00:00"
    assert (record.label, record.shard_count, record.complete) == (None, 3, False)
    with pytest.raises(AttributeError):
        record.label = "x"  # type: ignore[misc]


class PendingStatus(BaseHTTPRequestHandler):
    """Answers every GET as a run with one shard still pending would be answered."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "run_id": RUN,
                "simulation": "pi",
                "shard_count": 2,
                "shards": {"succeeded": 1, "failed": 0, "pending": 1},
                "complete": False,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


RUN = "20261126T100000000Z-0123456789ab"


def test_wait_gives_up_after_its_timeout_and_shows_each_status() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PendingStatus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen: list[int] = []
    try:
        run = Client(f"http://127.0.0.1:{server.server_port}").run(RUN)
        # Polls every 0.05 s for 2 s: a loaded machine may stall one read, never all forty.
        with pytest.raises(WaitTimeout, match=f"run {RUN} not complete after 2 s"):
            run.wait(timeout=2, poll=0.05, on_status=lambda s: seen.append(s["shards"]["pending"]))
    finally:
        server.shutdown()
        thread.join()
    assert len(seen) >= 2 and set(seen) == {1}


class Clock:
    """``time`` for ``sweeps.client``: a clock that moves only when slept on or told to."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("read_s", "pause_s"), [(0.01, 0.1), (0.2, 1.8)])
def test_wait_pauses_its_poll_or_nine_times_its_last_status_read_if_longer(
    monkeypatch: pytest.MonkeyPatch, read_s: float, pause_s: float
) -> None:
    """A running 100,000-shard run's status takes a while to read: the watcher then waits
    longer between reads, so it keeps the stage busy at most a tenth of the time."""
    clock = Clock()
    monkeypatch.setattr(client_module, "time", clock)
    answers = iter([False, False, False, True])

    class Timed(Run):
        def status(self) -> Any:
            clock.now += read_s
            return {"complete": next(answers)}

    assert Timed(Client("http://127.0.0.1:1"), RUN).wait(poll=0.1)["complete"]
    assert clock.slept == pytest.approx([pause_s] * 3)
    # A deadline nearer than the pause: the last pause ends at it, and the read made there is
    # the last before the timeout; a run complete by then is returned, not given up on.
    starts: list[float] = []

    class AtDeadline(Run):
        def status(self) -> Any:
            starts.append(clock.now)
            clock.now += read_s
            return {"complete": clock.now >= complete_at - 1e-9}  # as the read ends

    clock.now, complete_at = 0.0, float("inf")
    with pytest.raises(WaitTimeout):
        AtDeadline(Client("http://127.0.0.1:1"), RUN).wait(timeout=1.0, poll=0.1)
    assert starts[-1] + read_s >= 1.0 - 1e-9 > starts[-2]  # the last read reached the deadline
    starts.clear()
    clock.now, complete_at = 0.0, 1.0
    assert AtDeadline(Client("http://127.0.0.1:1"), RUN).wait(timeout=1.0, poll=0.1)["complete"]


def test_wait_reads_once_more_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Less than a poll left: the watcher sleeps to the deadline and reads there, rather than
    give up a poll early without a look (0.94 s into a 1 s timeout, polling every 0.3 s)."""
    clock = Clock()
    monkeypatch.setattr(client_module, "time", clock)
    starts: list[float] = []

    class DoneAtOne(Run):
        def status(self) -> Any:
            starts.append(clock.now)
            clock.now += 0.01
            return {"complete": clock.now >= 1.0}

    assert DoneAtOne(Client("http://127.0.0.1:1"), RUN).wait(timeout=1.0, poll=0.3)["complete"]
    assert starts[-1] == pytest.approx(1.0)
    assert clock.slept[-1] == pytest.approx(1.0 - starts[-2] - 0.01)


def test_a_name_given_twice_is_refused_as_the_api_refuses_it(tmp_path: Path) -> None:
    """``json`` keeps the last of a repeated name silently: the client reads a request by the
    API's rule instead, so a zip member named twice in a file is the API's problem at its
    pointer, not a smaller request sent without a word."""
    text = '{"parameters": {"pair": {"zip": {"spot": [1, 2], "spot": [3, 4]}}}}'
    path = tmp_path / "twice.json"
    path.write_text(text)
    for given in (text, path):
        with pytest.raises(ApiError) as raised:
            read_request(given)
        assert raised.value.code == "invalid_request"
        assert raised.value.problems == [
            {
                "path": "/parameters/pair/zip/spot",
                "message": "'spot' is given more than once in one object",
            }
        ]


def test_a_body_that_is_not_json_is_refused_before_sending() -> None:
    """A numpy integer in a request is not JSON: the client's own error with the problem, not
    a bare TypeError from ``json``; and errors hash and compare as exceptions do."""
    import numpy as np

    with pytest.raises(ApiError) as raised:
        Client("http://127.0.0.1:9").submit({"simulation": "monte_carlo_pi", "seed": np.int64(3)})
    assert (raised.value.status, raised.value.code) == (None, "invalid_request")
    assert raised.value.problems[0]["path"] == "/"
    assert "int64" in raised.value.problems[0]["message"]
    same = ApiError(None, "invalid_request", "the request is not JSON", raised.value.problems)
    assert len({raised.value, same}) == 2 and raised.value != same
