"""Runs in a clean Python 3.12 whose path is the unpacked artifact (function zip + layer) and the
boto3 that the Lambda runtime provides, nothing else. Not a test module: test_artifact.py starts
it. It drives the handlers as Lambda would, with S3 and Glue on moto's server and a loopback
stand-in for Lambda's Invoke API, and prints what happened as one JSON line.

argv: artifact folder, boto folder, and optionally deploy/smoke.py: its checklist then runs
with these handlers as the deployed stage (``make rehearse``), and the report carries its lines.
``SWEEP_REHEARSAL_SCALE`` (``make rehearse``: its shard count) adds a run at scale last
(``run_at_scale``); ``test_artifact`` leaves it out, so ``make test`` stays as fast.

Under ``make rehearse`` moto enforces IAM, and ``SWEEP_REHEARSAL_ROLES`` maps each function
(deploy.naming's names) to its deployed name and the credentials of its own role
(``scripts/moto_iam.py``): every call a handler makes is signed as that function's role, so a
call outside its policy is refused as AWS would; the driver's own checks use the operator's
credentials from the environment.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

ARTIFACT, BOTO = sys.argv[1], sys.argv[2]
sys.path[:] = [p for p in sys.path[1:] if p.startswith(sys.base_prefix)] + [ARTIFACT, BOTO]

calls: list[tuple[str, dict[str, Any]]] = []
refused_shards = {3}  # Invoke refuses their worker events: DISPATCH_FAILED
# The account's concurrency as GetAccountSettings reports it; pacing's window (fanout.pacing).
CONCURRENCY = [1000]
# Every AWS call, attributed to the function whose handler made it, for the policy check.
current = ["api_handler"]
aws_calls: list[dict[str, Any]] = []


class InvokeStandIn(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        """GetAccountSettings (moto has none): the unreserved concurrency pacing reads."""
        aws_calls.append({"fn": current[0], "service": "lambda", "op": "GetAccountSettings"})
        limit = {
            "ConcurrentExecutions": CONCURRENCY[0],
            "UnreservedConcurrentExecutions": CONCURRENCY[0],
        }
        body = json.dumps({"AccountLimit": limit}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(size) or b"{}")
        name = unquote(self.path.split("/")[3])
        aws_calls.append(
            {"fn": current[0], "service": "lambda", "op": "Invoke", "FunctionName": name}
        )
        if name.endswith("-worker") and payload.get("shard_id") in refused_shards:
            # Lambda refuses this shard's event for good: the dispatcher records DISPATCH_FAILED.
            body = json.dumps({"Type": "User", "message": "refused by the stand-in"}).encode()
            self.send_response(400)
            self.send_header("X-Amzn-ErrorType", "InvalidParameterValueException")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        calls.append((name, payload))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), InvokeStandIn)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ["AWS_ENDPOINT_URL_LAMBDA"] = f"http://127.0.0.1:{server.server_address[1]}"

import boto3  # noqa: E402  (the artifact's boto3, which comes before the runtime's on the path)

# function → {"function": deployed name, "AccessKeyId", "SecretAccessKey", "SessionToken"}
ROLES: dict[str, dict[str, str]] = json.loads(os.environ.get("SWEEP_REHEARSAL_ROLES", "{}"))


def signing_session() -> Any:
    """A botocore session whose credentials are, at each signature, those of the function
    whose handler is running (``current``), or the operator's between handlers."""
    import botocore.session
    from botocore.credentials import CredentialProvider, Credentials, ReadOnlyCredentials

    class AsCurrentFunction(Credentials):  # type: ignore[misc]
        def get_frozen_credentials(self) -> ReadOnlyCredentials:
            if not current[0]:
                return super().get_frozen_credentials()
            role = ROLES[current[0]]  # a function without a role is a driver bug: KeyError
            return ReadOnlyCredentials(
                role["AccessKeyId"], role["SecretAccessKey"], role["SessionToken"]
            )

    class Roles(CredentialProvider):  # type: ignore[misc]
        METHOD = "rehearsal-roles"

        def load(self) -> Credentials:
            return AsCurrentFunction(
                os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
            )

    session = botocore.session.get_session()
    session.get_component("credential_provider").insert_before("env", Roles())
    return session


