"""The local stage's HTTP server sends without Nagle's algorithm (chalicelib/api/local_server)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer

from chalicelib import wiring
from chalicelib.config import Settings
from chalicelib.fanout.local_lambda import LocalInvoker


@pytest.fixture
def restored() -> Iterator[None]:
    """The handler class as it was, whatever the test set."""
    had = "disable_nagle_algorithm" in ChaliceRequestHandler.__dict__
    before = ChaliceRequestHandler.__dict__.get("disable_nagle_algorithm")
    yield
    if had:
        ChaliceRequestHandler.disable_nagle_algorithm = before
    elif "disable_nagle_algorithm" in ChaliceRequestHandler.__dict__:
        delattr(ChaliceRequestHandler, "disable_nagle_algorithm")


@pytest.mark.usefixtures("restored")
def test_the_local_stage_accepts_connections_with_tcp_nodelay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built as ``chalice local`` builds it (the local runtime first, then chalice's own
    server and handler), every accepted socket has TCP_NODELAY, the second request on a
    keep-alive connection included."""
    runtime = wiring.build(Settings(local_root=tmp_path / "data", local_reconciler=False))
    seen: list[int] = []
    setup = ChaliceRequestHandler.setup

    def spying(self: Any) -> None:
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(ChaliceRequestHandler, "setup", spying)
    app = Chalice(app_name="nodelay")

    @app.route("/")
    def index() -> dict[str, bool]:
        return {"ok": True}

    server = LocalDevServer(app, Config.create(), "127.0.0.1", 0)
    port = server.server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with requests.Session() as session:  # one keep-alive connection
            for _ in range(2):
                assert session.get(f"http://127.0.0.1:{port}/", timeout=10).json() == {"ok": True}
    finally:
        server.shutdown()
        server.server.server_close()
        assert isinstance(runtime.invoker, LocalInvoker)
        runtime.invoker.close()
    assert seen and all(seen), seen


@pytest.mark.usefixtures("restored")
def test_only_the_local_stage_changes_the_handler() -> None:
    """A deployed stage's runtime leaves chalice's handler as chalice made it."""
    if "disable_nagle_algorithm" in ChaliceRequestHandler.__dict__:
        delattr(ChaliceRequestHandler, "disable_nagle_algorithm")
    settings = Settings(
        backend="aws",
        bucket="b",
        worker_function="w",
        dispatcher_function="d",
    )
    wiring.build(settings)
    assert ChaliceRequestHandler.disable_nagle_algorithm is False
