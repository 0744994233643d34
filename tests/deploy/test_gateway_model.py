"""The API Gateway model is a coarse, certain subset of the request schema (deploy.gateway_model).

It may let through bodies the app then refuses (the app lists every problem); it must never
refuse a body the app accepts, and it must refuse the coarse violations listed below. Bodies are
generated from ``request_schema.json`` itself, so fields added to it are covered at once.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
from collections import Counter
from functools import cache
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.config import PROJECT_ROOT
from chalicelib.model.errors import InvalidRequest
from chalicelib.model.validation import request_schema, validate_request
from deploy import gateway_model, merge
from tests.support import CONTRACT_EXAMPLE
from tests.support.requests import BAD, EXAMPLE_PATHS, all_paths, json_values, replace_at


def model_document() -> dict[str, Any]:
    """The request model as API Gateway gets it (one model, no references)."""
    return merge.request_models()[merge.REQUEST_MODEL]


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


EXAMPLES = [json.loads(p.read_text()) for p in sorted((PROJECT_ROOT / "examples").glob("*.json"))]
# A simulation with parameters it declares: what the app checks beyond the schema.
ANCHORS = [
    {k: b[k] for k in ("simulation", "parameters") if k in b} for b in (CONTRACT_EXAMPLE, *EXAMPLES)
]


def keywords(node: Any) -> set[str]:
    """Every schema keyword used in a model (property names are not keywords)."""
    if not isinstance(node, dict):
        return set()
    found = set(node)
    for name, value in node.items():
        if name == "properties":
            for sub in value.values():
                found |= keywords(sub)
        elif isinstance(value, dict):
            found |= keywords(value)
    return found


def test_the_model_is_plain_draft_4() -> None:
    document = model_document()
    jsonschema.Draft4Validator.check_schema(document)
    assert keywords(document) <= gateway_model.KEYWORDS
    types = [p.get("type") for p in document["properties"].values()]
    assert all(t is None or isinstance(t, str) for t in types)  # never an array of types
    assert set(document["properties"]) == set(request_schema()["properties"])
    assert document["required"] == request_schema()["required"]


def test_the_model_never_refuses_what_the_schema_accepts_among_the_probes() -> None:
    verdicts = [(SCHEMA.is_valid(body), MODEL.is_valid(body)) for body in cases()]
    assert [i for i, (schema, model) in enumerate(verdicts) if schema and not model] == []
    accepted = sum(a for a, _ in verdicts)
    assert accepted > 10 and len(verdicts) - accepted > 100  # both sides are exercised


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EXAMPLE_PATHS), json_values)
def test_the_model_never_refuses_what_the_schema_accepts_at_random(
    path: tuple[Any, ...], value: Any
) -> None:
    body = replace_at(CONTRACT_EXAMPLE, path, value)
    assert MODEL.is_valid(body) or not SCHEMA.is_valid(body)


GENERATED = int(os.environ.get("SWEEP_GATEWAY_EXAMPLES", "1000"))  # x2 bodies each
# Keywords the body generator understands; a schema using another fails here, loudly, rather
# than generating bodies that skip it.
GENERATOR_KEYWORDS = {
    "$schema", "title", "description", "definitions", "$ref", "type", "enum", "not",
    "properties", "required", "additionalProperties", "patternProperties", "minProperties",
    "maxProperties", "items", "minItems", "maxItems", "uniqueItems", "minimum", "maximum",
    "minLength", "maxLength", "pattern",
}  # fmt: skip
MAX_LIST = 4  # generated arrays stay short; bounds above that are tested in test_validator


_BUILT: dict[int, tuple[dict[str, Any], st.SearchStrategy[Any]]] = {}


def from_schema(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under a draft-4 ``node``, built once per node (building is the slow part)."""
    if id(node) not in _BUILT:
        _BUILT[id(node)] = (node, _build(node, root))  # the node is kept alive with its id
    return _BUILT[id(node)][1]


