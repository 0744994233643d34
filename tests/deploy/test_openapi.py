"""The OpenAPI document (``make api-fuzz`` fuzzes against it) says what the app serves: its
routes, its error body and its listing limits, each taken from where the app keeps it."""

from __future__ import annotations

import copy
import json
from typing import Any

import click
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from chalicelib.api import bodies
from chalicelib.model.errors import ERROR_BODY_SCHEMA, InvalidRequest, Problem, SweepError
from chalicelib.model.validation import validate_request
from chalicelib.runs.listing import DEFAULT_LIMIT, MAX_LIMIT
from deploy import merge
from deploy.routes import routes
from scripts import openapi
from sweeps import cli
from tests.support import CONTRACT_EXAMPLE


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


def _request_validator(document: dict[str, Any], name: str) -> Any:
    """A validator for ``#/components/schemas/<name>`` as an OpenAPI 3.1 tool builds one: the
    document is one resource whose schemas are JSON Schema 2020-12 unless they say otherwise
    (their ``$schema``)."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:openapi", resource)
    ref = {"$ref": f"urn:openapi#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(ref, registry=registry)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (["shards", "count"], 1.0),
        (["seed"], 0.0),
        (["replicates"], 1.0),
        (["parameters", "strike", "range", "start"], 80.0),
    ],
    ids=["shards.count", "seed", "replicates", "range.start"],
)
def test_a_2020_12_validator_refuses_a_whole_float_where_the_app_does(
    where: list[str], value: float
) -> None:
    """The app reads the request as draft 4, where ``1.0`` is no integer; the document keeps
    that dialect, so a 2020-12 tool refuses what the app refuses (in 2020-12 ``1.0`` is an
    integer, and no 2020-12 schema could refuse it)."""
    document = openapi.document()
    assert document["jsonSchemaDialect"] == "http://json-schema.org/draft-04/schema#"
    validator = _request_validator(document, "SweepRequest")
    assert list(validator.iter_errors(CONTRACT_EXAMPLE)) == []
    body = copy.deepcopy(CONTRACT_EXAMPLE)
    target = body
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    assert [list(e.absolute_path) for e in validator.iter_errors(body)] == [where]
    with pytest.raises(InvalidRequest) as caught:
        validate_request(body, None)
    assert "/" + "/".join(where) in [p.path for p in caught.value.problems]


def test_the_run_routes_bodies_are_the_apps_schemas() -> None:
    """``POST /sweeps/{id}/redrive`` and ``/cancel`` document what ``api.bodies`` checks."""
    document = openapi.document()
    for route, name, schema in (
        ("redrive", "RedriveRequest", bodies.REDRIVE_SCHEMA),
        ("cancel", "CancelRequest", bodies.CANCEL_SCHEMA),
    ):
        body = document["paths"][f"/sweeps/{{run_id}}/{route}"]["post"]["requestBody"]
        assert body["required"] is False
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{name}"
        documented = dict(document["components"]["schemas"][name])
        assert documented.pop("$schema") == "http://json-schema.org/draft-04/schema#"
        assert documented == schema
    redrive = document["components"]["schemas"]["RedriveRequest"]
    assert redrive["properties"]["include_pending"] == {"type": "boolean"}
    validator = _request_validator(document, "RedriveRequest")
    assert validator.is_valid({"include_pending": True})
    assert not validator.is_valid({"include_pending": "yes"})
    assert not validator.is_valid({"pending": True})


def test_every_schema_of_the_document_is_draft_4() -> None:
    """As ``jsonSchemaDialect`` says; a schema that names its dialect names draft 4 too."""
    for name, schema in openapi.document()["components"]["schemas"].items():
        declared = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
        assert declared is jsonschema.Draft4Validator, name
        jsonschema.Draft4Validator.check_schema(schema)
