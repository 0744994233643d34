"""Request bodies as HTTP delivers them: content type, size, encoding, JSON.

Every way a client can get a body wrong is a 4xx with the contract's error body, decided here
before any domain code runs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import jsonschema

from chalicelib.model.errors import (
    InvalidRequest,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
)
from chalicelib.model.json_text import read
from chalicelib.model.validation import schema_problems

# The optional bodies of the run routes: an empty body is ``{}``. The OpenAPI document
# (``scripts/openapi.py``) describes them by these.
REDRIVE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"include_pending": {"type": "boolean"}},
}
CANCEL_SCHEMA = {"type": "object", "additionalProperties": False, "properties": {}}


def parse_json(
    raw: bytes | str | None, content_type: str | None, max_bytes: int
) -> tuple[Any, list[Problem]]:
    """The body as JSON, and a problem for each name given twice in one of its objects (the
    body keeps the last value): the caller lists those beside the body's other problems, so
    the 400 names every one. Every way a client can get this wrong is a 4xx with our error
    body."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(
            f"send Content-Type: application/json (got {content_type or 'none'})"
        )
    raw = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body has {len(raw)} bytes; the limit is {max_bytes}")
    if not raw.strip():
        raise InvalidRequest("the body is empty; send a JSON object")
    try:
        return read(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InvalidRequest("the body is nested too deeply") from None
    except ValueError:  # valid JSON, but an integer longer than Python turns into an int
        raise InvalidRequest(
            f"the body has an integer of more than {sys.get_int_max_str_digits():,} digits"
        ) from None


def optional_body(
    raw: bytes | str | None, content_type: str | None, max_bytes: int, schema: dict[str, Any]
) -> dict[str, Any]:
    """A run route's optional body (none, or blank, means ``{}``) checked against ``schema``;
    one it cannot take is a 4xx as any body is (``parse_json``), so nothing happens."""
    body, repeated = parse_json(raw, content_type, max_bytes) if raw and raw.strip() else ({}, [])
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(body))
    problems = repeated + schema_problems(errors)
    if problems:
        raise InvalidRequest(problems[0].message, problems)
    return body


def redrive_options(raw: bytes | str | None, content_type: str | None, max_bytes: int) -> bool:
    """``include_pending`` from an optional body."""
    return bool(optional_body(raw, content_type, max_bytes, REDRIVE_SCHEMA).get("include_pending"))
