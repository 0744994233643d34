"""The OpenAPI 3.1 document of the HTTP API, generated from the one request schema.

``python -m scripts.openapi`` prints it. The request body of ``POST /sweeps`` is
``chalicelib/model/request_schema.json`` itself (OpenAPI 3.1 takes JSON Schema as is; only
``definitions`` move to ``components``), so this document, the validator and the gateway model
cannot disagree; the optional bodies of the run routes are ``api.bodies``' own schemas.

The request's schemas keep their dialect, draft 4, where ``1.0`` is a number and no integer (the
app refuses ``"count": 1.0``): OpenAPI 3.1 reads a Schema Object as JSON Schema 2020-12 unless
the document's ``jsonSchemaDialect`` or the schema's ``$schema`` says otherwise, and in 2020-12
``1.0`` is an integer, which no 2020-12 schema can refuse. The document says it both ways (every
schema here is draft 4; each request schema also carries its ``$schema``). Schemathesis 4 reads
every 3.1 schema as 2020-12 whatever they say, so ``make api-fuzz`` also sends ``2.0`` where an
integer goes; the app's 400 for it is a documented answer.

The paths and their parameters are the app's routes (``deploy.routes``, as the gateway's
template has them), the error body is ``errors.ERROR_BODY_SCHEMA`` and the
listing's limits are ``runs.listing``'s; only each operation's answers are written here. Used by
``make api-fuzz`` (schemathesis against a running local stage).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from chalicelib.api.bodies import CANCEL_SCHEMA, REDRIVE_SCHEMA
from chalicelib.model.errors import ERROR_BODY_SCHEMA
from chalicelib.model.validation import request_schema
from chalicelib.runs.listing import DEFAULT_LIMIT, MAX_LIMIT
from deploy.routes import routes

OBJECT = {"type": "object"}
DRAFT_4 = "http://json-schema.org/draft-04/schema#"


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: int, ok_schema: dict[str, Any], *errors: int) -> dict[str, Any]:
    answers = {str(ok): {"description": "ok"} | _json(ok_schema)}
    for code in errors:
        answers[str(code)] = {"description": "error"} | _json(
            {"$ref": "#/components/schemas/Error"}
        )
    return answers


def _components(schema: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """``schema`` as components: itself under ``name``, each of its definitions under its own,
    references moved with them, every one declaring its dialect (``$schema``)."""
    schema = copy.deepcopy(schema)  # the validator's own copy is cached
    dialect = schema.pop("$schema", DRAFT_4)
    if dialect != DRAFT_4:
        raise ValueError(f"{name} is {dialect}; the document declares draft 4 for every schema")
    found = {name: schema} | schema.pop("definitions", {})
    text = json.dumps(found).replace("#/definitions/", "#/components/schemas/")
    return {k: {"$schema": DRAFT_4} | v for k, v in json.loads(text).items()}


def document() -> dict[str, Any]:
    requests = (
        _components(request_schema(), "SweepRequest")
        | _components(REDRIVE_SCHEMA, "RedriveRequest")
        | _components(CANCEL_SCHEMA, "CancelRequest")
    )
    body = {"required": True} | _json({"$ref": "#/components/schemas/SweepRequest"})
    redrive_body = {"required": False} | _json({"$ref": "#/components/schemas/RedriveRequest"})
    cancel_body = {"required": False} | _json({"$ref": "#/components/schemas/CancelRequest"})
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
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    }
    token = {"name": "next", "in": "query", "schema": {"type": "string"}}
    # What each route answers; the routes themselves come from the app.
    operations: dict[tuple[str, str], dict[str, Any]] = {
        ("/sweeps", "post"): {
            "requestBody": body,
            "responses": _responses(202, OBJECT, 400, 413, 415, 503),
        },
        ("/sweeps", "get"): {
            "parameters": [limit, token],
            "responses": _responses(200, listing, 400),
        },
        ("/sweeps/{run_id}", "get"): {"responses": _responses(200, status, 404)},
        ("/sweeps/{run_id}/cancel", "post"): {
            "requestBody": cancel_body,
            "responses": _responses(202, OBJECT, 400, 404, 409, 413, 415),
        },
        ("/sweeps/{run_id}/redrive", "post"): {
            "requestBody": redrive_body,
            "responses": _responses(202, OBJECT, 400, 404, 409, 413, 415, 503),
        },
        ("/simulations", "get"): {"responses": _responses(200, OBJECT)},
    }
    served = {(path, method) for path, methods in routes().items() for method in methods}
    if served != set(operations):
        raise ValueError(f"describe the answers of {sorted(served ^ set(operations))}")
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in routes().items():
        for method, args in methods.items():
            op = dict(operations[path, method])
            in_path = [_path_parameter(a) for a in args]
            if in_path or "parameters" in op:
                op["parameters"] = in_path + op.get("parameters", [])
            paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": DRAFT_4,
        "info": {"title": "sweeps", "version": "1", "description": "Serverless parameter sweeps"},
        "paths": paths,
        "components": {"schemas": requests | {"Error": ERROR_BODY_SCHEMA}},
    }


if __name__ == "__main__":
    print(json.dumps(document(), indent=1))
