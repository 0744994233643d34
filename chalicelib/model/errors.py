"""Errors a client can see, with the contract's body: error code, one-line message, problems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, located by a JSON pointer into the body."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class SweepError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.problems)


def error_body(code: str, message: str, problems: list[Problem] | None = None) -> dict[str, Any]:
    """The contract's error body; every error answer (ours and API Gateway's) has this shape."""
    return {"error": code, "message": message, "problems": [p.to_dict() for p in problems or []]}


# The same body as JSON Schema, for the OpenAPI document (``scripts/openapi.py``).
ERROR_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message", "problems"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


class InvalidRequest(SweepError):
    status = 400
    code = "invalid_request"


class UnsupportedMediaType(SweepError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(SweepError):
    status = 413
    code = "payload_too_large"


class NotFound(SweepError):
    status = 404
    code = "not_found"


def pointer(*parts: object) -> str:
    """JSON pointer (RFC 6901) for a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts) or "/"


class DispatchUnavailable(SweepError):
    """The run is recorded but the dispatcher could not be reached; it can be redriven."""

    status = 503
    code = "dispatch_unavailable"


class Conflict(SweepError):
    """The run's state forbids the request (cancel a complete run, redrive a cancelled one)."""

    status = 409
    code = "conflict"


class ForeignCaller(SweepError):
    """A request to the local stage from outside this machine's loopback: a web page's
    cross-site POST, or a name rebound to 127.0.0.1 (docs/security.md)."""

    status = 403
    code = "forbidden"
