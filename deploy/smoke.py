"""`make smoke STAGE=dev`: after a deploy, check what only the deployed stage can answer.

Prints a checklist, one line per check: ``ok``, ``FAIL: <why>``, or ``not checkable offline``
(only where the emulator cannot answer: the gateway's own 403 and 400, Athena running
SQL, Lambda's account settings); exits 1 if any check
fails. One line per deployed function is its probe: the function, invoked synchronously with
the probe event (chalicelib/storage/probe.py), HEADs a missing key with its own role and says
what S3 answered.

The checks run against a ``Target``: the live API signed with the credentials of the
usual chain (this module's ``main``), or the deployed handlers driven the way Lambda would run
them (``tests/deploy/artifact_driver.py``, under ``make rehearse``). So that the driver can load
this file inside the bare artifact, it imports nothing at module level beyond the standard
library and the artifact's own ``chalicelib.storage.layout`` (the one key builder); boto3,
botocore and pyarrow are imported where they are used.

What it leaves behind: one run labelled ``smoke-<time>`` per invocation; a run it made that is
still going at the end is cancelled. It reads other runs only to check that they did not change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

OK: Final = "ok"
FAIL: Final = "FAIL"
OFFLINE: Final = "not checkable offline"
Status = Literal["ok", "FAIL", "not checkable offline"]
# The lines ``make rehearse`` must see pass: what moto and the deployed artifacts can answer.
REQUIRED_OFFLINE = (
    "signed GET /simulations answers 200",
    "semantically bad POST: app's 400 with problems, nothing written",
    "sweep with fail_shards and crash_shards completes, every shard represented",
    "crash recorded through OnFailure",
    "Glue partitions of the run registered",
    "cleanup: only the smoke's own runs touched",
)


def probe_line(function: str) -> str:
    """The name of a function's probe line (one per function of ``deploy.naming.FUNCTIONS``;
    each is required in the rehearsal too: ``required_offline``)."""
    return f"probe of {function}: HEAD of a missing key answers 404"


def required_offline() -> tuple[str, ...]:
    """``REQUIRED_OFFLINE`` and every deployed function's probe line. Tooling side only: the
    artifact has no ``deploy`` package."""
    from deploy.naming import FUNCTIONS

    return REQUIRED_OFFLINE + tuple(probe_line(fn) for fn in FUNCTIONS)


SIMULATION = "monte_carlo_pi"
FAILING, CRASHING = 1, 2  # of 3 shards: shard 0 succeeds
# A body the gateway's coarse model accepts and the app refuses: a parameter the simulation
# does not take.
SEMANTICALLY_BAD = {
    "simulation": SIMULATION,
    "parameters": {"no_such_parameter": {"values": [1]}},
    "shards": {"count": 1},
}
STRUCTURALLY_BAD: list[int] = [1]  # not an object: the gateway's model refuses it


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    why: str = ""

    def line(self) -> str:
        if self.status == FAIL:
            return f"{self.name}: FAIL: {self.why}"
        return f"{self.name}: {self.status}" + (f" ({self.why})" if self.why else "")


class Target(Protocol):
    """Where the checks run: an API to call, a way to let time pass, and the stage's data."""

    offline: bool
    bucket: str
    prefix: str
    database: str

    @property
    def functions(self) -> tuple[str, ...]:
        """The deployed functions, by their names in ``deploy.naming.FUNCTIONS``."""

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """A synchronous Invoke of the deployed ``function``: its decoded answer; raises if it
        answered with a function error."""

    def call(
        self, method: str, path: str, body: Any = None, signed: bool = True
    ) -> tuple[int, Any]: ...

    def settle(self) -> None:
        """Let the deployed functions make progress (sleep on AWS; run the queue offline)."""

    def s3(self) -> Any: ...

    def glue(self) -> Any: ...

    def count_rows(self, sql: str) -> int:
        """The first column of the first row of an Athena query (live targets only)."""

    def account_settings(self) -> dict[str, Any]:
        """Lambda's ``GetAccountSettings`` (live targets only: moto does not implement it)."""


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


def rehearsal_problems(checks: Sequence[Check]) -> list[str]:
    """Why a rehearsal's checklist is not good enough: a failed line, or a required line that
    is missing or was skipped as not checkable offline."""
    by_name = {c.name: c for c in checks}
    problems = [c.line() for c in checks if c.status == FAIL]
    for name in required_offline():
        check = by_name.get(name)
        if check is None:
            problems.append(f"{name}: missing")
        elif check.status == OFFLINE:
            problems.append(f"{name}: skipped, but the rehearsal must run it")
    return problems


def _root(target: Target) -> str:
    return f"{target.prefix}/" if target.prefix else ""


