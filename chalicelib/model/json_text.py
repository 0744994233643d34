"""JSON text read by the contract's rule: a name given twice in one object is refused.

Here, in the model, because both sides read requests by it: the API's bodies and the ``sweeps``
client (whose wheel ships ``chalicelib.model``, not the API's modules).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from chalicelib.model.errors import InvalidRequest, Problem, pointer

MAX_LISTED = 100  # problems listed for repeated names (a body may repeat thousands)


class _Repeated(dict[str, Any]):
    """An object of the body in which a name appeared more than once (``repeated``: those
    names). ``json`` keeps the last value of a repeated name silently; the body is refused
    instead, so what is validated is all the client said (a zip member named twice, one
    parameter given two axes)."""

    repeated: tuple[str, ...] = ()


def _objects(marked: list[_Repeated]) -> Any:
    """``json``'s object hook: a dict, or a ``_Repeated`` (also appended to ``marked``)."""

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) == len(pairs):
            return found
        counts = Counter(k for k, _ in pairs)
        repeated = _Repeated(found)
        repeated.repeated = tuple(k for k, n in counts.items() if n > 1)
        marked.append(repeated)
        return repeated

    return build


def _repeated_names(value: Any, path: tuple[Any, ...]) -> list[Problem]:
    """A problem for every name given twice in one object, at its pointer."""
    found = []
    if isinstance(value, _Repeated):
        found += [
            Problem(pointer(*path, name), f"{name!r} is given more than once in one object")
            for name in value.repeated
        ]
    if isinstance(value, dict):
        found += [p for k, v in value.items() for p in _repeated_names(v, (*path, k))]
    elif isinstance(value, list):
        found += [p for k, v in enumerate(value) for p in _repeated_names(v, (*path, k))]
    return found


def loads(text: str) -> Any:
    """JSON text as ``json.loads`` reads it (its errors pass through), except that a name given
    twice in one object is an ``InvalidRequest`` naming each at its pointer: ``json`` keeps
    the last value silently. The API's bodies (``api.bodies``) and the client's requests
    (``sweeps.client``: a file or text the user wrote) are read by this one rule."""
    repeated: list[_Repeated] = []
    body = json.loads(text, object_pairs_hook=_objects(repeated))
    if repeated:  # rare: the body is walked only to say where
        try:
            problems = _repeated_names(body, ())[:MAX_LISTED]
        except RecursionError:
            problems = []
        first = problems[0].message if problems else "a name is given twice in one object"
        raise InvalidRequest(first, problems)
    return body
