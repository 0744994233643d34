"""The one local stand-in for Lambda's ``Invoke`` API (tests and benchmarks): loopback only,
bounded.

    .venv/bin/python -m scripts.invoke_standin --latency-ms 30 --keep sweeps-bench-dispatcher

Everything of ours runs for real against it: payload encoding, SigV4 signing, the HTTP request,
error parsing; only Lambda itself is replaced (tests cannot have an AWS account).
``POST /2015-03-31/functions/<name>/invocations`` must be SigV4-signed (with the ``testing``
credentials of ``endpoint()``) and ``InvocationType=Event``, else it is Lambda's 403. It waits
the configured latency, then answers 202 with an empty body, as Lambda does, or the throttle
or error a test's ``rule`` asks for. ``GET /2016-08-19/account-settings/`` (GetAccountSettings,
signed) answers the account's limits: ``unreserved`` concurrency, default Lambda's 1,000.
It counts calls per function and keeps the calls to the
functions named with ``--keep`` (the dispatcher; in process, ``keep=None`` keeps every call),
so a benchmark can run the dispatcher tree's child jobs itself and a test can feed events back
(``take``). ``GET /_standin/state`` (``?drain=1`` hands the kept payloads over once) reports
counts, kept payloads and the server's own CPU time, for a stand-in in another process.

Bounds: it listens on 127.0.0.1 only; bodies over Lambda's 1 MB async limit get Lambda's 413
``RequestTooLargeException``; at most ``max_kept`` payloads are held (the rest are counted as
dropped); at most ``max_connections`` connections are served at once (more are closed).
Run as a module it prints ``listening <url>`` and serves until its stdin closes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import socket
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import urllib3
from botocore.credentials import Credentials

from chalicelib.aws import LambdaEndpoint

HOST = "127.0.0.1"
REGION = "us-east-1"
SIGNED = "AWS4-HMAC-SHA256 Credential=testing/"
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/?]+)/invocations$")
STATE_PATH = "/_standin/state"
ACCOUNT_SETTINGS_PATH = "/2016-08-19/account-settings/"
UNRESERVED = 1000  # Lambda's default account concurrency (aws-facts)
ASYNC_PAYLOAD_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Call:
    function: str
    payload: Any


# Decides the answer to one call (and its try number): None to accept (202), else
# (HTTP status, error code).
Rule = Callable[[Call, int], tuple[int, str] | None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # clients hold keep-alive connections; never wait for them
    request_queue_size = 4096
    allow_reuse_address = True

    def __init__(
        self,
        latency_s: float,
        keep: Iterable[str] | None,
        max_kept: int,
        max_connections: int,
        rule: Rule | None = None,
        on_call: Callable[[Call], None] | None = None,
        unreserved: int = UNRESERVED,
    ) -> None:
        super().__init__((HOST, 0), _Handler)
        self.unreserved = unreserved
        self.account_reads = 0
        self.latency_s = latency_s
        self.keep = None if keep is None else frozenset(keep)
        self.max_kept = max_kept
        self.rule = rule
        self.on_call = on_call
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.kept: list[Call] = []  # accepted calls to kept functions, in arrival order
        self.refused: list[Call] = []
        self.tries: Counter[str] = Counter()
        self.unsigned = 0
        self.dropped = 0
        self.connections = threading.BoundedSemaphore(max_connections)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return self.connections.acquire(blocking=False)

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release()  # no thread will
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    def keeps(self, function: str) -> bool:
        return self.keep is None or function in self.keep

    def record(self, function: str, body: bytes) -> tuple[int, str] | None:
        """The rule's refusal, or None once the call is counted (and kept)."""
        wanted = self.rule is not None or self.on_call is not None or self.keeps(function)
        call = Call(function, json.loads(body) if wanted else None)  # ValueError: not JSON
        with self.lock:
            if self.rule is not None:
                key = json.dumps(call.payload, sort_keys=True)
                self.tries[key] += 1
                answer = self.rule(call, self.tries[key])
                if answer is not None:
                    self.refused.append(call)
                    return answer
            self.counts[function] += 1
            if self.keeps(function):
                if len(self.kept) >= self.max_kept:
                    self.dropped += 1
                else:
                    self.kept.append(call)
        if self.on_call is not None:
            self.on_call(call)
        return None

    def take(self, function: str) -> list[Call]:
        """Kept calls to a function whose name ends with ``function``, not taken before."""
        with self.lock:
            mine = [c for c in self.kept if c.function.endswith(function)]
            self.kept = [c for c in self.kept if not c.function.endswith(function)]
        return mine

    def state(self, drain: bool) -> dict[str, Any]:
        with self.lock:
            names = sorted(self.keep if self.keep is not None else {c.function for c in self.kept})
            kept = {n: [c.payload for c in self.kept if c.function == n] for n in names}
            if drain:
                self.kept = []
            return {
                "counts": dict(self.counts),
                "payloads": kept,
                "dropped": self.dropped,
                "cpu_s": time.process_time(),
            }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    timeout = 300  # an idle keep-alive connection is closed after this long
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._answer(status, body, {"x-amzn-ErrorType": code, "Content-Type": "application/json"})

    def do_POST(self) -> None:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            self._error(411, "LengthRequiredException", "Content-Length is required")
            return
        length = int(length_header)
        if length > ASYNC_PAYLOAD_LIMIT:
            self.close_connection = True  # the body is not read: the connection is unusable
            self._error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {ASYNC_PAYLOAD_LIMIT} bytes for the "
                "InvokeAsync operation",
            )
            return
        body = self.rfile.read(length)
        match = INVOKE_PATH.match(urlsplit(self.path).path)
        if match is None:
            self._error(404, "UnknownOperationException", "not an Invoke path")
            return
        signed = self.headers.get("Authorization", "").startswith(SIGNED)
        if not signed or self.headers.get("X-Amz-Invocation-Type") != "Event":
            with self.server.lock:
                self.server.unsigned += 1
            self._error(403, "AccessDeniedException", "not a signed Event invoke")
            return
        function = unquote(match.group(1))
        time.sleep(self.server.latency_s)
        try:
            refused = self.server.record(function, body)
        except ValueError:
            self._error(400, "InvalidRequestContentException", "could not parse the payload")
            return
        if refused is not None:
            status, code = refused
            self._error(status, f"{code}:http://internal.amazon.com/", code)
            return
        self._answer(202)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == ACCOUNT_SETTINGS_PATH:
            self._account_settings()
            return
        if url.path != STATE_PATH:
            self._error(404, "ResourceNotFoundException", "unknown path")
            return
        drain = parse_qs(url.query).get("drain", ["0"])[0] == "1"
        body = json.dumps(self.server.state(drain)).encode()
        self._answer(200, body, {"Content-Type": "application/json"})

    def _account_settings(self) -> None:
        """GetAccountSettings, signed like every call: the limits pacing reads."""
        if not self.headers.get("Authorization", "").startswith(SIGNED):
            self._error(403, "AccessDeniedException", "not signed")
            return
        with self.server.lock:
            self.server.account_reads += 1
        limit = {"ConcurrentExecutions": UNRESERVED, "UnreservedConcurrentExecutions": 0}
        limit["UnreservedConcurrentExecutions"] = self.server.unreserved
        body = json.dumps({"AccountLimit": limit, "AccountUsage": {}}).encode()
        self._answer(200, body, {"Content-Type": "application/json"})