def _keys(target: Target) -> set[str]:
    pages = (
        target.s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=target.bucket, Prefix=_root(target))
    )
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def _runs(target: Target) -> dict[str, Any]:
    status, body = target.call("GET", "/sweeps")
    if status != 200:
        raise RuntimeError(f"GET /sweeps answered {status}: {body}")
    return {run["run_id"]: run for run in body["runs"]}


def check_unsigned(target: Target) -> Check:
    name = "unsigned request refused (403)"
    if target.offline:
        return Check(name, OFFLINE)
    status, body = target.call("GET", "/simulations", signed=False)
    return Check(name, OK) if status == 403 else Check(name, FAIL, f"answered {status}: {body}")


def check_signed(target: Target) -> Check:
    name = "signed GET /simulations answers 200"
    status, body = target.call("GET", "/simulations")
    if status != 200:
        return Check(name, FAIL, f"answered {status}: {body}")
    if SIMULATION not in json.dumps(body):
        return Check(name, FAIL, f"{SIMULATION} is not among the simulations")
    return Check(name, OK)


def _refused(target: Target, name: str, body: Any, want_problems: bool) -> Check:
    before = _keys(target)
    status, answer = target.call("POST", "/sweeps", body)
    written = sorted(_keys(target) - before)
    if status != 400:
        return Check(name, FAIL, f"answered {status}: {answer}")
    if want_problems and not (isinstance(answer, dict) and answer.get("problems")):
        return Check(name, FAIL, f"400 without problems: {answer}")
    if written:
        return Check(name, FAIL, f"wrote {len(written)} objects, e.g. {written[0]}")
    return Check(name, OK)


def check_gateway_400(target: Target) -> Check:
    name = "structurally bad POST: gateway's 400, nothing written"
    if target.offline:
        return Check(name, OFFLINE)
    return _refused(target, name, STRUCTURALLY_BAD, want_problems=False)


def check_app_400(target: Target) -> Check:
    name = "semantically bad POST: app's 400 with problems, nothing written"
    return _refused(target, name, SEMANTICALLY_BAD, want_problems=True)


def smoke_request(label: str) -> dict[str, Any]:
    return {
        "simulation": SIMULATION,
        "parameters": {"samples": {"values": [100, 200, 300]}},
        "shards": {"count": 3},
        "fail_shards": [FAILING],
        "crash_shards": [CRASHING],
        "label": label,
    }


def run_sweep(target: Target, label: str, polls: int) -> tuple[str | None, dict[str, Any], str]:
    """Submit the smoke's sweep and wait for it: (run_id, last status, why not complete)."""
    status, submitted = target.call("POST", "/sweeps", smoke_request(label))
    if status != 202:
        return None, {}, f"POST answered {status}: {submitted}"
    run_id = str(submitted["run_id"])
    state: dict[str, Any] = {}
    for _ in range(polls):
        target.settle()
        status, state = target.call("GET", f"/sweeps/{run_id}")
        if status == 200 and state.get("complete"):
            return run_id, state, ""
    return run_id, state, f"not complete after {polls} polls: {state}"


def check_sweep(state: dict[str, Any], why: str) -> Check:
    name = "sweep with fail_shards and crash_shards completes, every shard represented"
    if why:
        return Check(name, FAIL, why)
    want = {"succeeded": 1, "failed": 2, "pending": 0}
    if state.get("shards") != want or state.get("failed_shards") != [FAILING, CRASHING]:
        return Check(
            name, FAIL, f"shards {state.get('shards')}, failed {state.get('failed_shards')}"
        )
    return Check(name, OK)


