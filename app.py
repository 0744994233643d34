"""Routes and Lambda functions; each is a line or two calling domain code in chalicelib/.

This file is the composition root: it alone joins the wiring (``chalicelib.wiring``) to the
handlers, so the API layer never imports the heavy modules the other functions need.
"""

from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, IAMAuthorizer, Rate, Request, Response

from chalicelib import lifetime, wiring
from chalicelib.api import handlers
from chalicelib.logs import logger
from chalicelib.storage import probe
from chalicelib.storage.stores import ObjectStore


def _store() -> ObjectStore:
    return wiring.current().store


def probed[Handler: Callable[..., Any]](handler: Handler) -> Handler:
    """Every function answers `make smoke`'s probe event (chalicelib/storage/probe.py): a direct
    Invoke with it reaches the probe, and nothing else does. Outermost, so that Lambda's handler
    (``app.<name>``) sees the probe before Chalice's event classes would reject its shape; every
    invocation is counted as it enters (``lifetime.invoked``: which one is the first, billed
    with the environment's INIT)."""
    return lifetime.invoked(probe.answering(handler, _store))


class SweepsApp(Chalice):
    """Chalice, plus the probe for the routes' function: API Gateway sends it proxy events, which
    never carry the probe's field, so only a direct Invoke reaches the probe; no route is added
    (the HTTP API is the contract's). Chalice's own error answers (a method a path lacks, on
    the local stage) are given the contract's body."""

    def __call__(self, event: Any, context: Any) -> Any:
        return handlers.in_contract_body(probed(super().__call__)(event, context))


app = SweepsApp(app_name="sweeps")

# Read the settings now: a missing or malformed variable fails the cold start, naming it.
wiring.current()

# SigV4 on every route, in Chalice's own swagger: `chalice deploy` replaces the whole API and
# deploys it before anything else runs, so auth added afterwards would leave the stage open in
# between (docs/security.md). `chalice local` admits requests to routes with this authorizer
# unchecked (it checks only Chalice's own authorizers), so the local stage stays open.
IAM = IAMAuthorizer()
# Every route takes any Content-Type: a body's is checked by its handler (chalicelib/api/bodies:
# the contract's 415), and a GET has none to check (Chalice's default, JSON only, refused a GET
# sent with another in its own error body).
ANY = ["*/*"]


@app.middleware("http")
def loopback_only(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """The local stage answers this machine only (``handlers.foreign_caller``)."""
    return handlers.foreign_caller(event, wiring.current().settings) or get_response(event)


@app.route("/sweeps", methods=["POST"], content_types=ANY, authorizer=IAM)
def submit_sweep() -> Response:
    return handlers.submit_sweep(app.current_request, wiring.current())


@app.route("/sweeps", methods=["GET"], content_types=ANY, authorizer=IAM)
def list_sweeps() -> Response:
    return handlers.list_sweeps(app.current_request, wiring.current())


@app.route("/sweeps/{run_id}", methods=["GET"], content_types=ANY, authorizer=IAM)
def sweep_status(run_id: str) -> Response:
    return handlers.sweep_status(run_id, wiring.current())


@app.route("/sweeps/{run_id}/redrive", methods=["POST"], content_types=ANY, authorizer=IAM)
def redrive(run_id: str) -> Response:
    return handlers.redrive(run_id, app.current_request, wiring.current())


@app.route("/sweeps/{run_id}/cancel", methods=["POST"], content_types=ANY, authorizer=IAM)
def cancel(run_id: str) -> Response:
    return handlers.cancel(run_id, app.current_request, wiring.current())


@app.route("/simulations", methods=["GET"], content_types=ANY, authorizer=IAM)
def simulations() -> Response:
    return handlers.simulations()


# The functions below import their modules on first call: they need pyarrow, which the API
# handler (same package, separate Lambda function) must not pay for at cold start.


@probed
@app.lambda_function(name="dispatcher")
@logger.inject_lambda_context
def dispatcher(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.fanout.dispatcher import run_event

    rt = wiring.current()
    remaining = context.get_remaining_time_in_millis
    return run_event(event, rt.store, rt.invoker, rt.settings, rt.catalog, remaining)


@probed
@app.lambda_function(name="worker")
@logger.inject_lambda_context
def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.execution.worker import run_task

    rt = wiring.current()
    return run_task(event, context, rt.store, rt.settings.deadline_margin_ms)


@probed
@app.lambda_function(name="compactor")
@logger.inject_lambda_context
def compactor(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.execution.compaction import compact_event

    rt = wiring.current()
    return compact_event(event, rt.store, rt.settings, rt.catalog)


# Deployed stages only: `chalice local` runs no schedules, so the local stage runs the same pass
# on a timer thread (SWEEP_LOCAL_RECONCILER, started by the wiring).
@probed
@app.schedule(
    Rate(max(1, wiring.current().settings.reconcile_interval_s // 60), unit=Rate.MINUTES),
    name="reconciler",
)
def reconciler(event: Any) -> dict[str, int]:
    from chalicelib.fanout.reconcile import reconcile

    rt = wiring.current()
    return reconcile(rt.store, rt.invoker, rt.settings, catalog=rt.catalog)


@probed
@app.lambda_function(name="failure_recorder")
@logger.inject_lambda_context
def failure_recorder(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.execution.failure_recorder import record_destination

    return record_destination(event, wiring.current().store)


# The handler module is imported: Lambda's INIT ends here (chalicelib/lifetime.py).
lifetime.initialised()
