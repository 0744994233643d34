"""The OpenAPI 3.1 document of the HTTP API, generated from the one request schema.

``python -m scripts.openapi`` prints it. The request body of ``POST /sweeps`` is
``chalicelib/model/request_schema.json`` itself (OpenAPI 3.1 takes JSON Schema as is; only
``definitions`` move to ``components``), so this document, the validator and the gateway model
cannot disagree. Used by ``make api-fuzz`` (schemathesis against a running local stage).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.model.validation import request_schema

ERROR = {
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
RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
OBJECT = {"type": "object"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: int, ok_schema: dict[str, Any], *errors: int) -> dict[str, Any]:
    answers = {str(ok): {"description": "ok"} | _json(ok_schema)}
    for code in errors:
        answers[str(code)] = {"description": "error"} | _json(
            {"$ref": "#/components/schemas/Error"}
        )
    return answers


def document() -> dict[str, Any]:
    request = request_schema()
    definitions = request.pop("definitions", {})
    request.pop("$schema", None)
    text = json.dumps(request).replace("#/definitions/", "#/components/schemas/")
    body = {"required": True} | _json({"$ref": "#/components/schemas/SweepRequest"})
    optional_body = {"required": False} | _json(OBJECT)
    run_summary = {
        "type": "object",
        "required": ["run_id", "simulation", "created_at", "shard_count", "complete", "cancelled"],
    }
    listing = {
        "type": "object",
        "required": ["runs", "next"],
        "properties": {
            "runs": {"type": "array", "items": run_summary},
            "next": {"type": ["string", "null"]},
        },
    }
    status = {"type": "object", "required": ["run_id", "shards", "complete", "cancelled"]}
    limit = {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
    }
    token = {"name": "next", "in": "query", "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "sweeps", "version": "1", "description": "Serverless parameter sweeps"},
        "paths": {
            "/sweeps": {
                "post": {
                    "requestBody": body,
                    "responses": _responses(202, OBJECT, 400, 413, 415, 503),
                },
                "get": {"parameters": [limit, token], "responses": _responses(200, listing, 400)},
            },
            "/sweeps/{run_id}": {
                "get": {"parameters": [RUN_ID], "responses": _responses(200, status, 400, 404)}
            },
            "/sweeps/{run_id}/cancel": {
                "post": {
                    "parameters": [RUN_ID],
                    "requestBody": optional_body,
                    "responses": _responses(202, OBJECT, 400, 404, 409),
                }
            },
            "/sweeps/{run_id}/redrive": {
                "post": {
                    "parameters": [RUN_ID],
                    "requestBody": optional_body,
                    "responses": _responses(202, OBJECT, 400, 404, 409, 413, 415, 503),
                }
            },
            "/simulations": {"get": {"responses": _responses(200, OBJECT)}},
        },
        "components": {
            "schemas": {"SweepRequest": json.loads(text), "Error": ERROR}
            | json.loads(json.dumps(definitions).replace("#/definitions/", "#/components/schemas/"))
        },
    }


if __name__ == "__main__":
    print(json.dumps(document(), indent=1))
