"""Bad input, generated: never a 5xx, never a dispatch or a write on a rejection.

Hypothesis drives every route through ``chalice.test.Client`` with bodies of every shape:
wrong types, deep nesting, huge and non-finite numbers, unicode, oversize arrays and strings,
duplicate keys, non-JSON and non-UTF-8 bytes, wrong content types; and hostile identifiers in
paths and query strings. ``make test`` runs a few hundred cases; ``make fuzz`` sets
SWEEP_FUZZ_EXAMPLES=10000 per test. The store is a folder (fast), the invoker records.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import app
from chalicelib import wiring
from chalicelib.config import Settings
from chalicelib.fanout.invoking import Function, Invoker
from chalicelib.storage.stores import LocalStore
from chalicelib.wiring import Runtime
from tests.support import CONTRACT_EXAMPLE

EXAMPLES = int(os.environ.get("SWEEP_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=EXAMPLES <= 150,  # make test: the same cases every time
)
ERROR_KEYS = {"error", "message", "problems"}


class Recorder(Invoker):
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        self.calls.append((function, payload))


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.invoker = Recorder()
        self.settings = Settings(local_root=root, max_body_bytes=64 * 1024, max_points=10**6)
        wiring.use(Runtime(self.settings, LocalStore(root), self.invoker))
        self.client = Client(app, stage_name="local")

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("fuzz"))
    yield w
    wiring.use(None)


def check(world: World, response: Any, before_files: list[str], before_calls: int) -> None:
    assert response.status_code < 500, response.body
    answer = json.loads(response.body)
    if response.status_code >= 400:
        assert set(answer) == ERROR_KEYS
        assert isinstance(answer["message"], str) and "\n" not in answer["message"]
        assert world.files() == before_files  # nothing written
        assert len(world.invoker.calls) == before_calls  # nothing dispatched
    for path in world.files():
        assert path.startswith(("runs/", "outcomes/", "results/")), path


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)

# Paths into the contract example, for structure-aware mutations.
PATHS = [
    (),
    ("simulation",),
    ("parameters",),
    ("parameters", "volatility"),
    ("parameters", "volatility", "linspace"),
    ("parameters", "volatility", "linspace", "num"),
    ("parameters", "strike", "range", "step"),
    ("parameters", "strike", "range", "stop"),
    ("parameters", "option", "values"),
    ("parameters", "paths", "values"),
    ("shards",),
    ("shards", "count"),
    ("seed",),
    ("label",),
    ("fail_shards",),
    ("tolerated_failure_percentage",),
]


def mutate(path: tuple[str, ...], value: Any) -> Any:
    body: Any = copy.deepcopy(CONTRACT_EXAMPLE)
    if not path:
        return value
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return body


def post(world: World, raw: bytes | str, content_type: str = "application/json") -> Any:
    return world.client.http.post("/sweeps", headers={"Content-Type": content_type}, body=raw)


@FUZZ
@given(body=json_values)
def test_random_json_bodies(world: World, body: Any) -> None:
    files, calls = world.files(), len(world.invoker.calls)
    check(world, post(world, json.dumps(body)), files, calls)


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values)
def test_mutated_contract_example(world: World, path: tuple[str, ...], value: Any) -> None:
    files, calls = world.files(), len(world.invoker.calls)
    check(world, post(world, json.dumps(mutate(path, value))), files, calls)


@FUZZ
@given(
    raw=st.binary(max_size=300)
    | st.text(max_size=300)
    | st.integers(1, 200_000).map(lambda n: "[" * n)
    | st.integers(1, 5000).map(lambda n: json.dumps(CONTRACT_EXAMPLE | {"label": "x" * n}))
    | st.integers(1, 20_000).map(
        lambda n: json.dumps(mutate(("parameters", "paths", "values"), list(range(n))))
    )
    | st.sampled_from(
        [
            '{"simulation":"monte_carlo_pi","simulation":"option_pricing"}',
            '{"shards":{"count":1,"count":2}}',
            '{"seed": NaN}',
            '{"seed": Infinity}',
            '{"seed": 1e999999}',
            "\ufeff{}",
            "\x00",
        ]
    ),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain", "", "*/*"]
    ),
)
def test_raw_bodies_and_content_types(world: World, raw: bytes | str, content_type: str) -> None:
    files, calls = world.files(), len(world.invoker.calls)
    check(world, post(world, raw, content_type), files, calls)


hostile_ids = st.one_of(
    st.text(min_size=1, max_size=80),
    st.sampled_from(
        [
            "..",
            "../../etc/passwd",
            "..%2F..%2Fetc",
            "%2e%2e%2f",
            "a/b",
            "a\x00bcdefghi",
            "x" * 65,
            "x" * 10_000,
            "_index",
            "runs",
            "20261126T000000000Z-000000000000",
        ]
    ),
)


@FUZZ
@given(run_id=hostile_ids, route=st.sampled_from(["", "/cancel", "/redrive"]), body=json_values)
def test_hostile_run_ids_on_every_route(world: World, run_id: str, route: str, body: Any) -> None:
    files, calls = world.files(), len(world.invoker.calls)
    path = f"/sweeps/{quote(run_id, safe='')}{route}"
    if route:
        response = world.client.http.post(
            path, headers={"Content-Type": "application/json"}, body=json.dumps(body)
        )
    else:
        response = world.client.http.get(path)
    assert response.status_code in (400, 404, 405), (run_id, response.status_code)
    if response.status_code != 405 and response.body:
        check(world, response, files, calls)


@FUZZ
@given(limit=st.text(max_size=12) | st.integers(-5, 200).map(str), token=hostile_ids)
def test_listing_query_strings(world: World, limit: str, token: str) -> None:
    files, calls = world.files(), len(world.invoker.calls)
    response = world.client.http.get(
        f"/sweeps?limit={quote(limit, safe='')}&next={quote(token, safe='')}"
    )
    check(world, response, files, calls)
