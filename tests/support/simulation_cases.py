"""A small sweep of any registered simulation, built from its declaration alone.

Tests that must cover every simulation take their cases from here, so a simulation added as one
new file in ``chalicelib/simulations/`` is covered with no test to edit (docs/simulations.md).
"""

from __future__ import annotations

from typing import Any

from chalicelib.simulations.declarations import Parameter, Simulation, Value

SHARDS = 4
FAILED_SHARD = 1


def two_values(p: Parameter) -> list[Value]:
    """Two distinct values in ``p``'s domain, the default first when it has one."""
    if p.kind == "bool":
        return [True, False]
    if p.choices is not None:
        ordered = [p.default, *p.choices] if p.default is not None else list(p.choices)
        candidates: list[Value] = list(dict.fromkeys(ordered))
    elif p.kind == "str":
        candidates = [str(p.default or "a"), "b"]
    else:
        base = float(p.default) if p.default is not None else (p.minimum or 0.0) + 1
        numbers = [base, base + 1, base * 1.5, base - 1, base / 2, p.maximum]
        if p.kind == "int":
            candidates = list(dict.fromkeys(int(n) for n in numbers if n is not None))
        else:
            candidates = list(dict.fromkeys(float(n) for n in numbers if n is not None))
    values = [v for v in candidates if p.type_problem(v) is None and p.domain_problem(v) is None][
        :2
    ]
    if len(values) < 2:
        raise ValueError(f"{p.name}: no two values found in its domain")
    return values


def swept(sim: Simulation) -> list[Parameter]:
    """Every required parameter, and the first parameter of each type with a default; the
    others stay unswept, so the run also shows them read as their defaults."""
    chosen = [p for p in sim.parameters if p.required]
    kinds = {p.kind for p in chosen}
    for p in sim.parameters:
        if not p.required and p.kind not in kinds:
            chosen.append(p)
            kinds.add(p.kind)
    return [p for p in sim.parameters if p in chosen]


def sample_request(sim: Simulation) -> dict[str, Any]:
    """A request body of ``sim``: two values of each swept parameter, ``SHARDS`` shards (fewer
    for fewer points), and shard ``FAILED_SHARD`` failed on purpose (it writes no results)."""
    parameters = {p.name: {"values": two_values(p)} for p in swept(sim)}
    return {
        "simulation": sim.name,
        "parameters": parameters,
        "shards": {"count": min(SHARDS, 2 ** len(parameters))},
        "seed": 3,
        "fail_shards": [FAILED_SHARD],
    }
