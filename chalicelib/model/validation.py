"""Request validation: the one JSON Schema, then the checks a schema cannot express.

Every problem is collected before answering, each with a JSON pointer, so a client fixes a
body in one round trip. Semantic checks run on whatever parts are well-formed, so a schema
error in one axis does not hide a domain error in another, and the stage's limits are checked
whenever the point count is known (the axes' sizes, the sample's ``points``, ``replicates``),
whatever the values or distributions.

The schema's patterns are ECMA 262 regular expressions, as JSON Schema defines them; Python's
``re`` reads ``$`` differently (it also matches before a final newline), so the validator runs
on a copy whose patterns say what the schema means (``_python_patterns``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from chalicelib.model import ids, normal
from chalicelib.model.designs import (
    DESIGNS,
    Choice,
    Distribution,
    Normal,
    SampleBlock,
    distribution_from_dict,
)
from chalicelib.model.errors import InvalidRequest, Problem, pointer
from chalicelib.model.request import DEFAULT_SEED, TOLERATE_ALL, Limits, SweepRequest
from chalicelib.model.sharding import ShardSpec, shard_count
from chalicelib.model.space import (
    GridAxis,
    LinspaceAxis,
    ParameterSpace,
    RangeAxis,
    ValuesAxis,
    ZipAxis,
    axis_from_dict,
)
from chalicelib.simulations.declarations import Parameter, Simulation, Value
from chalicelib.simulations.registry import REGISTRY
from chalicelib.simulations.streams import canonical

SCHEMA_PATH = Path(__file__).with_name("request_schema.json")
MAX_PROBLEMS = 100
# A truncated normal with less probability than this inside the domain is a mistake (a mean
# far outside it), not a distribution: its values would all sit on the domain's edge.
MIN_NORMAL_MASS = 1e-9
# The most integers an ``integer`` distribution spans (``designs.Integer``: a draw is 53 bits).
INTEGER_MOST = 2**53


@cache
def request_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def _json_key(value: Any) -> Any:
    """A hashable key under JSON equality: 1 and 1.0 are one number, true is not 1."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return ("json", json.dumps(value, sort_keys=True))


def _unique_items(
    validator: Any, unique: bool, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """``uniqueItems`` in linear time. jsonschema's own falls back to comparing every pair
    when items of different types cannot be sorted: a 256 KB body of mixed values would then
    hold the API handler for minutes."""
    if not (unique and validator.is_type(instance, "array")):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _json_key(item)
        if key in seen:
            yield jsonschema.ValidationError(f"{item!r} appears more than once")
            return
        seen.add(key)


# Draft 4 as the schema says, with a uniqueItems check that cannot be made quadratic.
_Validator: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft4Validator, {"uniqueItems": _unique_items}
)
# Each pattern of the validator's copy of the schema -> the schema's own (for messages).
_ECMA_PATTERNS: dict[str, str] = {}