def _build(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    unknown = set(node) - GENERATOR_KEYWORDS
    assert not unknown, f"teach from_schema the keywords {unknown}"
    if "$ref" in node:
        return from_schema(root["definitions"][node["$ref"].rsplit("/", 1)[1]], root)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([_build({**node, "type": k}, root) for k in kind])
    if kind == "object":
        return _objects(node, root)
    if kind == "array":
        items = from_schema(node.get("items", {}), root)
        size = node.get("minItems", 0), min(node.get("maxItems", MAX_LIST), MAX_LIST)
        unique = {"unique_by": json.dumps} if node.get("uniqueItems") else {}
        return st.lists(items, min_size=size[0], max_size=max(size), **unique)  # type: ignore[arg-type]
    if kind == "string":
        if "pattern" in node:
            text = st.from_regex(node["pattern"], fullmatch=True)
        else:
            text = st.text(min_size=node.get("minLength", 0), max_size=node.get("maxLength", 20))
        return text.filter(
            lambda t: node.get("minLength", 0) <= len(t) <= node.get("maxLength", 10**6)
        )
    return _scalars(node, kind)


def _scalars(node: dict[str, Any], kind: Any) -> st.SearchStrategy[Any]:
    low, high = node.get("minimum"), node.get("maximum")
    if kind == "integer":
        values: st.SearchStrategy[Any] = st.integers(low, high)
    elif kind == "number":
        floats = st.floats(low, high, allow_nan=False, allow_infinity=False)
        values = st.integers(low, high) | floats
    elif kind == "boolean":
        values = st.booleans()
    else:
        raise AssertionError(f"teach from_schema the type {kind!r}")
    if "not" in node:
        values = values.filter(lambda v: not jsonschema.Draft4Validator(node["not"]).is_valid(v))
    return values


@cache
def _regex(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


@st.composite
def _objects(draw: st.DrawFn, node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    properties = node.get("properties", {})
    required = list(node.get("required", []))
    optional = [name for name in properties if name not in required]
    patterns = list(node.get("patternProperties", {}))
    free = 3 if patterns else 0
    low = max(0, node.get("minProperties", 0) - len(required))
    high = min(node.get("maxProperties", 10**6) - len(required), len(optional) + free)
    count = draw(st.integers(low, high))
    picked = draw(st.integers(max(0, count - free), min(count, len(optional))))
    names = required + draw(st.permutations(optional))[:picked]
    body = {name: draw(from_schema(properties[name], root)) for name in names}
    for _ in range(count - picked):
        pattern = draw(st.sampled_from(patterns))
        key = draw(_regex(pattern).filter(lambda k: k not in body))
        body[key] = draw(from_schema(node["patternProperties"][pattern], root))
    return body


def test_the_gateway_accepts_every_body_the_app_accepts() -> None:
    """Thousands of bodies generated from the request schema itself (so a field added to it is
    generated too), each valid under it: the gateway model accepts every one. The app accepts
    only schema-valid bodies (validate_request reports every schema error), so nothing it
    accepts can be a 400 at the gateway. Every top-level field of the schema must occur."""
    schema = request_schema()
    seen: Counter[str] = Counter()
    accepted_by_app = [0]

    @settings(
        max_examples=GENERATED,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(from_schema(schema, schema).filter(SCHEMA.is_valid), st.sampled_from(ANCHORS))
    def check(body: dict[str, Any], anchor: dict[str, Any]) -> None:
        # Half the bodies keep a known simulation and its parameters (which the app checks
        # against its declarations), so the app accepts them; every other field is generated.
        for candidate in (body, {**body, **anchor}):
            assert SCHEMA.is_valid(candidate)
            seen.update(list(candidate))
            try:
                validate_request(candidate, None)
                accepted_by_app[0] += 1
            except InvalidRequest:
                pass
            assert MODEL.is_valid(candidate), candidate

    check()
    for example in (CONTRACT_EXAMPLE, *EXAMPLES):
        validate_request(example, None)
        assert MODEL.is_valid(example)
    assert set(seen) == set(schema["properties"]), "a field of the schema was never generated"
    # Enough of them valid to the app too for the check to mean something: the anchored
    # bodies alone are 26-34 % valid from one draw to the next (a bound of 25 % across both
    # candidates failed on a draw of exactly 250).
    assert accepted_by_app[0] > GENERATED // 8, accepted_by_app


REJECTED = {
    "not an object": [CONTRACT_EXAMPLE],
    "a string body": "simulation",
    "no simulation": {k: v for k, v in CONTRACT_EXAMPLE.items() if k != "simulation"},
    "no parameters": {k: v for k, v in CONTRACT_EXAMPLE.items() if k != "parameters"},
    "no shards": {k: v for k, v in CONTRACT_EXAMPLE.items() if k != "shards"},
    "simulation not a string": {**CONTRACT_EXAMPLE, "simulation": 7},
    "parameters not an object": {**CONTRACT_EXAMPLE, "parameters": [1, 2]},
    "shards not an object": {**CONTRACT_EXAMPLE, "shards": 4},
    "seed not an integer": {**CONTRACT_EXAMPLE, "seed": 1.5},
    "seed a string": {**CONTRACT_EXAMPLE, "seed": "7"},
    "an unknown top-level field": {**CONTRACT_EXAMPLE, "shard_count": 4},
}


@pytest.mark.parametrize("name", REJECTED)
def test_the_gateway_rejects_coarse_violations(name: str) -> None:
    assert not MODEL.is_valid(REJECTED[name])
    assert not SCHEMA.is_valid(REJECTED[name])  # and the app would have said 400 too


def test_the_packaged_definitions_are_the_generated_models() -> None:
    body = merge.rest_api()["Properties"]["DefinitionBody"]
    assert body["definitions"] == merge.request_models()
    (post,) = [p for p in body["paths"]["/sweeps"]["post"]["parameters"] if p["in"] == "body"]
    assert post["schema"] == {"$ref": f"#/definitions/{merge.REQUEST_MODEL}"}