def check_crash(target: Target, run_id: str | None) -> Check:
    """The crashing shard's final failure is the failure recorder's (RETRIES_EXHAUSTED): Lambda
    retried it and handed it to OnFailure."""
    name = "crash recorded through OnFailure"
    if run_id is None:
        return Check(name, FAIL, "no run")
    from chalicelib.storage import layout

    root = _root(target) + layout.outcomes_prefix(run_id)
    marker = f"shard-{CRASHING:06d}-attempt-"
    keys = [k for k in _keys(target) if k.startswith(root) and "status=failed" in k and marker in k]
    if not keys:
        return Check(name, FAIL, f"no failed outcome of shard {CRASHING}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    codes = set()
    for key in keys:
        data = target.s3().get_object(Bucket=target.bucket, Key=key)["Body"].read()
        codes |= set(pq.read_table(pa.BufferReader(data)).column("error_code").to_pylist())
    if "RETRIES_EXHAUSTED" not in codes:
        return Check(name, FAIL, f"shard {CRASHING} failed with {sorted(map(str, codes))}")
    return Check(name, OK)


def check_partitions(target: Target, run_id: str | None, state: dict[str, Any]) -> Check:
    name = "Glue partitions of the run registered"
    if run_id is None:
        return Check(name, FAIL, "no run")
    missing = []
    for table in ("outcomes", "results"):
        pages = (
            target.glue()
            .get_paginator("get_partitions")
            .paginate(DatabaseName=target.database, TableName=table)
        )
        if not any(run_id in p["Values"] for page in pages for p in page["Partitions"]):
            missing.append(table)
    if missing:
        return Check(name, FAIL, f"no partition of {run_id} in {', '.join(missing)}")
    if state.get("queryable") is not True:
        return Check(name, FAIL, f"status says queryable={state.get('queryable')}")
    return Check(name, OK)


def check_athena(target: Target, run_id: str | None, state: dict[str, Any]) -> Check:
    """The run's rows through its simulation's typed view, counted by Athena itself."""
    name = "the run's rows come back from Athena through its typed view"
    if target.offline:
        return Check(name, OFFLINE)
    if run_id is None:
        return Check(name, FAIL, "no run")
    from sweeps.views import view_name

    sql = f"SELECT count(*) AS n FROM {view_name(SIMULATION)} WHERE run_id = '{run_id}'"
    try:
        count = target.count_rows(sql)
    except Exception as error:  # any failure is the line's answer, named
        hint = "the views are a deploy step: AthenaEngine.create_views"
        return Check(name, FAIL, f"{type(error).__name__}: {error} ({hint})")
    want = state.get("points_succeeded")
    if count != want:
        return Check(name, FAIL, f"{count} rows, status says {want} points succeeded")
    return Check(name, OK)


def check_concurrency(target: Target) -> Check:
    """The account's Lambda concurrency, for choosing the worker's reserved concurrency
    (docs/runbook.md, "Worker concurrency"); fails only if the call itself fails."""
    name = "account concurrency reported"
    if target.offline:
        return Check(name, OFFLINE)
    try:
        limit = target.account_settings()["AccountLimit"]
    except Exception as error:  # the caller may lack lambda:GetAccountSettings
        return Check(name, FAIL, f"{type(error).__name__}: {error}")
    total, unreserved = limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]
    return Check(name, OK, f"limit {total}, unreserved {unreserved}")


PROBE_HINTS = {
    "403": "S3 refused to say the key is absent: the role lacks s3:ListBucket on the bucket "
    "without a prefix condition, or s3:GetObject on runs/ (docs/security.md)",
    "AccessDenied": "the role's policy does not grant the HEAD (deploy/policies.py)",
}


def check_probe(target: Target, function: str) -> Check:
    """The function, invoked with the probe event, HEADs a random missing key under its own
    role: S3 must answer 404 (not 403). Nothing is written."""
    from chalicelib.storage.probe import ACTION, PROBE

    name = probe_line(function)
    try:
        answer = target.invoke(function, dict(PROBE))
    except Exception as error:  # the invoke's failure is the line's answer, named
        return Check(name, FAIL, f"invoke failed: {type(error).__name__}: {error}")
    if isinstance(answer, dict) and answer.get("probe") == "refused":
        return Check(name, FAIL, f"the function refused the probe event: {answer.get('problems')}")
    if not isinstance(answer, dict) or answer.get("probe") != ACTION:
        return Check(name, FAIL, f"not the probe's answer (is this deploy older?): {answer}")
    if answer.get("status") == 404:
        return Check(name, OK)
    said = str(answer.get("error") or f"status {answer.get('status')}")
    hints = [hint for code, hint in PROBE_HINTS.items() if code in said]
    return Check(name, FAIL, "; ".join([said, *hints]))


def check_cleanup(
    target: Target, before: dict[str, Any], made: list[str], state: dict[str, Any]
) -> Check:
    """Cancel what the smoke made if it is still going; no other run may have changed."""
    name = "cleanup: only the smoke's own runs touched"
    if made and state and not state.get("complete"):
        status, body = target.call("POST", f"/sweeps/{made[0]}/cancel", {})
        if status != 202:
            return Check(name, FAIL, f"cancel of {made[0]} answered {status}: {body}")
    after = _runs(target)
    changed = [r for r, run in before.items() if r in after and after[r] != run]
    if changed:
        return Check(name, FAIL, f"other runs changed: {changed}")
    return Check(name, OK)


def run_checks(target: Target, label: str, polls: int) -> list[Check]:
    checks = [check_concurrency(target), check_unsigned(target), check_signed(target)]
    before = _runs(target)
    checks += [check_gateway_400(target), check_app_400(target)]
    run_id, state, why = run_sweep(target, label, polls)
    checks.append(check_sweep(state, why))
    checks.append(check_crash(target, run_id))
    checks.append(check_partitions(target, run_id, state))
    checks.append(check_athena(target, run_id, state))
    checks.append(check_cleanup(target, before, [run_id] if run_id else [], state))
    checks += [check_probe(target, fn) for fn in target.functions]
    return checks


