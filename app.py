"""Routes and Lambda functions; each is a line or two calling domain code in chalicelib/."""

from typing import Any

from chalice.app import Chalice, Response

from chalicelib import api, runtime

app = Chalice(app_name="sweeps")

# Read the settings now: a missing or malformed variable fails the cold start, naming it.
runtime.current()


@app.route("/sweeps", methods=["POST"], content_types=["*/*"])
def submit_sweep() -> Response:
    return api.submit_sweep(app.current_request, runtime.current())


@app.route("/sweeps/{run_id}", methods=["GET"])
def sweep_status(run_id: str) -> Response:
    return api.sweep_status(run_id, runtime.current())


@app.route("/sweeps/{run_id}/redrive", methods=["POST"], content_types=["*/*"])
def redrive(run_id: str) -> Response:
    return api.redrive(run_id, app.current_request, runtime.current())


@app.route("/simulations", methods=["GET"])
def simulations() -> Response:
    return api.simulations()


# The functions below import their modules on first call: they need pyarrow, which the API
# handler (same package, separate Lambda function) must not pay for at cold start.


@app.lambda_function(name="dispatcher")
def dispatcher(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.dispatcher import run_event

    return run_event(event, runtime.current())


@app.lambda_function(name="worker")
def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.worker import run_task

    rt = runtime.current()
    return run_task(event, context, rt.store, rt.settings.deadline_margin_ms)


@app.lambda_function(name="failure_recorder")
def failure_recorder(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.failure_recorder import record_destination

    return record_destination(event, runtime.current().store)