if ROLES:
    boto3.setup_default_session(botocore_session=signing_session())
else:
    boto3.setup_default_session()
RECORDED = ("Bucket", "Key", "Prefix", "StartAfter", "DatabaseName", "TableName")


def record(params: dict[str, Any], model: Any, **_: Any) -> None:
    if current[0]:
        call = {"fn": current[0], "service": model.service_model.endpoint_prefix}
        call["op"] = model.name
        call.update({k: params[k] for k in RECORDED if k in params})
        if model.name == "DeleteObjects":  # IAM checks s3:DeleteObject on each of its keys
            call["Keys"] = [o["Key"] for o in params["Delete"]["Objects"]]
        aws_calls.append(call)


boto3.DEFAULT_SESSION.events.register("provide-client-params", record)
# Scenarios below hook into S3 writes; clients copy the session's handlers when they are built
# (once per process), so the hook is registered now and pointed at a scenario later.
put_hooks: list[Any] = []


def on_put(params: dict[str, Any], **_: Any) -> None:
    for hook in list(put_hooks):
        hook(params)


boto3.DEFAULT_SESSION.events.register("provide-client-params.s3.PutObject", on_put)
glue_outages: list[str] = []  # run ids whose next partition registration Glue fails


def glue_outage(params: dict[str, Any], **_: Any) -> Any:
    """Answer a BatchCreatePartition for a run in ``glue_outages`` with a 500, once."""
    body = params.get("body") or b""  # before-call sees the serialized request
    body = body.encode() if isinstance(body, str) else body
    for run_id in list(glue_outages):
        if run_id.encode() in body:
            glue_outages.remove(run_id)
            from botocore.awsrequest import AWSResponse

            error = {"Code": "InternalServiceException", "Message": "injected Glue outage"}
            return AWSResponse("https://glue", 500, {}, None), {"Error": error}
    return None


boto3.DEFAULT_SESSION.events.register("before-call.glue.BatchCreatePartition", glue_outage)

import app  # noqa: E402  (the artifact's app.py)


class Context:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.aws_request_id = f"req-{name}-{len(calls)}"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        self.function_version = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


def api(method: str, resource: str, path: str, body: Any = None) -> tuple[int, Any]:
    current[0] = "api_handler"
    params = {"run_id": path.split("/")[2]} if "{run_id}" in resource else None
    event = {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": "api-request",
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }
    response = app.app(event, Context("sweeps-dev"))
    return int(response["statusCode"]), json.loads(response["body"])


status, submitted = api(
    "POST",
    "/sweeps",
    "/sweeps",
    {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [100, 200, 300, 400, 500, 600, 700, 800]}},
        "shards": {"count": 4},
        "fail_shards": [1],
    },
)
assert status == 202, submitted
run_id = submitted["run_id"]
CRASHING_SHARD = 2  # its worker "crashes" on every attempt: Lambda hands it to the recorder
DUPLICATED_SHARD = 0
handled = {
    "dispatcher": 0,
    "compactor": 0,
    "worker": 0,
    "worker_attempts": 0,
    "failure_recorder": 0,
    "duplicates": 0,
}
succeeded_events: list[tuple[str, dict[str, Any]]] = []