class StandIn:
    """The server on a background thread of this process; a context manager. A test's
    stand-in answers at once and keeps every call (the defaults)."""

    def __init__(
        self,
        latency_s: float = 0.0,
        keep: Iterable[str] | None = None,
        max_kept: int = 100_000,
        max_connections: int = 1024,
        rule: Rule | None = None,
        on_call: Callable[[Call], None] | None = None,
        unreserved: int = UNRESERVED,
    ) -> None:
        self._server = _Server(
            latency_s, keep, max_kept, max_connections, rule, on_call, unreserved
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="invoke-standin", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def state(self, drain: bool = False) -> dict[str, Any]:
        return self._server.state(drain)

    def endpoint(self) -> LambdaEndpoint:
        """What ``LambdaInvoker`` needs to reach this stand-in, signing as it expects."""
        return LambdaEndpoint(
            self.url, REGION, Credentials("testing", "testing"), urllib3.PoolManager(maxsize=16)
        )

    def take(self, function: str) -> list[Call]:
        return self._server.take(function)

    @property
    def accepted(self) -> list[Call]:
        """The kept calls not taken yet."""
        with self._server.lock:
            return list(self._server.kept)

    @property
    def refused(self) -> list[Call]:
        with self._server.lock:
            return list(self._server.refused)

    @property
    def account_reads(self) -> int:
        """How many GetAccountSettings calls were answered."""
        return self._server.account_reads

    @property
    def unsigned(self) -> int:
        return self._server.unsigned

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def fetch_state(url: str, drain: bool = False) -> dict[str, Any]:
    """The state of a stand-in running in another process (a plain socket, no extra deps)."""
    parts = urlsplit(url)
    if parts.hostname != HOST or parts.port is None:
        raise ValueError(f"the stand-in is loopback only, got {url}")
    path = f"{STATE_PATH}?drain={1 if drain else 0}"
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    with socket() as sock:
        sock.settimeout(60)
        sock.connect((HOST, parts.port))
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"stand-in state: {head[:80]!r}")
    state: dict[str, Any] = json.loads(body)
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--keep", action="append", default=[], help="keep this function's payloads")
    parser.add_argument("--max-kept", type=int, default=100_000)
    parser.add_argument("--max-connections", type=int, default=1024)
    args = parser.parse_args(argv)
    standin = StandIn(args.latency_ms / 1000, args.keep, args.max_kept, args.max_connections)
    with standin:
        print(f"listening {standin.url}", flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin (or exits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