@dataclass
class LiveTarget:
    """The deployed stage on AWS: requests signed with SigV4 for execute-api."""

    url: str
    region: str
    bucket: str
    prefix: str
    database: str
    workgroup: str
    function_names: dict[str, str]  # deploy.naming's name of each function → its deployed name
    interval: float = 10.0
    offline: bool = False

    @property
    def functions(self) -> tuple[str, ...]:
        return tuple(self.function_names)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        import boto3

        client = boto3.client("lambda", region_name=self.region)
        response = client.invoke(
            FunctionName=self.function_names[function],
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        answer = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"{response['FunctionError']}: {answer}")
        return answer

    def call(
        self, method: str, path: str, body: Any = None, signed: bool = True
    ) -> tuple[int, Any]:
        import urllib.error
        import urllib.request

        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        request = AWSRequest(method=method, url=self.url + path, data=data, headers=headers)
        if signed:
            credentials = boto3.Session().get_credentials()
            SigV4Auth(credentials, "execute-api", self.region).add_auth(request)
        prepared = urllib.request.Request(
            request.url, data=data, headers=dict(request.headers), method=method
        )
        try:
            with urllib.request.urlopen(prepared, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text.decode(errors="replace")

    def settle(self) -> None:
        time.sleep(self.interval)

    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", region_name=self.region)

    def glue(self) -> Any:
        import boto3

        return boto3.client("glue", region_name=self.region)

    def count_rows(self, sql: str) -> int:
        import boto3

        from sweeps.engines.athena import AthenaEngine

        def client() -> Any:
            return boto3.client("athena", region_name=self.region)

        result = AthenaEngine(self.workgroup, self.database, client).execute(sql)
        return int(next(iter(result.rows[0].values())))

    def account_settings(self) -> dict[str, Any]:
        import boto3

        settings: dict[str, Any] = boto3.client(
            "lambda", region_name=self.region
        ).get_account_settings()
        return settings


def live_target(stage: str, project: Path, api_url: str | None) -> LiveTarget:
    """The stage's names from its stack's outputs (``stage_outputs``), the API's URL from
    ``--api-url``, else path A's ``EndpointURL`` output, else what ``chalice deploy`` recorded
    (path B)."""
    import boto3

    from deploy import post_deploy
    from deploy.naming import FUNCTIONS, StageNames

    session = boto3.Session()
    region = session.region_name or "us-east-1"
    outputs = stage_outputs(session.client("cloudformation"), stage)
    if api_url is None:
        api_url = outputs.get("EndpointURL")
    if api_url is None:
        api = post_deploy.rest_api_id(project, stage)
        api_url = f"https://{api}.execute-api.{region}.amazonaws.com/{post_deploy.API_STAGE}"
    return LiveTarget(
        url=api_url.rstrip("/"),
        region=region,
        bucket=outputs["DataBucketName"],
        prefix=outputs["DataPrefix"],
        database=outputs["GlueDatabaseName"],
        workgroup=outputs["AthenaWorkGroupName"],
        function_names={fn: StageNames(stage).function(fn) for fn in FUNCTIONS},
    )


def stage_outputs(cfn: Any, stage: str) -> dict[str, str]:
    """The outputs of the stack holding the stage's data: path B's data stack
    (``sweeps-<stage>-data``), else path A's one stack (``sweeps-<stage>``, which holds the
    same outputs and the API's ``EndpointURL``)."""
    from deploy import path_b
    from deploy.naming import StageNames

    names = (path_b.stack_name(stage), StageNames(stage).base)
    for name in names:
        try:
            stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        except cfn.exceptions.ClientError:
            continue
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    raise SystemExit(f"no stack {' or '.join(names)}: is stage {stage} deployed here?")


def report(checks: Sequence[Check], out: Callable[[str], None] = print) -> int:
    for check in checks:
        out(check.line())
    return exit_code(checks)


def main(argv: Sequence[str] | None = None) -> int:
    from chalicelib.config import PROJECT_ROOT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--api-url", help="the API's base URL (default: chalice's record)")
    parser.add_argument("--polls", type=int, default=60, help="status polls, 10 s apart")
    args = parser.parse_args(argv)
    project = PROJECT_ROOT / "build" / f"slim-{args.stage}" / "project"
    target = live_target(args.stage, project, args.api_url)
    return report(run_checks(target, f"smoke-{int(time.time())}", args.polls))


if __name__ == "__main__":
    sys.exit(main())