def crash_record(function: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "timestamp": "2026-11-26T10:00:00.000Z",
        "requestContext": {
            "requestId": "crashed",
            "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{function}",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Runtime.ExitError", "errorMessage": "crash"},
    }


def deliver(function: str, payload: dict[str, Any]) -> None:
    """Lambda's async semantics for a worker event: up to 2 retries after a function error,
    then the OnFailure record to the failure recorder, with the worker's role."""
    count = 0
    for _ in range(1 + 2):
        count += 1
        handled["worker_attempts"] += 1
        try:
            if payload.get("run_id") == run_id and payload.get("shard_id") == CRASHING_SHARD:
                raise RuntimeError("Runtime.ExitError: the process died")
            current[0] = "worker"
            app.worker(payload, Context(function))
            handled["worker"] += 1
            return
        except Exception:
            continue
    recorder = os.environ["SWEEP_WORKER_FUNCTION"].replace("worker", "failure_recorder")
    aws_calls.append(
        {"fn": "worker", "service": "lambda", "op": "Invoke", "FunctionName": recorder}
    )
    record = crash_record(function, payload)
    record["requestContext"]["approximateInvokeCount"] = count
    current[0] = "failure_recorder"
    app.failure_recorder(record, Context(recorder))
    handled["failure_recorder"] += 1


def compact(function: str, payload: dict[str, Any]) -> None:
    """The compactor's event (from status or the reconciler), with the compactor's role."""
    current[0] = "compactor"
    app.compactor(payload, Context(function))
    handled["compactor"] += 1


def drain() -> None:
    """Lambda's side: run every queued event with the handler of the function it names."""
    while calls:
        function, payload = calls.pop(0)
        if function.endswith("-compactor"):
            compact(function, payload)
        elif function.endswith("-dispatcher"):
            current[0] = "dispatcher"
            app.dispatcher(payload, Context(function))
            handled["dispatcher"] += 1
        elif function.endswith("-worker"):
            deliver(function, payload)
            if payload.get("shard_id") == DUPLICATED_SHARD:
                succeeded_events.append((function, payload))
                if handled["duplicates"] == 0:
                    # Lambda may deliver an event twice: the second must change nothing.
                    handled["duplicates"] += 1
                    deliver(function, payload)
        else:
            raise AssertionError(f"unexpected invoke of {function}")


drain()
# A redrive re-dispatches the failed shards as new attempts; they fail the same way.
status, redriven = api("POST", "/sweeps/{run_id}/redrive", f"/sweeps/{run_id}/redrive", {})
assert status == 202, redriven
drain()
# An OnFailure record can arrive for an event whose duplicate succeeded: nothing to record.
function, payload = succeeded_events[0]
current[0] = "failure_recorder"
late = app.failure_recorder(crash_record(function, payload), Context("late"))
assert late["status"] == "already_succeeded", late
status, state = api("GET", "/sweeps/{run_id}", f"/sweeps/{run_id}")
current[0] = ""  # the checks below are not the functions' calls
BOTOCORE_DATA = os.path.join(os.path.dirname(str(sys.modules["botocore"].__file__)), "data")
import numpy  # noqa: E402
import pyarrow  # noqa: E402

glue = boto3.client("glue")
partitions = {
    table: len(glue.get_partitions(DatabaseName="sweeps_dev", TableName=table)["Partitions"])
    for table in ("outcomes", "results")
}
import pyarrow.parquet as pq  # noqa: E402

s3 = boto3.client("s3")
bucket = os.environ["SWEEP_BUCKET"]
rows = []
keys = [
    o["Key"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="sweeps/")
    for o in page.get("Contents", [])
]
for key in keys:
    if key.startswith(f"sweeps/results/run_id={run_id}/"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        table = pq.read_table(pyarrow.BufferReader(body))
        for row in table.to_pylist():
            rows.append(
                [row["point_index"], dict(row["params"]), dict(row["metrics"]), row["shard_id"]]
            )
outcome_files = [k for k in keys if k.startswith(f"sweeps/outcomes/run_id={run_id}/")]

# The reconciler, as its schedule runs it: a second run whose worker event for shard 1 Lambda
# drops every time is re-dispatched once (SWEEP_MAX_AUTO_REDRIVES=1), then closed as LOST; the
# first run, complete, leaves the open-runs index. Its own calls, for the policy check.
import time  # noqa: E402

SCHEDULED = {
    "version": "0",
    "id": "scheduled",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "000000000000",
    "time": "2026-11-26T10:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}


def reconcile() -> dict[str, int]:
    current[0] = "reconciler"
    result: dict[str, int] = app.reconciler(SCHEDULED, Context("sweeps-dev-reconciler"))
    return result


LATE_SHARD = 2  # dropped like shard 1, but delivered while the reconciler closes the run
held: dict[int, tuple[str, dict[str, Any]]] = {}


def drain_dropping(lost_run: str) -> None:
    """Run every queued event, except the lost run's worker events for shards 1 and 2: Lambda
    drops them (shard 2's is kept, to arrive late). Compactor events run once the others are
    done (Lambda orders no two functions' events): the first run's compaction comes after the
    reusing run's plan, which so reads the first run while it is pending, from its results."""
    compactions: list[tuple[str, dict[str, Any]]] = []
    while calls or compactions:
        if not calls:
            calls.append(compactions.pop(0))
        function, payload = calls.pop(0)
        if payload.get("run_id") == lost_run and payload.get("shard_id") in (1, LATE_SHARD):
            held[payload["shard_id"]] = (function, payload)
            continue
        if function.endswith("-compactor"):
            if calls:
                compactions.append((function, payload))
            else:
                compact(function, payload)
            continue
        current[0] = "dispatcher" if function.endswith("-dispatcher") else "worker"
        handler = app.dispatcher if current[0] == "dispatcher" else app.worker
        handler(payload, Context(function))


status, second = api(
    "POST",
    "/sweeps",
    "/sweeps",
    {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [1, 2, 3]}},
        "shards": {"count": 3},
        "reuse": True,  # its plan reads the first run's results (the dispatcher's grants)
    },
)
assert status == 202, second
glue_outages.append(second["run_id"])  # its dispatcher's registration fails: the reconciler's


def deliver_late(params: dict[str, Any]) -> None:
    """Shard 2 succeeds "meanwhile": between the closing pass's listing and its has_success
    check, just as the reconciler claims the shard. The pass must then leave it alone."""
    closing = f"sweeps/runs/{second['run_id']}/closed/shard-{LATE_SHARD:06d}-"
    claiming = params.get("Key", "").startswith(closing)
    if current[0] == "reconciler" and claiming and LATE_SHARD in held:
        function, payload = held.pop(LATE_SHARD)
        current[0] = "worker"
        try:
            app.worker(payload, Context(function))
        finally:
            current[0] = "reconciler"


put_hooks.append(deliver_late)
drain_dropping(second["run_id"])
passes = [reconcile()]
time.sleep(1.2)
passes.append(reconcile())  # stalled: re-dispatched
drain_dropping(second["run_id"])
passes.append(reconcile())  # the redrive was progress
time.sleep(1.2)
passes.append(reconcile())  # stalled again, no redrive left: LOST
passes.append(reconcile())  # complete: its compaction asked for
drain()  # the compactor: generation 1 (and, with no grace period, its clean-up)
passes.append(reconcile())  # compacted: out of the index
current[0] = "api_handler"
status, lost_state = api("GET", "/sweeps/{run_id}", f"/sweeps/{second['run_id']}")
# A redrive after compaction: the lost shard runs this time; status finds the run complete
# again and hands it to the compactor, whose generation 2 replaces generation 1's parts.
status, _ = api("POST", "/sweeps/{run_id}/redrive", f"/sweeps/{second['run_id']}/redrive", {})
assert status == 202
drain()
status, _ = api("GET", "/sweeps/{run_id}", f"/sweeps/{second['run_id']}")  # complete: compact
drain()
status, recompacted_state = api("GET", "/sweeps/{run_id}", f"/sweeps/{second['run_id']}")
current[0] = ""


def compaction_records(of_run: str) -> list[str]:
    """The run's compaction records (runs/<id>/compaction/), as the checks below see them."""
    listing = boto3.client("s3").list_objects_v2(
        Bucket=os.environ["SWEEP_BUCKET"],
        Prefix=f"{os.environ['SWEEP_PREFIX']}/runs/{of_run}/compaction/",
    )
    return sorted(o["Key"].rsplit("/", 1)[1] for o in listing.get("Contents", []))


# A dispatch leaf Lambda delivers twice: the second copy arrives after the run was cancelled and
# after its shard succeeded, so it records CANCELLED only for shards without a success (it asks
# has_success, a HEAD under outcomes/). Shards 1 and 2 of this run are still in flight (in the
# leaf's range [0, hi): 1 shard per leaf under test_artifact, the whole run under make rehearse).
status, third = api(
    "POST",
    "/sweeps",
    "/sweeps",
    {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [1, 2, 3]}},
        "shards": {"count": 3},
        "reuse": True,  # its plan reads the family's merged index (the dispatcher's grants)
    },
)
assert status == 202, third
first_leaf: tuple[str, dict[str, Any]] | None = None
while calls:
    function, payload = calls.pop(0)
    if function.endswith("-dispatcher"):
        if payload["dispatch"]["lo"] == 0:  # the root, then its first child, ...: the leaf last
            first_leaf = (function, payload)
        current[0] = "dispatcher"
        app.dispatcher(payload, Context(function))
    elif payload.get("shard_id") == 0:
        current[0] = "worker"
        app.worker(payload, Context(function))