def _python_regex(pattern: str) -> str:
    """An ECMA 262 pattern for Python's ``re.search`` (what jsonschema runs): ``$`` outside a
    character class is the end of the text in ECMA 262 (no multiline flag in JSON Schema),
    while Python's also matches before a final newline, so it becomes ``\\Z``; else the label
    ``"abc\\n"`` would pass ``^[A-Za-z0-9._-]{1,64}$``."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        anchor = not (escaped or in_class) and char == "$"
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        out.append(r"\Z" if anchor else char)
    python = "".join(out)
    _ECMA_PATTERNS[python] = pattern
    return python


def _python_patterns(node: Any) -> Any:
    """``node`` (a schema) with every ``pattern`` and ``patternProperties`` key for Python."""
    if isinstance(node, list):
        return [_python_patterns(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            out[key] = _python_regex(value)
        elif key == "patternProperties" and isinstance(value, dict):
            out[key] = {_python_regex(k): _python_patterns(v) for k, v in value.items()}
        else:
            out[key] = _python_patterns(value)
    return out


@cache
def _schema_validator() -> Any:
    schema = request_schema()
    jsonschema.Draft4Validator.check_schema(schema)
    return _Validator(_python_patterns(schema))


def validate_request(
    body: Any, limits: Limits | None, found: Sequence[Problem] = ()
) -> SweepRequest:
    """Parse a request body or raise InvalidRequest naming every problem. ``found``: problems
    already found in the body's text (a name given twice, ``json_text.read``), listed first."""
    errors = list(_schema_validator().iter_errors(body))
    problems = [*found, *schema_problems(errors)]
    problems += _non_finite(body, ())
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", problems)
    sim = _check_simulation(body, problems)
    axes = _check_axes(body, sim, _malformed(body, errors, "parameters"), problems)
    sample = _check_sample(body, sim, _malformed(body, errors, "sample", "axes"), problems)
    _check_coverage(body, sim, problems)
    replicates = _count(body.get("replicates", 1))
    space = None
    if axes is not None and sample is not None and replicates is not None:
        block = sample if isinstance(sample, SampleBlock) else None
        space = ParameterSpace(tuple(axes), tuple(axes.values()), block, replicates)
    # The limits are checked whenever the count is known, even if some values are not valid.
    spec = body.get("sample")
    points = 1 if spec is None else _count(spec.get("points")) if isinstance(spec, dict) else None
    total = None
    if axes is not None and points is not None and replicates is not None:
        total = math.prod(a.size for a in axes.values()) * points * replicates
    shards = _check_shards(body, total, limits, problems)
    for field in FAULT_FIELDS:
        _check_fault_shards(field, body, total, shards, limits, problems)
    if problems or sim is None or space is None or shards is None:
        count = len(problems)
        first = problems[0].message if problems else "invalid request"
        more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
        if count > MAX_PROBLEMS:  # a body of 100,000 bad values must not answer 100,000 lines
            unlisted = Problem("/", f"{count - MAX_PROBLEMS} more problems are not listed")
            problems = [*problems[:MAX_PROBLEMS], unlisted]
        raise InvalidRequest(first + more, problems)
    return SweepRequest(
        simulation=sim.name,
        space=space,
        shards=shards,
        seed=body.get("seed", DEFAULT_SEED),
        label=body.get("label"),
        fail_shards=tuple(sorted(body.get("fail_shards", []))),
        crash_shards=tuple(sorted(body.get("crash_shards", []))),
        tolerated_failure_percentage=body.get("tolerated_failure_percentage", TOLERATE_ALL),
        reuse=body.get("reuse", False),
    )


