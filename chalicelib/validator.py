"""Request validation: the one JSON Schema, then the checks a schema cannot express.

Every problem is collected before answering, each with a JSON pointer, so a client fixes a
body in one round trip. Semantic checks run on whatever parts are well-formed, so a schema
error in one axis does not hide a domain error in another.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from chalicelib.errors import InvalidRequest, Problem, pointer
from chalicelib.partitioner import ShardSpec, shard_count
from chalicelib.simulations import REGISTRY, Simulation
from chalicelib.space import Axis, LinspaceAxis, ParameterSpace, RangeAxis, axis_from_dict

SCHEMA_PATH = Path(__file__).with_name("request_schema.json")
NAME_PATTERN = "^[a-z][a-z0-9_]{0,62}$"


@cache
def request_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


@cache
def _schema_validator() -> jsonschema.Draft4Validator:
    schema = request_schema()
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


@cache
def _axis_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(request_schema()["definitions"]["axis"])


@dataclass(frozen=True)
class Limits:
    """What a stage allows; the worker re-parses a request with ``None`` (the parent checked)."""

    max_points: int
    max_shards: int
    allow_fault_injection: bool


@dataclass(frozen=True)
class SweepRequest:
    simulation: str
    space: ParameterSpace
    shards: ShardSpec
    seed: int = 0
    label: str | None = None
    fail_shards: tuple[int, ...] = ()

    @property
    def total_points(self) -> int:
        return self.space.size

    @property
    def shard_count(self) -> int:
        return shard_count(self.total_points, self.shards)

    def to_dict(self) -> dict[str, Any]:
        """Canonical form: what the manifest records and the worker re-parses."""
        body: dict[str, Any] = {
            "simulation": self.simulation,
            "parameters": self.space.to_dict(),
            "shards": self.shards.to_dict(),
            "seed": self.seed,
        }
        if self.label is not None:
            body["label"] = self.label
        if self.fail_shards:
            body["fail_shards"] = list(self.fail_shards)
        return body


def validate_request(body: Any, limits: Limits | None) -> SweepRequest:
    """Parse a request body or raise InvalidRequest naming every problem."""
    problems = _schema_problems(body)
    problems += _non_finite(body, ())
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", problems)
    sim = _check_simulation(body, problems)
    axes = _check_axes(body, sim, problems)
    total = math.prod(a.size for a in axes.values()) if axes is not None else None
    shards = _check_shards(body, total, limits, problems)
    _check_fail_shards(body, total, shards, limits, problems)
    if problems or sim is None or axes is None or shards is None:
        count = len(problems)
        first = problems[0].message if problems else "invalid request"
        more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
        raise InvalidRequest(first + more, problems)
    return SweepRequest(
        simulation=sim.name,
        space=ParameterSpace(tuple(axes), tuple(axes.values())),
        shards=shards,
        seed=body.get("seed", 0),
        label=body.get("label"),
        fail_shards=tuple(sorted(body.get("fail_shards", []))),
    )


def _schema_problems(body: Any) -> list[Problem]:
    problems = []
    for error in _schema_validator().iter_errors(body):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            patterns = list(error.schema.get("patternProperties", {}))
            is_params = path == ["parameters"]
            extras = [
                k
                for k in error.instance
                if k not in allowed and not any(re.search(p, k) for p in patterns)
            ]
            for extra in sorted(extras):
                message = (
                    f"parameter name {extra!r} must match {NAME_PATTERN}"
                    if is_params
                    else f"unknown field {extra!r}"
                )
                problems.append(Problem(pointer(*path, extra), message))
        elif error.validator == "required" and isinstance(error.validator_value, list):
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    problems.append(Problem(pointer(*path, name), f"{name!r} is required"))
        elif error.validator in ("minProperties", "maxProperties") and path[-1:] != ["parameters"]:
            options = " or ".join(repr(k) for k in error.schema.get("properties", {}))
            problems.append(Problem(pointer(*path), f"give exactly one of {options}"))
        elif error.validator == "not":
            problems.append(Problem(pointer(*path), "must not be 0"))
        else:
            problems.append(Problem(pointer(*path), error.message))
    return sorted(set(problems), key=lambda p: (p.path, p.message))


def _non_finite(value: Any, path: tuple[Any, ...]) -> list[Problem]:
    """JSON parsers accept NaN and Infinity; nothing in a sweep may be one."""
    if isinstance(value, float) and not math.isfinite(value):
        return [Problem(pointer(*path), f"numbers must be finite, got {value}")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, (*path, k))]
    if isinstance(value, list):
        return [p for k, v in enumerate(value) for p in _non_finite(v, (*path, k))]
    return []


def _check_simulation(body: dict[str, Any], problems: list[Problem]) -> Simulation | None:
    name = body.get("simulation")
    if not isinstance(name, str):
        return None
    sim = REGISTRY.get(name)
    if sim is None:
        known = ", ".join(sorted(REGISTRY))
        problems.append(Problem("/simulation", f"unknown simulation {name!r} (known: {known})"))
    return sim


def _check_axes(
    body: dict[str, Any], sim: Simulation | None, problems: list[Problem]
) -> dict[str, Axis] | None:
    """The well-formed axes, checked against the simulation; None if any axis is unusable."""
    params = body.get("parameters")
    if not isinstance(params, dict):
        return None
    axes: dict[str, Axis] = {}
    complete = True
    for name, spec in params.items():
        where = ("parameters", name)
        try:
            axis = _build_axis(spec)
        except OverflowError:  # a linspace end beyond the float range
            problems.append(Problem(pointer(*where, "linspace"), "numbers must be finite"))
            axis = None
        if axis is None:
            complete = False
            continue
        if axis.size == 0:
            problems.append(Problem(pointer(*where, "range"), "this range has no values"))
            complete = False
            continue
        axes[name] = axis
        if sim is None:
            continue
        param = sim.by_name.get(name)
        if param is None:
            takes = ", ".join(sim.by_name)
            problems.append(
                Problem(pointer(*where), f"{sim.name} takes no parameter {name!r} (takes: {takes})")
            )
            continue
        problems.extend(_axis_domain_problems(axis, param, where))
    if sim is not None:
        for param in sim.parameters:
            if param.required and param.name not in params:
                problems.append(
                    Problem("/parameters", f"{sim.name} needs an axis for {param.name!r}")
                )
    return axes if complete and axes else None


def _build_axis(spec: Any) -> Axis | None:
    try:
        if not isinstance(spec, dict) or len(spec) != 1:
            return None
        if not _axis_validator().is_valid(spec):
            return None
        return axis_from_dict(spec)
    except (KeyError, TypeError, ValueError):
        return None


def _axis_domain_problems(axis: Axis, param: Any, where: tuple[Any, ...]) -> list[Problem]:
    """Values are checked one by one for ``values``; monotone axes by their two ends."""
    if isinstance(axis, LinspaceAxis) and param.kind == "int":
        return [
            Problem(
                pointer(*where, "linspace"),
                f"{param.name} takes integers; linspace gives floats (use range or values)",
            )
        ]
    if isinstance(axis, RangeAxis | LinspaceAxis):
        kind = axis.kind
        candidates = [(pointer(*where, kind), v) for v in axis.bounds()]
    else:
        candidates = [
            (pointer(*where, "values", k), v) for k, v in enumerate(axis.to_dict()["values"])
        ]
    found = []
    for path, value in candidates:
        message = param.type_problem(value) or param.domain_problem(value)
        if message:
            found.append(Problem(path, message))
    return list(dict.fromkeys(found))


def _check_shards(
    body: dict[str, Any], total: int | None, limits: Limits | None, problems: list[Problem]
) -> ShardSpec | None:
    spec = body.get("shards")
    if not isinstance(spec, dict) or len(spec) != 1:
        return None
    key, value = next(iter(spec.items()))
    if key not in ("count", "size") or isinstance(value, bool) or not isinstance(value, int):
        return None
    if value < 1:
        return None
    shards = ShardSpec.from_dict(spec)
    if total is None:
        return shards
    if limits is not None and total > limits.max_points:
        problems.append(
            Problem(
                "/parameters", f"{total} points exceed this stage's limit of {limits.max_points}"
            )
        )
    if shards.mode == "count" and shards.value > total:
        problems.append(
            Problem("/shards/count", f"{shards.value} shards for {total} points: at most {total}")
        )
    count = shard_count(total, shards)
    if limits is not None and count > limits.max_shards:
        problems.append(
            Problem(
                f"/shards/{key}",
                f"{count} shards exceed this stage's limit of {limits.max_shards}",
            )
        )
    return shards


def _check_fail_shards(
    body: dict[str, Any],
    total: int | None,
    shards: ShardSpec | None,
    limits: Limits | None,
    problems: list[Problem],
) -> None:
    ids = body.get("fail_shards")
    if not isinstance(ids, list):
        return
    if limits is not None and not limits.allow_fault_injection:
        problems.append(Problem("/fail_shards", "fault injection is not allowed on this stage"))
        return
    if total is None or shards is None:
        return
    count = shard_count(total, shards)
    for k, shard_id in enumerate(ids):
        if isinstance(shard_id, int) and not isinstance(shard_id, bool) and shard_id >= count:
            problems.append(
                Problem(
                    pointer("fail_shards", k), f"shard {shard_id} does not exist (0..{count - 1})"
                )
            )