assert first_leaf is not None
status, cancelled = api("POST", "/sweeps/{run_id}/cancel", f"/sweeps/{third['run_id']}/cancel", {})
assert status == 202, cancelled
current[0] = "dispatcher"
redelivered = app.dispatcher(first_leaf[1], Context(first_leaf[0]))
# The leaf hands out none of its shards; each gets CANCELLED except shard 0, which succeeded.
assert redelivered["cancelled"] == first_leaf[1]["dispatch"]["hi"], redelivered
status, cancelled_state = api("GET", "/sweeps/{run_id}", f"/sweeps/{third['run_id']}")
assert cancelled_state["shards"]["succeeded"] == 1, cancelled_state  # shard 0 left alone
current[0] = ""

# A worker's success outcome write fails after its results landed (S3 answering 500 past
# botocore's retries): the worker records STORAGE_ERROR and raises, and Lambda's retry finds
# its success lock and its results already stored. Each create then reads the stored object
# back (ObjectStore._holds) before the outcome is written, so the worker's role must be allowed
# to read its own results/: without it every retry, and every redrive, failed on that read
# (an audit found it; moto enforces it under make rehearse).
from botocore.exceptions import ClientError  # noqa: E402

status, fourth = api(
    "POST",
    "/sweeps",
    "/sweeps",
    {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"values": [5, 6]}},
        "shards": {"count": 1},
    },
)
assert status == 202, fourth
outcome_failures: list[str] = []


