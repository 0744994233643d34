"""HTTP glue: turn a Chalice request into a call of the domain logic and its answer into JSON.

Every error a client can cause is a ``SweepError`` with the contract's body; anything else is
logged and answered as a 500 with the same shape, never with a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib import runs
from chalicelib.errors import SweepError
from chalicelib.logs import logger
from chalicelib.runtime import Runtime
from chalicelib.simulations import REGISTRY

JSON: dict[str, str | list[str]] = {"Content-Type": "application/json"}


def _answer(status: int, call: Callable[[], Any]) -> Response:
    try:
        return Response(body=call(), status_code=status, headers=JSON)
    except SweepError as exc:
        return Response(body=exc.body(), status_code=exc.status, headers=JSON)
    except Exception:
        logger.exception("unhandled error")
        body = {"error": "internal_error", "message": "internal error", "problems": []}
        return Response(body=body, status_code=500, headers=JSON)


def _body(request: Request | None) -> tuple[bytes | str | None, str | None]:
    if request is None:
        return None, None
    return request.raw_body, request.headers.get("content-type")


def submit_sweep(request: Request | None, rt: Runtime) -> Response:
    return _answer(202, lambda: runs.submit(rt.settings, rt.store, rt.invoker, *_body(request)))


def sweep_status(run_id: str, rt: Runtime) -> Response:
    return _answer(200, lambda: runs.status(rt.store, run_id))


def redrive(run_id: str, request: Request | None, rt: Runtime) -> Response:
    return _answer(
        202, lambda: runs.redrive(rt.settings, rt.store, rt.invoker, run_id, *_body(request))
    )


def simulations() -> Response:
    return _answer(200, lambda: {"simulations": [s.describe() for s in REGISTRY.values()]})