def _count(value: Any) -> int | None:
    """A count the schema takes (an integer >= 1), or None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return value if ok else None


def schema_problems(errors: list[jsonschema.ValidationError]) -> list[Problem]:
    """JSON Schema's errors as the contract's problems, one per field where it names several
    (an unknown field, a missing one), sorted by path: every body the API checks is told
    its problems this way (``api.bodies`` too)."""
    problems = []
    for error in errors:
        path = list(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(schema.get("properties", {}))
            patterns = list(schema.get("patternProperties", {}))
            is_params = path == ["parameters"]
            extras = [
                k
                for k in error.instance
                if k not in allowed and not any(re.search(p, k) for p in patterns)
            ]
            for extra in sorted(extras):
                message = (
                    f"parameter name {extra!r} must match {ids.NAME_RE.pattern}"
                    if is_params
                    else f"unknown field {extra!r}"
                )
                problems.append(Problem(pointer(*path, extra), message))
        elif error.validator == "required" and isinstance(error.validator_value, list):
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    problems.append(Problem(pointer(*path, name), f"{name!r} is required"))
        elif error.validator in ("minProperties", "maxProperties"):
            problems.append(Problem(pointer(*path), _count_message(error, path, schema)))
        elif error.validator == "not":
            problems.append(Problem(pointer(*path), "must not be 0"))
        elif error.validator == "pattern":
            pattern = _ECMA_PATTERNS.get(str(error.validator_value), error.validator_value)
            problems.append(
                Problem(pointer(*path), f"{error.instance!r} does not match {pattern!r}")
            )
        else:
            problems.append(Problem(pointer(*path), error.message))
    return sorted(set(problems), key=lambda p: (p.path, p.message))


# How to say the size of the maps the schema bounds, by the last key of their path: the
# phrase before the bound, and the entries' noun (singular, plural).
_BOUNDED = {
    "zip": ("a zip pairs", ("parameter", "parameters")),
    "axes": ("give", ("sampled axis", "sampled axes")),
    "parameters": ("give", ("axis", "axes")),
}


def _count_message(
    error: jsonschema.ValidationError, path: list[Any], schema: dict[str, Any]
) -> str:
    """An object with too few or too many entries: one that holds exactly one of its fields
    (an axis, ``shards``, a distribution), or a bounded map (a zip's members, the sampled
    axes, the axes)."""
    if fields := schema.get("properties"):
        return "give exactly one of " + " or ".join(repr(k) for k in fields)
    phrase, (one, many) = _BOUNDED.get(
        str(path[-1]) if path else "", ("give", ("entry", "entries"))
    )
    bound = error.validator_value
    side = "at least" if error.validator == "minProperties" else "at most"
    return f"{phrase} {side} {bound} {one if bound == 1 else many}"


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


def _malformed(
    body: dict[str, Any], errors: list[jsonschema.ValidationError], *at: str
) -> set[str]:
    """Names under ``at`` (parameters, sample/axes) that the schema rejected (or never
    checked, their name being invalid)."""
    node: Any = body
    for key in at:
        node = node.get(key) if isinstance(node, dict) else None
    names = set(node) if isinstance(node, dict) else set()
    bad = {n for n in names if not ids.is_name(n)}
    depth = len(at)
    for error in errors:
        path = list(error.absolute_path)
        if len(path) > depth and tuple(path[:depth]) == at:
            bad.add(str(path[depth]))
    return bad


def _check_axes(
    body: dict[str, Any],
    sim: Simulation | None,
    malformed: set[str],
    problems: list[Problem],
) -> dict[str, GridAxis] | None:
    """The well-formed grid axes, checked against the simulation; None if any is unusable."""
    params = body.get("parameters")
    if not isinstance(params, dict):
        return None
    axes: dict[str, GridAxis] = {}
    complete = True
    for name, spec in params.items():
        where = ("parameters", name)
        try:
            axis = None if name in malformed else _build_axis(spec)
        except OverflowError:  # a linspace end beyond the float range
            problems.append(Problem(pointer(*where, "linspace"), "numbers must be finite"))
            axis = None
        if axis is None:
            complete = False
            continue
        param = sim.by_name.get(name) if sim is not None else None
        if isinstance(axis, ValuesAxis):
            problems.extend(_repeats(param, axis.values, pointer(*where, "values")))
        if isinstance(axis, ZipAxis):
            if not _zip_problems(axis, name, sim, where, problems):
                complete = False
                continue
            axes[name] = axis
            continue
        if axis.size == 0:
            problems.append(Problem(pointer(*where, "range"), "this range has no values"))
            complete = False
            continue
        axes[name] = axis
        if sim is None:
            continue
        if param is None:
            takes = ", ".join(sim.by_name)
            problems.append(
                Problem(pointer(*where), f"{sim.name} takes no parameter {name!r} (takes: {takes})")
            )
            continue
        found = _axis_domain_problems(axis, param, where)
        if not found and isinstance(axis, RangeAxis | LinspaceAxis):
            found = _monotone_repeats(param, axis, pointer(*where, axis.kind))
        problems.extend(found)
    if not params and not isinstance(body.get("sample"), dict):
        problems.append(Problem("/parameters", "give at least one axis (or a sample)"))
        return None
    return axes if complete else None


def _zip_problems(
    axis: ZipAxis,
    group: str,
    sim: Simulation | None,
    where: tuple[Any, ...],
    problems: list[Problem],
) -> bool:
    """Paired axes: one common length, a group name that is no parameter, members that are
    parameters with values of their type and domain. False if the axis has no one size."""
    lengths = {len(c) for c in axis.columns}
    if len(lengths) > 1:
        sizes = ", ".join(f"{n} {len(c)}" for n, c in zip(axis.names, axis.columns, strict=True))
        problems.append(
            Problem(pointer(*where, "zip"), f"paired lists must have one length; got {sizes}")
        )
    if len(lengths) == 1:
        params = [sim.by_name.get(m) if sim is not None else None for m in axis.names]
        first: dict[tuple[Any, ...], int] = {}
        for k, pair in enumerate(zip(*axis.columns, strict=True)):
            key = tuple(_received(p, v) for p, v in zip(params, pair, strict=True))
            if None in key:  # a value its parameter cannot take: a problem of its own
                continue
            if key in first:
                problems.append(
                    Problem(
                        pointer(*where, "zip"),
                        f"point {k} repeats point {first[key]} (every member's value the same)",
                    )
                )
                break
            first[key] = k
    if sim is None:
        return len(lengths) == 1
    if group in sim.by_name:
        problems.append(
            Problem(
                pointer(*where),
                f"{group!r} is a parameter of {sim.name}; a zip group needs a name of its own",
            )
        )
    for member, column in zip(axis.names, axis.columns, strict=True):
        at = (*where, "zip", member)
        param = sim.by_name.get(member)
        if param is None:
            takes = ", ".join(sim.by_name)
            problems.append(
                Problem(pointer(*at), f"{sim.name} takes no parameter {member!r} (takes: {takes})")
            )
            continue
        problems.extend(
            _value_problems(param, [(pointer(*at, k), v) for k, v in enumerate(column)])
        )
    return len(lengths) == 1


def _received(param: Parameter | None, value: Value) -> Any:
    """``value`` as a hashable key under the stream key's equality (``streams.canonical`` of
    what the function receives: a float parameter's value as float64), so two values are one
    key exactly when they would be one point: ``80`` and ``80.0`` are, and so are
    ``9007199254740992`` and ``9007199254740993`` (one float64), while ``0.0`` and ``-0.0``
    are two (the function can tell them apart, and their streams differ). JSON equality for a
    parameter the simulation lacks; None for a value its parameter cannot take (that is its
    own problem)."""
    if param is None:
        return _json_key(value)
    if param.type_problem(value) is not None:
        return None
    try:
        return canonical(float(value) if param.kind == "float" else value)
    except OverflowError:  # an integer beyond the float range: a domain problem of its own
        return None


def _repeats(param: Parameter | None, values: Sequence[Value], at: str) -> list[Problem]:
    """A list of values (an axis's, a choice's) that gives one point twice: the contract's
    "unique", which the schema cannot say (it depends on the parameter's type)."""
    first: dict[Any, int] = {}
    for k, value in enumerate(values):
        key = _received(param, value)
        if key is None:
            continue
        if key in first:
            j = first[key]
            same = _json_key(values[j]) == _json_key(value)
            what = (
                f"{value!r} appears"
                if same
                else f"{values[j]!r} and {value!r} are one value as the simulation receives it "
                f"({key}), which appears"
            )
            return [Problem(at, f"{what} more than once (items {j} and {k})")]
        first[key] = k
    return []


# A range or linspace whose points may be too close for a float to tell apart is checked point
# by point up to this many points; a longer one is refused as a whole.
CLOSE_POINTS_CHECKED = 1_000_000


def _monotone_repeats(param: Parameter, axis: RangeAxis | LinspaceAxis, at: str) -> list[Problem]:
    """A float parameter's range or linspace that gives one point twice, as ``_repeats`` finds
    for a ``values`` axis: integers beyond 2**53 a step apart, or a linspace whose step is
    below a float's resolution, round to one float64. Its points are monotone, so a repeat is
    two neighbours; a step over twice the resolution at the axis's largest magnitude cannot
    make one, so only such close axes are walked."""
    if param.kind != "float" or axis.size < 2:
        return []
    ends = [float(v) for v in axis.bounds()]
    resolution = math.ulp(max(abs(e) for e in ends))
    if abs(axis.step) > 2 * resolution:
        return []
    if axis.size > CLOSE_POINTS_CHECKED:
        return [
            Problem(
                at,
                f"this {axis.kind}'s {amount(axis.size)} points are closer together than a "
                f"float tells apart, so some would be one point; widen its step",
            )
        ]
    previous = _received(param, axis.value(0))
    for k in range(1, axis.size):
        key = _received(param, axis.value(k))
        if key == previous:
            return [
                Problem(
                    at,
                    f"this {axis.kind} gives {axis.value(k - 1)!r} and {axis.value(k)!r}, one "
                    f"value as the simulation receives it ({key}), so one point twice (items "
                    f"{k - 1} and {k}); widen its step",
                )
            ]
        previous = key
    return []


def _build_axis(spec: Any) -> GridAxis | None:
    try:
        return axis_from_dict(spec)
    except (KeyError, TypeError, ValueError):
        return None


def _value_problems(param: Parameter, candidates: list[tuple[str, Any]]) -> list[Problem]:
    found = []
    for path, value in candidates:
        message = param.type_problem(value) or param.domain_problem(value)
        if message:
            found.append(Problem(path, message))
    return list(dict.fromkeys(found))


def _axis_domain_problems(
    axis: GridAxis, param: Parameter, where: tuple[Any, ...]
) -> list[Problem]:
    """Values are checked one by one for ``values``; monotone axes by their two ends."""
    if isinstance(axis, LinspaceAxis) and param.kind == "int":
        return [
            Problem(
                pointer(*where, "linspace"),
                f"{param.name} takes integers; linspace gives floats (use range or values)",
            )
        ]
    if isinstance(axis, LinspaceAxis) and not math.isfinite(axis.stop - axis.start):
        return [
            Problem(
                pointer(*where, "linspace"),
                f"{param.name}'s linspace spans more than a float holds (its points would be "
                "inf or nan); narrow it",
            )
        ]
    if isinstance(axis, RangeAxis | LinspaceAxis):
        at = pointer(*where, axis.kind)
        if param.choices is None:
            values: Sequence[Value] = axis.bounds()  # monotone: its ends bracket every value
        elif axis.size > len(param.choices):
            return [
                Problem(
                    at,
                    f"{param.name} must be one of {list(param.choices)}; this {axis.kind} gives "
                    f"{amount(axis.size)} values (give them as values)",
                )
            ]
        else:  # not only its ends: every value must be one of the choices
            values = [axis.value(k) for k in range(axis.size)]
        candidates = [(at, v) for v in values]
    else:
        candidates = [
            (pointer(*where, "values", k), v) for k, v in enumerate(axis.to_dict()["values"])
        ]
    return _value_problems(param, candidates)


def _check_sample(
    body: dict[str, Any],
    sim: Simulation | None,
    malformed: set[str],
    problems: list[Problem],
) -> SampleBlock | bool | None:
    """The sampled block if well-formed and valid; False without one; None if unusable.
    Each well-formed axis is checked against its parameter even when others are not."""
    spec = body.get("sample")
    if spec is None:
        return False
    if not isinstance(spec, dict) or not isinstance(spec.get("axes"), dict):
        return None
    before = len(problems)
    distributions: dict[str, Distribution] = {}
    for name, dist_spec in spec["axes"].items():
        if name in malformed:
            continue
        param = sim.by_name.get(name) if sim is not None else None
        try:
            dist = distribution_from_dict(dist_spec, param)
        except OverflowError:  # a JSON integer beyond the float range
            kind = next(iter(dist_spec))
            problems.append(
                Problem(pointer("sample", "axes", name, kind), "numbers must be finite")
            )
            continue
        distributions[name] = dist
        if isinstance(dist, Choice):
            at = pointer("sample", "axes", name, "choice", "values")
            problems.extend(_repeats(param, dist.values, at))
        if sim is None:
            continue
        if param is None:
            takes = ", ".join(sim.by_name)
            problems.append(
                Problem(
                    pointer("sample", "axes", name),
                    f"{sim.name} takes no parameter {name!r} (takes: {takes})",
                )
            )
            continue
        problems.extend(_distribution_problems(dist, param, ("sample", "axes", name, dist.kind)))
    design, points = spec.get("design"), spec.get("points")
    if design not in DESIGNS or not isinstance(points, int) or isinstance(points, bool):
        return None
    if points < 1 or malformed or len(problems) > before:
        return None
    seed = body.get("seed", 0)
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0
    names = tuple(distributions)
    return SampleBlock(design, points, names, tuple(distributions.values()), seed)


_CONTINUOUS = ("uniform", "loguniform", "normal")


def _distribution_problems(
    dist: Distribution, param: Parameter, where: tuple[Any, ...]
) -> list[Problem]:
    """A distribution against its parameter: a type it can give, ends inside the domain."""
    args = dist.arguments()
    at = pointer(*where)
    if dist.kind == "choice":
        candidates = [(pointer(*where, "values", k), v) for k, v in enumerate(args["values"])]
        return _value_problems(param, candidates)
    if dist.kind in _CONTINUOUS and param.kind != "float":
        use = "integer or choice" if param.kind == "int" else "choice"
        return [
            Problem(
                at, f"{param.name} takes {param.kind} values; {dist.kind} gives floats (use {use})"
            )
        ]
    if dist.kind == "integer" and param.kind != "int":
        use = "uniform" if param.kind == "float" else "choice"
        return [
            Problem(
                at,
                f"integer is for int parameters; {param.name} takes {param.kind} values "
                f"(use {use})",
            )
        ]
    if param.choices is not None:  # a distribution's ends say nothing of the values between
        return [
            Problem(
                at,
                f"{param.name} must be one of {list(param.choices)}; {dist.kind} gives other "
                "values (sample it with choice)",
            )
        ]
    if isinstance(dist, Normal):
        if not dist.sd > 0:
            return [Problem(pointer(*where, "sd"), f"sd must be > 0, got {args['sd']!r}")]
        a, b = dist.standard_bounds
        if normal.truncated_mass(a, b) < MIN_NORMAL_MASS:
            # Either the domain lies far out in a tail, or sd is so wide that the domain is a
            # sliver of its middle: the advice differs.
            advice = (
                "narrow sd, or sample it with uniform (this normal is flat over the domain)"
                if max(abs(a), abs(b)) < 1
                else "move the mean or widen sd"
            )
            return [
                Problem(
                    at,
                    f"normal(mean={dist.mean:g}, sd={dist.sd:g}) puts almost no probability "
                    f"inside {param.name}'s domain; {advice}",
                )
            ]
        return []
    found = []
    span = args["high"] - args["low"] + 1 if dist.kind == "integer" else 0
    if span > INTEGER_MOST:  # a draw is one float of 53 bits: some integers would never come out
        found.append(
            Problem(
                at,
                f"integer draws each of at most 2^53 values equally; low..high spans "
                f"{amount(span)} (narrow it)",
            )
        )
    if dist.kind == "loguniform" and not args["low"] > 0:
        found.append(
            Problem(pointer(*where, "low"), f"loguniform needs low > 0, got {args['low']!r}")
        )
    if not args["low"] < args["high"]:
        found.append(
            Problem(at, f"low must be below high, got {args['low']!r} >= {args['high']!r}")
        )
    found += _value_problems(param, [(pointer(*where, end), args[end]) for end in ("low", "high")])
    return found


def _check_coverage(body: dict[str, Any], sim: Simulation | None, problems: list[Problem]) -> None:
    """Each parameter set at most once (a plain axis, a zip member or a sampled axis), and
    every required one set."""
    setters: dict[str, list[str]] = {}
    params = body.get("parameters")
    for name, spec in params.items() if isinstance(params, dict) else ():
        members = spec.get("zip") if isinstance(spec, dict) else None
        if isinstance(members, dict):
            for member in members:
                setters.setdefault(member, []).append(pointer("parameters", name, "zip", member))
        else:
            setters.setdefault(name, []).append(pointer("parameters", name))
    sample = body.get("sample")
    sampled = sample.get("axes") if isinstance(sample, dict) else None
    for name in sampled if isinstance(sampled, dict) else ():
        setters.setdefault(name, []).append(pointer("sample", "axes", name))
    for name, paths in setters.items():
        for path in paths[1:]:
            problems.append(
                Problem(path, f"{name!r} is set more than once ({', '.join(paths)}); set it once")
            )
    if sim is None:
        return
    for param in sim.parameters:
        if param.required and param.name not in setters:
            problems.append(Problem("/parameters", f"{sim.name} needs an axis for {param.name!r}"))


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
                "/parameters",
                f"{amount(total)} points exceed this stage's limit of {limits.max_points}",
            )
        )
    if shards.mode == "count" and shards.value > total:
        problems.append(
            Problem(
                "/shards/count",
                f"{amount(shards.value)} shards for {amount(total)} points: at most "
                f"{amount(total)}",
            )
        )
    count = shard_count(total, shards)
    if limits is not None and count > limits.max_shards:
        problems.append(
            Problem(
                f"/shards/{key}",
                f"{amount(count)} shards exceed this stage's limit of {limits.max_shards}",
            )
        )
    return shards