def outcome_write_fails_once(params: dict[str, Any]) -> None:
    key = params.get("Key", "")
    if f"outcomes/run_id={fourth['run_id']}/status=succeeded/" in key and not outcome_failures:
        outcome_failures.append(key)
        error = {"Code": "InternalError", "Message": "injected: S3 failed the outcome's PUT"}
        raise ClientError({"Error": error}, "PutObject")


put_hooks.append(outcome_write_fails_once)
attempts_before = handled["worker_attempts"]
drain()
put_hooks.remove(outcome_write_fails_once)
current[0] = "api_handler"
status, retried_state = api("GET", "/sweeps/{run_id}", f"/sweeps/{fourth['run_id']}")
current[0] = ""
retried_write = {
    "outcome_failures": len(outcome_failures),
    "worker_attempts": handled["worker_attempts"] - attempts_before,
    "shards": retried_state["shards"],
    "complete": retried_state["complete"],
}

# Under enforcement, the handlers above really ran as their roles: the worker's role may not
# read compacted/ (only the compactor's may), and moto refuses it the way AWS would.
role_check = "no roles"
if ROLES:
    current[0] = "worker"
    try:
        s3.head_object(Bucket=bucket, Key=f"sweeps/compacted/results/run_id={run_id}/probe")
        role_check = "allowed: the driver does not sign as the worker's role"
    except ClientError as error:
        role_check = str(error.response["Error"]["Code"])
    finally:
        current[0] = ""
