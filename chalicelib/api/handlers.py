"""HTTP glue: each route turns a Chalice request into one call of the runs logic and its answer
into JSON.

Every error a client can cause is a ``SweepError`` with the contract's body; anything else is
logged and answered as a 500 with the same shape, never with a stack trace. Handlers get their
collaborators as ``Services`` (settings, store, invoker): the API layer never builds them, so it
never imports what the heavy functions need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from chalice.app import Request, Response

from chalicelib.api import bodies
from chalicelib.config import Settings
from chalicelib.fanout.invoking import Invoker
from chalicelib.logs import logger
from chalicelib.model.errors import ForeignCaller, SweepError, error_body
from chalicelib.runs.cancel import cancel as cancel_run
from chalicelib.runs.listing import list_runs
from chalicelib.runs.redrive import redrive as redrive_run
from chalicelib.runs.status import status
from chalicelib.runs.submit import submit
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage.stores import ObjectStore

JSON: dict[str, str | list[str]] = {"Content-Type": "application/json"}


class Services(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def store(self) -> ObjectStore: ...
    @property
    def invoker(self) -> Invoker: ...


def _answer(status_code: int, call: Callable[[], Any]) -> Response:
    try:
        return Response(body=call(), status_code=status_code, headers=JSON)
    except SweepError as exc:
        return Response(body=exc.body(), status_code=exc.status, headers=JSON)
    except Exception:
        logger.exception("unhandled error")
        internal = SweepError("internal error")
        return Response(body=internal.body(), status_code=internal.status, headers=JSON)


# Chalice's own error codes (``chalice.app``: ``ChaliceViewError`` subclasses, and its answer to
# an exception a view let through) as the contract's; any other is its name in snake case.
_CHALICE_CODES = {"InternalServerError": "internal_error", "BadRequestError": "invalid_request"}


def in_contract_body(response: Any) -> Any:
    """A Lambda proxy response with Chalice's own error body (``{"Code", "Message"}``) in the
    contract's instead. Chalice answers some requests before any handler runs: on the local
    stage a method the path does not declare (405; deployed, API Gateway answers that with its
    gateway responses, ``deploy.merge``). Anything else passes unchanged."""
    if not (isinstance(response, dict) and isinstance(response.get("statusCode"), int)):
        return response
    if response["statusCode"] < 400 or not isinstance(response.get("body"), str):
        return response
    try:
        body = json.loads(response["body"])
    except ValueError:
        return response
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"}):
        return response
    name = str(body["Code"])
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Error")).lower()
    code = _CHALICE_CODES.get(name, snake)
    return response | {"body": json.dumps(error_body(code, str(body["Message"])))}


# The names a request to the local stage may give as its Host or Origin: this machine's own.
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def foreign_caller(request: Request, settings: Settings) -> Response | None:
    """The local stage's answer to a request from outside this machine's loopback, else None.

    The local stage has no authentication: it trusts whoever can reach its loopback port. A web
    page can: its cross-site POST with an empty or text/plain body needs no CORS preflight (a
    browser sends it with an ``Origin``), and a name it rebinds to 127.0.0.1 reaches every
    route with that name as ``Host``. So on the local backend a request whose ``Host`` or
    ``Origin`` names anything but loopback is refused (403, nothing read or written). Clients
    (``sweeps``, curl) send no Origin. Deployed stages are SigV4-only and not affected."""
    if settings.backend != "local":
        return None
    headers = {name.lower(): value for name, value in (request.headers or {}).items()}
    host, origin = headers.get("host"), headers.get("origin")
    if (host is None or _hostname("//" + host) in LOOPBACK) and (
        origin is None or _hostname(origin) in LOOPBACK
    ):
        return None
    refused = ForeignCaller(
        f"the local stage answers requests from this machine only (Host {host!r}, "
        f"Origin {origin!r})"
    )
    return Response(body=refused.body(), status_code=refused.status, headers=JSON)


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _raw(request: Request | None) -> tuple[bytes | str | None, str | None]:
    if request is None:
        return None, None
    return request.raw_body, request.headers.get("content-type")


def submit_sweep(request: Request | None, svc: Services) -> Response:
    def call() -> dict[str, Any]:
        body, repeated = bodies.parse_json(*_raw(request), svc.settings.max_body_bytes)
        return submit(svc.settings, svc.store, svc.invoker, body, repeated)

    return _answer(202, call)


def sweep_status(run_id: str, svc: Services) -> Response:
    # Only a stage with a Glue catalog has partitions to register (the local stage: none).
    catalog = svc.settings.backend == "aws" and bool(svc.settings.glue_database)
    return _answer(200, lambda: status(svc.store, run_id, catalog, svc.invoker))


def redrive(run_id: str, request: Request | None, svc: Services) -> Response:
    def call() -> dict[str, Any]:
        include_pending = bodies.redrive_options(*_raw(request), svc.settings.max_body_bytes)
        return redrive_run(svc.settings, svc.store, svc.invoker, run_id, include_pending)

    return _answer(202, call)


def list_sweeps(request: Request | None, svc: Services) -> Response:
    params = request.query_params if request is not None else None
    return _answer(200, lambda: list_runs(svc.store, params, svc.invoker))


def cancel(run_id: str, request: Request | None, svc: Services) -> Response:
    def call() -> dict[str, Any]:
        bodies.optional_body(*_raw(request), svc.settings.max_body_bytes, bodies.CANCEL_SCHEMA)
        return cancel_run(svc.store, run_id, svc.invoker)

    return _answer(202, call)


def simulations() -> Response:
    return _answer(200, lambda: {"simulations": [s.describe() for s in REGISTRY.values()]})
