"""The OpenAPI document (``make api-fuzz`` fuzzes against it) says what the app serves: its
routes, its error body and its listing limits, each taken from where the app keeps it."""

from __future__ import annotations

import json

import click
import jsonschema
import pytest

from chalicelib.model.errors import ERROR_BODY_SCHEMA, InvalidRequest, Problem, SweepError
from chalicelib.runs.listing import DEFAULT_LIMIT, MAX_LIMIT
from deploy import merge
from deploy.routes import routes
from scripts import openapi
from sweeps import cli


def test_the_paths_are_the_apps_routes() -> None:
    from app import app

    document = openapi.document()
    served = {(p, m.lower()) for p, methods in app.routes.items() for m in methods}
    assert {(p, m) for p, ops in document["paths"].items() for m in ops} == served
    for path, methods in routes().items():
        for method, args in methods.items():
            declared = document["paths"][path][method].get("parameters", [])
            assert [p["name"] for p in declared if p["in"] == "path"] == args


def test_a_route_without_its_answers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    served = routes()
    monkeypatch.setattr(openapi, "routes", lambda: {**served, "/extra": {"get": []}})
    with pytest.raises(ValueError, match="/extra"):
        openapi.document()


def test_the_error_schema_is_the_body_the_app_and_the_gateway_send() -> None:
    error = openapi.document()["components"]["schemas"]["Error"]
    assert error == ERROR_BODY_SCHEMA
    for body in (
        InvalidRequest("bad", [Problem("/seed", "must be an integer")]).body(),
        SweepError("internal error").body(),
    ):
        jsonschema.validate(body, error)
    for response in merge.gateway_responses().values():
        template = response["responseTemplates"]["application/json"]
        # The gateway puts a quoted JSON string where the template names its message.
        filled = template.replace("$context.error.messageString", json.dumps("Forbidden"))
        jsonschema.validate(json.loads(filled), error)


def test_the_listing_limits_are_the_listings() -> None:
    """The document reads them from ``runs.listing``; the CLI (shipped without ``runs``) keeps
    its own copy, held equal here."""
    (option,) = [p for p in cli.runs.params if p.name == "limit"]
    assert isinstance(option.type, click.IntRange)
    assert (option.type.max, option.default) == (MAX_LIMIT, DEFAULT_LIMIT)
    (limit,) = [
        p
        for p in openapi.document()["paths"]["/sweeps"]["get"]["parameters"]
        if p["name"] == "limit"
    ]
    assert (limit["schema"]["maximum"], limit["schema"]["default"]) == (MAX_LIMIT, DEFAULT_LIMIT)
