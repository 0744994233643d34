"""The API Gateway model is the request schema: same constraints, same verdicts.

API Gateway validates bodies with JSON Schema draft 4 over the swagger ``definitions`` that
``deploy.merge`` generates. If the model drifted from ``request_schema.json``, the gateway would
turn away bodies the app accepts (or let through ones it would answer 400 anyway, which is
harmless but a sign of drift). Both are caught here over the same generated cases.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import PROJECT_ROOT
from chalicelib.model.validation import request_schema
from deploy import merge
from tests.support import CONTRACT_EXAMPLE
from tests.support.requests import BAD, EXAMPLE_PATHS, all_paths, json_values, replace_at


def model_document() -> dict[str, Any]:
    """The request model as API Gateway resolves it: its references point at sibling models."""
    models = merge.request_models()
    return {**models[merge.REQUEST_MODEL], "definitions": models}


def inline(node: Any, definitions: dict[str, Any]) -> Any:
    """A schema with every local ``$ref`` replaced by its target (the schemas are not
    recursive), so two documents compare by meaning, whatever their definitions are named."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            return inline(definitions[ref.removeprefix("#/definitions/")], definitions)
        return {k: inline(v, definitions) for k, v in node.items() if k != "definitions"}
    if isinstance(node, list):
        return [inline(v, definitions) for v in node]
    return node


SCHEMA = jsonschema.Draft4Validator(request_schema())
MODEL = jsonschema.Draft4Validator(model_document())

# Values that probe every keyword of the schema: types, bounds, patterns, uniqueness, sizes.
PROBES: list[Any] = [
    None,
    True,
    0,
    -1,
    1,
    2.5,
    0.0,
    2**64,
    "",
    "x",
    "call",
    "A" * 70,
    [],
    [1, 1],
    [1, "a", True],
    {},
    {"values": [1]},
    {"values": []},
    {"range": {"start": 0, "stop": 3, "step": 0}},
    {"range": {"start": 0, "stop": 3, "step": 1}},
    {"linspace": {"start": 0, "stop": 1, "num": 0}},
    {"count": 1, "size": 1},
    {"size": 3},
    {"Bad-Name": {"values": [1]}},
]


# The other kinds of space (paired axes, a sampled block), probed the same way.
DESIGNED = [
    json.loads((PROJECT_ROOT / "examples" / name).read_text())
    for name in ("paired-axes.json", "lhs.json")
]


def cases() -> list[Any]:
    bodies: list[Any] = [CONTRACT_EXAMPLE, *DESIGNED, *(b.body for b in BAD)]
    for path, probe in itertools.product(EXAMPLE_PATHS, PROBES):
        bodies.append(replace_at(CONTRACT_EXAMPLE, path, probe))
    for example in DESIGNED:
        for path, probe in itertools.product(all_paths(example), PROBES):
            bodies.append(replace_at(example, path, probe))
    for path in EXAMPLE_PATHS:
        if path:
            body = copy.deepcopy(CONTRACT_EXAMPLE)
            target = body
            for key in path[:-1]:
                target = target[key]
            del target[path[-1]]
            bodies.append(body)
    return bodies


def test_the_model_equals_the_request_schema() -> None:
    schema = request_schema()
    without_meta = {k: v for k, v in schema.items() if k != "$schema"}
    document = model_document()
    assert inline(document, document["definitions"]) == inline(without_meta, schema["definitions"])
    jsonschema.Draft4Validator.check_schema(document)


def test_the_model_and_the_schema_agree_on_every_generated_case() -> None:
    verdicts = [(SCHEMA.is_valid(body), MODEL.is_valid(body)) for body in cases()]
    disagreements = [i for i, (a, b) in enumerate(verdicts) if a != b]
    assert disagreements == []
    accepted = sum(a for a, _ in verdicts)
    assert accepted > 10 and len(verdicts) - accepted > 100  # both sides are exercised


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EXAMPLE_PATHS), json_values)
def test_the_model_and_the_schema_agree_on_random_bodies(path: tuple[Any, ...], value: Any) -> None:
    body = replace_at(CONTRACT_EXAMPLE, path, value)
    assert SCHEMA.is_valid(body) == MODEL.is_valid(body)


def test_the_packaged_definitions_are_the_generated_models() -> None:
    body = merge.rest_api()["Properties"]["DefinitionBody"]
    assert body["definitions"] == merge.request_models()
    (post,) = [p for p in body["paths"]["/sweeps"]["post"]["parameters"] if p["in"] == "body"]
    assert post["schema"] == {"$ref": f"#/definitions/{merge.REQUEST_MODEL}"}
