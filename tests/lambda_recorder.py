"""A real boto3 Lambda client whose HTTP layer is replaced by a recorder.

Everything botocore does (parameter validation, serialisation, signing, error parsing) runs;
only the network call is answered here: 202, or a throttle/error as a test asks. This is the
one mock in the suite, standing in for an AWS account.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data

    def read(self, amt: int | None = None) -> bytes:
        n = len(self.data) if amt is None else amt
        data, self.data = self.data[:n], self.data[n:]
        return data


@dataclass(frozen=True)
class Call:
    function: str
    payload: dict[str, Any]


# Decides the answer to one call: None to accept (202), else (status, error code).
Rule = Callable[[Call, int], tuple[int, str] | None]


class RecordingLambda:
    def __init__(self, rule: Rule | None = None, on_call: Callable[[Call], None] | None = None):
        self.rule = rule
        self.on_call = on_call
        self.accepted: list[Call] = []
        self.refused: list[Call] = []
        self.tries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.client = boto3.client(
            "lambda",
            region_name="us-east-1",
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        self.client.meta.events.register("before-send.lambda.Invoke", self._send)

    def _send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        function = unquote(request.url.split("/functions/")[1].split("/")[0])
        body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
        call = Call(function, json.loads(body))
        with self._lock:
            key = json.dumps(call.payload, sort_keys=True)
            self.tries[key] += 1
            answer = self.rule(call, self.tries[key]) if self.rule else None
            (self.refused if answer else self.accepted).append(call)
        if answer is None:
            if self.on_call:
                self.on_call(call)
            return AWSResponse(request.url, 202, {}, _Raw(b""))
        status, code = answer
        error = json.dumps({"Type": "User", "message": code, "Reason": "test"}).encode()
        return AWSResponse(request.url, status, {"x-amzn-ErrorType": code}, _Raw(error))

    def take(self, function: str) -> list[Call]:
        """Accepted calls to ``function`` not taken before."""
        with self._lock:
            mine = [c for c in self.accepted if c.function.endswith(function)]
            self.accepted = [c for c in self.accepted if not c.function.endswith(function)]
        return mine
