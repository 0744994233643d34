"""A loopback HTTP server speaking Lambda's Invoke API, recording what it is sent.

Everything of ours runs for real: payload encoding, SigV4 signing, the HTTP request, error
parsing. Only Lambda itself is replaced: each call is answered 202, or with the throttle or
error a test's rule asks for. This stands in for an AWS account, which tests cannot have.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import urllib3
from botocore.credentials import Credentials

from chalicelib.aws import LambdaEndpoint

REGION = "us-east-1"


@dataclass(frozen=True)
class Call:
    function: str
    payload: dict[str, Any]


# Decides the answer to one call: None to accept (202), else (HTTP status, error code).
Rule = Callable[[Call, int], tuple[int, str] | None]


class RecordingLambda:
    def __init__(self, rule: Rule | None = None, on_call: Callable[[Call], None] | None = None):
        self.rule = rule
        self.on_call = on_call
        self.accepted: list[Call] = []
        self.refused: list[Call] = []
        self.unsigned = 0
        self.tries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def endpoint(self) -> LambdaEndpoint:
        return LambdaEndpoint(
            self.url, REGION, Credentials("testing", "testing"), urllib3.PoolManager(maxsize=16)
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, call: Call) -> tuple[int, str] | None:
        with self._lock:
            key = json.dumps(call.payload, sort_keys=True)
            self.tries[key] += 1
            answer = self.rule(call, self.tries[key]) if self.rule else None
            (self.refused if answer else self.accepted).append(call)
        if answer is None and self.on_call:
            self.on_call(call)
        return answer

    def take(self, function: str) -> list[Call]:
        """Accepted calls to ``function`` not taken before."""
        with self._lock:
            mine = [c for c in self.accepted if c.function.endswith(function)]
            self.accepted = [c for c in self.accepted if not c.function.endswith(function)]
        return mine


def _handler(recorder: RecordingLambda) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            parts = self.path.split("/")
            signed = self.headers.get("Authorization", "").startswith(
                "AWS4-HMAC-SHA256 Credential=testing/"
            )
            if (
                len(parts) != 5
                or parts[4] != "invocations"
                or not signed
                or (self.headers.get("X-Amz-Invocation-Type") != "Event")
            ):
                recorder.unsigned += 1
                return self._send(403, "AccessDeniedException")
            answer = recorder.answer(Call(unquote(parts[3]), json.loads(body)))
            if answer is None:
                return self._send(202, None)
            return self._send(*answer)

        def _send(self, status: int, code: str | None) -> None:
            data = b""
            self.send_response(status)
            if code is not None:
                data = json.dumps({"Type": "User", "message": code}).encode()
                self.send_header("X-Amzn-ErrorType", f"{code}:http://internal.amazon.com/")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