# Counts up to this many digits are written out in messages; a larger one, which only a space
# of huge ranges makes, as a power of ten: Python refuses to turn an int of over 4,300 digits
# into text, and a 400 is what the client gets, never that error's 500.
EXACT_DIGITS = 30


def amount(n: int) -> str:
    """A count for a message: exact, or ``about 10^k`` when it has more than EXACT_DIGITS
    digits (``math.log10`` reads an int of any size)."""
    if n < 10**EXACT_DIGITS:
        return str(n)
    return f"about 10^{math.floor(math.log10(n))}"


# Fault injection: shard lists honoured only where the stage allows it (else 400).
FAULT_FIELDS = ("fail_shards", "crash_shards")


def _check_fault_shards(
    field: str,
    body: dict[str, Any],
    total: int | None,
    shards: ShardSpec | None,
    limits: Limits | None,
    problems: list[Problem],
) -> None:
    failing = body.get(field)
    if not isinstance(failing, list):
        return
    if limits is not None and not limits.allow_fault_injection:
        problems.append(Problem(f"/{field}", "fault injection is not allowed on this stage"))
        return
    if total is None or shards is None:
        return
    count = shard_count(total, shards)
    for k, shard_id in enumerate(failing):
        if isinstance(shard_id, int) and not isinstance(shard_id, bool) and shard_id >= count:
            problems.append(
                Problem(pointer(field, k), f"shard {shard_id} does not exist (0..{count - 1})")
            )
