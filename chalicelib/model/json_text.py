"""JSON text read by the contract's rule: a name given twice in one object is a problem.

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
    instead (a zip member named twice, one parameter given two axes: the client said two
    things), its other problems found in it as ``json`` read it, so all are answered at once."""

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


def read(text: str) -> tuple[Any, list[Problem]]:
    """JSON text as ``json.loads`` reads it (its errors pass through), with a problem for each
    name given twice in one object, at its pointer (``json`` keeps the last value silently;
    so does the body returned here). The API validates that body as usual and answers every
    problem at once: a repeated name must not hide the body's other problems."""
    repeated: list[_Repeated] = []
    body = json.loads(text, object_pairs_hook=_objects(repeated))
    if not repeated:
        return body, []
    try:  # rare: the body is walked only to say where
        problems = _repeated_names(body, ())[:MAX_LISTED]
    except RecursionError:
        problems = []
    return body, problems or [Problem("/", "a name is given twice in one object")]


def loads(text: str) -> Any:
    """JSON text by ``read``'s rule, a name given twice being an ``InvalidRequest`` that names
    each at its pointer: the ``sweeps`` client refuses such a request (a file or text the user
    wrote) before sending it, as the API would (the API's bodies use ``read``)."""
    body, problems = read(text)
    if problems:
        raise InvalidRequest(problems[0].message, problems)
    return body