smoke: list[list[str]] = []
if len(sys.argv) > 3:
    # The operator's `make smoke`, its checks unchanged, against the deployed handlers: the
    # API through app.app, time passing as Lambda running the queued events.
    import importlib.util

    spec = importlib.util.spec_from_file_location("smoke", sys.argv[3])
    assert spec is not None and spec.loader is not None
    smoke_module = importlib.util.module_from_spec(spec)
    sys.modules["smoke"] = smoke_module  # dataclasses look their module up while decorating
    spec.loader.exec_module(smoke_module)

    class DriverTarget:
        offline = True
        bucket = os.environ["SWEEP_BUCKET"]
        prefix = os.environ["SWEEP_PREFIX"]
        database = os.environ["SWEEP_GLUE_DATABASE"]
        functions = tuple(ROLES)

        def invoke(self, function: str, event: dict[str, Any]) -> Any:
            """Lambda's synchronous Invoke: the handler string's object (``app.app`` for the
            routes' function), run under the function's own role."""
            handler = app.app if function == "api_handler" else getattr(app, function)
            current[0] = function
            try:
                return handler(event, Context(ROLES[function]["function"]))
            finally:
                current[0] = ""

        def call(
            self, method: str, path: str, body: Any = None, signed: bool = True
        ) -> tuple[int, Any]:
            parts = path.split("/")
            resource = "/".join(["", parts[1], "{run_id}", *parts[3:]]) if len(parts) > 2 else path
            result = api(method, resource, path, body)
            current[0] = ""
            return result

        def settle(self) -> None:
            drain()
            current[0] = ""

        def s3(self) -> Any:
            return s3

        def glue(self) -> Any:
            return glue

    checks = smoke_module.run_checks(DriverTarget(), "smoke-rehearsal", polls=3)
    smoke = [[c.name, c.status, c.why] for c in checks]
# -- A run at scale (``make rehearse``: SWEEP_REHEARSAL_SCALE, its shard count) ---------------
from collections import Counter  # noqa: E402


