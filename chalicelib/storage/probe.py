"""The probe every deployed function answers: one HEAD of a random missing key, made inside the
function, so under the function's own role.

``make smoke`` invokes each function synchronously with ``PROBE`` and reads back what S3 said.
404 means the role may read its folder and S3 told it the key is absent. 403 means S3 refused to
say: the role lacks an unconditioned ``s3:ListBucket`` (docs/security.md), so every absent
cancel marker or success lock would fail a shard. The probe runs inside the function because
only there does a call carry the function's role; the alternative, an operator assuming the
role, would mean widening its trust policy, which the design refuses.

Harmless by construction: one HEAD of a key nothing writes (``layout.probe_key``), nothing
written, and an event that names the probe but carries anything else is refused before any call.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Final

from chalicelib.storage import layout
from chalicelib.storage.stores import ObjectStore, StorageError

FIELD: Final = "sweeps_probe"
ACTION: Final = "head_missing_key"
PROBE: Final = {FIELD: ACTION}


def is_probe(event: object) -> bool:
    """Whether an event is meant for the probe, well-formed or not: it names the probe's field
    (no API Gateway, dispatch, worker, OnFailure or schedule event has it)."""
    return isinstance(event, dict) and FIELD in event


def problems(event: dict[str, Any]) -> list[str]:
    """Why an event naming the probe is not exactly ``PROBE``; empty when it is."""
    found = [] if event.get(FIELD) == ACTION else [f"{FIELD} must be {ACTION!r}"]
    return found + [f"unexpected field {name!r}" for name in sorted(event) if name != FIELD]


def answer(event: dict[str, Any], store: ObjectStore, function: str) -> dict[str, Any]:
    """HEAD a fresh random key under ``runs/_probe/``; report S3's status (404 expected) or the
    error it raised, which names the status (403: no ListBucket)."""
    refused = problems(event)
    if refused:
        return {"probe": "refused", "function": function, "problems": refused}
    key = layout.probe_key(secrets.token_hex(16))
    try:
        status = 200 if store.exists(key) else 404
    except StorageError as error:
        return {"probe": ACTION, "function": function, "key": key, "error": str(error)}
    return {"probe": ACTION, "function": function, "key": key, "status": status}


def answering[Handler: Callable[..., Any]](
    handler: Handler, store: Callable[[], ObjectStore]
) -> Handler:
    """``handler``, except that a probe event is answered before it (or Chalice's event
    classes, which would reject the probe's shape) sees anything."""

    def wrapped(event: Any, context: Any) -> Any:
        if is_probe(event):
            return answer(event, store(), str(getattr(context, "function_name", "")))
        return handler(event, context)

    return wrapped  # type: ignore[return-value]  # same call signature as handler
