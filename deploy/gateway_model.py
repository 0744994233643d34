"""The API Gateway request model: a deliberately coarse subset of the one request schema.

AWS documents REST API models only as "JSON Schema draft 4" and lists no keywords its request
validator supports, while its known-issues page names some as unsupported in models
(aws-facts). If an import dropped ``patternProperties`` but kept ``additionalProperties:
false`` on ``parameters``, every valid POST would be a 400, and nothing offline could tell. So
the gateway gets only what every draft-4 validator does the same way: the body is an object,
the top-level fields are known, the required ones are present, and each has its one JSON type.
No ``patternProperties``, ``not``, ``oneOf``/``anyOf``, ``$ref``, type arrays or bounds. The
complete check stays with the app (``chalicelib.model.validation``), which lists every problem.

Generated from ``request_schema.json``, so a field added there reaches the gateway at once.
"""

from __future__ import annotations

from typing import Any

from chalicelib.model.validation import request_schema

# JSON types a draft-4 validator checks the same way everywhere; a property with any other
# "type" (an array of types, none, a $ref) is passed through unchecked.
PLAIN_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})
# Every keyword the model may contain (a test walks it).
KEYWORDS = frozenset(
    {"title", "description", "type", "required", "properties", "additionalProperties"}
)


def _field(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    return {"type": kind} if isinstance(kind, str) and kind in PLAIN_TYPES else {}


def coarse(schema: dict[str, Any]) -> dict[str, Any]:
    """The top level of ``schema`` only: its shape, required fields and each field's type."""
    model: dict[str, Any] = {
        "title": schema.get("title", "SweepRequest"),
        "description": "A coarse gateway check; the app validates the request in full.",
        "type": "object",
        "required": list(schema.get("required", [])),
        "properties": {name: _field(p) for name, p in schema.get("properties", {}).items()},
    }
    if schema.get("additionalProperties") is False:
        model["additionalProperties"] = False  # unknown top-level fields: 400 at the gateway
    return model


def gateway_model() -> dict[str, Any]:
    return coarse(request_schema())