def keys_under(folder: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def spread(values: list[int]) -> dict[str, int]:
    """How many values, how many distinct, the least and the most."""
    low, high = (min(values), max(values)) if values else (-1, -1)
    return {"rows": len(values), "distinct": len(set(values)), "lo": low, "hi": high}


def read_partition(folder: str, column: str) -> dict[str, int]:
    """``column`` of every Parquet row under ``folder``, as Athena reads a partition."""
    found: list[int] = []
    for key in keys_under(folder):
        body = pyarrow.BufferReader(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        found += pq.read_table(body, columns=[column]).column(column).to_pylist()
    return spread(found)


def partitions_of(run: str, table: str) -> dict[str, str]:
    """The run's Glue partitions of ``table``: their values after the run id → folder key."""
    found = {}
    pages = glue.get_paginator("get_partitions").paginate(
        DatabaseName=os.environ["SWEEP_GLUE_DATABASE"], TableName=table
    )
    for partition in (p for page in pages for p in page["Partitions"]):
        if partition["Values"][0] == run:
            location = partition["StorageDescriptor"]["Location"]
            folder = location.removeprefix(f"s3://{bucket}/").rstrip("/") + "/"
            found["/".join(partition["Values"][1:])] = folder
    return found


def seen(state: dict[str, Any]) -> dict[str, Any]:
    """What the scale checks read of a status body."""
    fields = ("complete", "shards", "failed_shards", "points_succeeded", "dispatch")
    return {k: state[k] for k in fields}


SCALE_WORKERS = 2  # worker events run at once in the run at scale


def dispatch_tree() -> tuple[list[list[int]], list[tuple[str, dict[str, Any]]]]:
    """Run the queued dispatcher events (and those they queue): the [lo, hi) of each
    invocation, and the worker events the leaves sent, not yet run."""
    dispatched: list[list[int]] = []
    events: list[tuple[str, dict[str, Any]]] = []
    while calls:
        function, payload = calls.pop(0)
        if function.endswith("-dispatcher"):
            dispatched.append([payload["dispatch"]["lo"], payload["dispatch"]["hi"]])
            current[0] = "dispatcher"
            app.dispatcher(payload, Context(function))
        else:
            assert function.endswith("-worker"), function
            events.append((function, payload))
    return dispatched, events


def delivered_late(
    worker: tuple[str, dict[str, Any]], root: tuple[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A worker event and the root dispatcher's event, delivered again (after compaction):
    the worker's answer, and whether the dispatcher found the run complete and how many events
    it queued (the next level of the tree, if it handed it out again; dropped after)."""
    current[0] = "worker"
    late = app.worker(worker[1], Context(worker[0]))
    current[0] = "dispatcher"
    answer = app.dispatcher(root[1], Context(root[0]))
    current[0] = ""
    queued = len(calls)
    calls.clear()
    return late, {"complete": answer.get("complete", False), "queued": queued}


def run_at_scale(shards: int) -> dict[str, Any]:
    """What a 100,000-shard run exercises on a deployed stage, at ``shards`` (a multiple of 100
    above 1,000): with ``shards / 100`` a leaf, the dispatcher tree a 100,000-shard run has at
    the default 1,000 a leaf and width 10 (a root, 10 inner dispatchers, 100 leaves); an outcome
    folder past one page of S3's listing (1,000 keys), which a running run's status lists as a
    first page and then key ranges (``storage.key_ranges``: a range per 999 shards); its
    summary; and its compaction by the compactor function, whose clean-up deletes a per-shard
    results file a shard: in DeleteObjects of 1,000 keys, unless a store layer lost
    ``delete_many`` and sends a DELETE a key. Then status and the partitions' files as Athena
    reads them after compaction, and a worker event and the root dispatcher's event Lambda
    delivers after compaction.

    The leaf size is the stage's setting, changed as a redeploy changes it: in the environment,
    read again at the next (cold) start. The stand-in's account concurrency is above the run's
    shards, so the run is not paced (pacing has its own tests), and it refuses no invoke."""
    from chalicelib import wiring  # the artifact's

    drain()  # what the scenarios before left queued (the smoke's compaction)
    started, cpu_started = time.monotonic(), time.process_time()
    os.environ["SWEEP_DISPATCH_LEAF_SHARDS"] = str(shards // 100)
    CONCURRENCY[0] = 10 * shards
    refused_shards.clear()
    wiring.use(None)
    points = 2 * shards
    request = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 10, "stop": 10 + points, "step": 1}}},
        "shards": {"count": shards},
    }
    status, submitted = api("POST", "/sweeps", "/sweeps", request)
    assert status == 202, submitted
    run = submitted["run_id"]
    path = f"/sweeps/{run}"
    root = next(call for call in calls if call[0].endswith("-dispatcher"))  # the POST's
    dispatched, events = dispatch_tree()
    ran: list[int] = []
    running_at = shards - 50  # status while running: past the first page of outcomes

    def run_workers(batch: list[tuple[str, dict[str, Any]]]) -> None:
        """Lambda runs a run's workers at once; here SCALE_WORKERS at a time, so that this
        process's CPU and moto's overlap (each worker waits on moto most of its time)."""
        from concurrent.futures import ThreadPoolExecutor

        def one(event: tuple[str, dict[str, Any]]) -> None:
            app.worker(event[1], Context(event[0]))
            ran.append(event[1]["shard_id"])

        current[0] = "worker"
        with ThreadPoolExecutor(SCALE_WORKERS) as pool:
            list(pool.map(one, batch))

    run_workers(events[:running_at])
    mark = len(aws_calls)
    _, running = api("GET", "/sweeps/{run_id}", path)
    outcomes = f"{os.environ['SWEEP_PREFIX']}/outcomes/run_id={run}/"
    listings = [
        c.get("StartAfter", "")
        for c in aws_calls[mark:]
        if c["op"] == "ListObjectsV2" and c.get("Prefix") == outcomes
    ]
    run_workers(events[running_at:])
    _, complete = api("GET", "/sweeps/{run_id}", path)  # writes the summary, asks to compact
    compactions = []
    mark = len(aws_calls)
    while calls:
        function, payload = calls.pop(0)
        assert function.endswith("-compactor"), function
        current[0] = "compactor"
        compactions.append(app.compactor(payload, Context(function)))
    results = f"{os.environ['SWEEP_PREFIX']}/results/run_id={run}/"
    cleanup = Counter(  # the requests that deleted the run's per-shard results files
        c["op"]
        for c in aws_calls[mark:]
        if any(key.startswith(results) for key in c.get("Keys", [c.get("Key", "")]))
        and c["op"] in ("DeleteObject", "DeleteObjects")
    )
    _, compacted = api("GET", "/sweeps/{run_id}", path)
    late, late_dispatch = delivered_late(events[-1], root)
    located = {table: partitions_of(run, table) for table in ("results", "outcomes")}
    return {
        "shards": shards,
        "points": points,
        "dispatched": dispatched,
        "worker_events": len(events),
        "worker_runs": spread(ran),
        "running_at": running_at,
        "running": seen(running),
        "running_listings": listings,
        "complete": seen(complete),
        "compactions": compactions,
        "cleanup_requests": dict(cleanup),
        "compaction_records": compaction_records(run),
        "compacted": seen(compacted),
        "late_delivery": late,
        "late_dispatch": late_dispatch,
        "per_shard_results_left": sum(
            1 for key in keys_under(results) if key.rsplit("/", 1)[1].startswith("shard-")
        ),
        "succeeded_outcome_files": len(keys_under(f"{outcomes}status=succeeded/")),
        "partitions": located,
        "results_read": read_partition(located["results"][""], "point_index"),
        "outcomes_read": {
            partition: read_partition(folder, "shard_id")
            for partition, folder in located["outcomes"].items()
        },
        "seconds": round(time.monotonic() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),  # this process's
    }


SCALE = int(os.environ.get("SWEEP_REHEARSAL_SCALE", "0"))
scale = run_at_scale(SCALE) if SCALE else None
print(
    json.dumps(
        {
            "smoke": smoke,
            "scale": scale,
            "role_check": role_check,
            "retried_outcome_write": retried_write,
            "status": status,
            "state": state,
            "reconciler_passes": passes,
            "lost_run": lost_state,
            "recompacted_run": recompacted_state,
            "compaction_records": compaction_records(second["run_id"]),
            "first_compaction_records": compaction_records(run_id),
            "handled": handled,
            "partitions": partitions,
            "results": sorted(rows),
            "aws_calls": aws_calls,
            "outcome_files": sorted(k.rsplit("/", 1)[1] for k in outcome_files),
            "python": list(sys.version_info[:2]),
            "pyarrow": pyarrow.__file__,
            "numpy": numpy.__file__,
            "boto3": boto3.__file__,
            "botocore": sys.modules["botocore"].__file__,
            "botocore_models": sorted(
                entry.name for entry in os.scandir(BOTOCORE_DATA) if entry.is_dir()
            ),
            "app": app.__file__,
        }
    )
)
sys.stdout.flush()
# Skip interpreter teardown: with pyarrow's thread pools alive it sometimes aborts with
# "terminate called without an active exception" (seen here after the report was printed).
# Lambda never tears an environment down this way; it freezes or kills the process.
os._exit(0)
