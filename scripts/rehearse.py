"""`make rehearse`: path B deployed to moto's server, then the deployed artifacts run a sweep.

1. Start moto's server in this process (S3, Glue, IAM, Lambda, API Gateway, CloudFormation),
   with one patch: moto 5.2.5's ImportRestApi requires ``info.description``, which Chalice's
   swagger lacks (aws-facts) — the patch supplies an empty one.
2. ``deploy.path_b.run``, given ``moto_gaps.path_b_outputs`` (moto's CloudFormation skips Glue
   and Athena resources: they are created directly), all the way through ``chalice deploy``
   and the post-deploy step.
3. Switch moto's IAM enforcement on (``scripts/moto_iam.py``), with credentials of each
   function's generated role, so a call outside a function's policy is an AccessDenied. Then
   download the function code and the layer *as deployed* from moto's Lambda, unpack them into
   an empty folder, and run ``tests/deploy/artifact_driver.py`` in a clean Python 3.12
   against the same server: the API handler, dispatcher, worker and failure recorder handlers,
   each under its own role, drive a sweep with an injected failure, a crashing worker, a
   refused invoke, a duplicate delivery and a redrive, then ``make smoke``'s checklist
   (each function's probe included), then a run at scale (``SCALE_SHARDS``): the dispatcher
   tree of 100,000 shards, status's key ranges past a listing page, the summary, compaction
   and its clean-up, each count checked exactly (``scale_problems``). moto cannot run Lambda
   code without Docker, so the driver stands in for Lambda's Invoke.
4. The enforcement bites: the worker's role with its read grant on ``runs/`` removed makes the
   probe fail with AccessDenied; restored, it answers 404 again.

Prints each step and what it reached; exits 1 at the first failure.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.config import PROJECT_ROOT

REGION = "us-east-1"
ARTIFACTS = "sweeps-rehearsal-artifacts"
FAKE_CREDENTIAL = "testing"
DRIVER = PROJECT_ROOT / "tests" / "deploy" / "artifact_driver.py"
SMOKE = PROJECT_ROOT / "deploy" / "smoke.py"
# The Lambda runtime's Python: the check is only meaningful under the same version.
LAMBDA_PYTHON = Path(sys.base_prefix) / "bin" / "python3.12"


def run_driver(
    artifact: Path,
    boto: Path,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    extra: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """``artifact_driver.py`` in a clean python3.12 (-S -E -s: no site-packages, no
    PYTHON* variables) whose path it sets to the unpacked artifact and boto3 alone; its report
    is the last line of stdout. Shared by ``make rehearse`` (``extra``: the smoke's file) and
    ``test_artifact``."""
    return subprocess.run(
        [str(LAMBDA_PYTHON), "-S", "-E", "-s", str(DRIVER), str(artifact), str(boto), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


def start_moto() -> str:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from scripts import moto_gaps, moto_iam

    moto_gaps.install_server_patches()
    moto_iam.install_patches()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def runtime_boto(dest: Path) -> Path:
    import importlib

    dest.mkdir()
    for name in RUNTIME_PACKAGES:
        source = Path(str(importlib.import_module(name).__file__))
        if source.name == "__init__.py":
            shutil.copytree(source.parent, dest / name)
        else:
            shutil.copy2(source, dest / source.name)
    return dest


def deployed_artifact(stage: str, dest: Path) -> Path:
    """The worker's code and layers as moto's Lambda stores them, unpacked like /var/task
    and /opt/python on one path. Read from moto's objects in this process: the download URLs
    moto returns point at AWS's real buckets."""
    from moto.awslambda.models import lambda_backends
    from moto.core.models import DEFAULT_ACCOUNT_ID

    backend = lambda_backends[DEFAULT_ACCOUNT_ID][REGION]
    function = backend.get_function(f"sweeps-{stage}-worker")
    artifact = dest / "artifact"
    with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as zf:
        zf.extractall(artifact)
    for layer in function.layers:
        version = backend.layers_versions_by_arn(layer["Arn"])
        assert version is not None, layer
        with zipfile.ZipFile(io.BytesIO(version.code_bytes)) as zf:
            zf.extractall(dest / "opt")
    shutil.copytree(dest / "opt" / "python", artifact, dirs_exist_ok=True)
    return artifact


def deployed_state(stage: str) -> dict[str, Any]:
    """What the deploy left in moto: auth per method, the validator, the worker's OnFailure."""
    import boto3

    apigw, lam = boto3.client("apigateway"), boto3.client("lambda")
    (api,) = apigw.get_rest_apis()["items"]
    auth = {}
    for resource in apigw.get_resources(restApiId=api["id"], embed=["methods"])["items"]:
        for method in resource.get("resourceMethods") or {}:
            got = apigw.get_method(
                restApiId=api["id"], resourceId=resource["id"], httpMethod=method
            )
            auth[f"{method} {resource['path']}"] = [
                got.get("authorizationType"),
                got.get("requestValidatorId") is not None,
            ]
    config = lam.get_function_event_invoke_config(FunctionName=f"sweeps-{stage}-worker")
    return {
        "methods (auth, validated)": auth,
        "validators": [
            v["name"] for v in apigw.get_request_validators(restApiId=api["id"])["items"]
        ],
        "models": sorted(m["name"] for m in apigw.get_models(restApiId=api["id"])["items"]),
        "worker retries": config.get("MaximumRetryAttempts"),
        "worker OnFailure": config["DestinationConfig"]["OnFailure"].get("Destination"),
        "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]),
    }


def main() -> int:
    from deploy import path_b
    from deploy.naming import StageNames
    from scripts import moto_gaps

    stage = "dev"
    url = start_moto()
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = FAKE_CREDENTIAL
    os.environ.pop("AWS_PROFILE", None)
    import boto3

    print(f"[1/4] moto server at {url}")
    boto3.client("s3").create_bucket(Bucket=ARTIFACTS)
    with tempfile.TemporaryDirectory(prefix="sweeps-rehearsal-") as tmp:
        out = Path(tmp)
        print("[2/4] path B deploy (layer, data stack, chalice deploy, post-deploy)")
        states = []
        for round_ in ("first deploy", "same deploy again (idempotent)"):
            print(f"--- {round_}")
            try:
                path_b.run(
                    stage, ARTIFACTS, out / "build", moto_gaps.path_b_outputs(stage, ARTIFACTS)
                )
            except Exception as exc:
                print(f"FAILED in path B deploy ({round_}): {type(exc).__name__}: {exc}")
                return 1
            states.append(deployed_state(stage))
        print(json.dumps(states[-1], indent=2))
        if states[0] != states[1]:
            print("FAILED: the second deploy changed the deployed state")
            return 1
        config = json.loads(
            (out / "build" / f"slim-{stage}" / "project" / ".chalice" / "config.json").read_text()
        )
        env = config["stages"][stage]["environment_variables"]
        print("[3/4] IAM enforced; the deployed artifacts run a sweep in a clean python3.12")
        roles = enforce_iam(url, stage)
        artifact = deployed_artifact(stage, out)
        boto = runtime_boto(out / "runtime")
        names = StageNames(stage)
        child_env = {
            "PATH": os.environ.get("PATH", ""),
            **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
            **{k: v for k, v in config["environment_variables"].items()},
            **env,
            "SWEEP_WORKER_FUNCTION": names.function("worker"),
            "SWEEP_DISPATCHER_FUNCTION": names.function("dispatcher"),
            "SWEEP_COMPACTOR_FUNCTION": names.function("compactor"),
            "SWEEP_COMPACTION_GRACE_S": "0",  # the run's compaction is cleaned up within it
            "SWEEP_REHEARSAL_ROLES": json.dumps(roles),
            "SWEEP_REHEARSAL_SCALE": str(SCALE_SHARDS),  # the driver's run at scale
        }
        done = drive(artifact, boto, child_env, out)
        if done.returncode != 0:
            print(f"FAILED running the deployed artifacts:\n{done.stderr[-4000:]}")
            return 1
        report = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps({k: report[k] for k in SHOWN}, indent=2))
        if not compaction_ok(report) or not scale_ok(report["scale"]):
            return 1
        state = report["state"]
        # artifact_driver: shard 0 succeeds; 1 injected, 2 crashes (→ recorder), 3 refused.
        ok = state["complete"] and state["shards"] == {"succeeded": 1, "failed": 3, "pending": 0}
        if not ok:
            print("rehearsal: UNEXPECTED STATE")
            return 1
        verdict = smoke_verdict(report["smoke"])
        # A HEAD moto refuses answers a bare 403 (no body): the worker's role is not the operator.
        print(f"the worker's role reading compacted/: {report['role_check']} (want 403)")
        if report["role_check"] != "403":
            verdict = 1
        print("[4/4] a narrowed policy makes the worker's probe fail")
        problem = narrowed_policy_bites(stage, roles["worker"], env["SWEEP_BUCKET"])
        print(f"FAILED: {problem}" if problem else "narrowed policy refused, restored: ok")
        return verdict or (1 if problem else 0)


SHOWN = ("state", "handled", "partitions", "first_compaction_records")
# The driver's run at scale (``run_at_scale``): past one page of S3's listing (1,000 keys), with
# the dispatcher tree of 100,000 shards (a root, 10 inner, 100 leaves) at 11 shards a leaf.
SCALE_SHARDS = 1_100


def drive(
    artifact: Path, boto: Path, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``run_driver`` with the smoke, printing its CPU and moto's (this process's server
    threads): the rehearsal's cost, beside its wall time, which a busy machine stretches."""
    before = os.times()
    done = run_driver(artifact, boto, env, cwd, timeout=900, extra=[str(SMOKE)])
    after = os.times()
    driver = after.children_user + after.children_system
    driver -= before.children_user + before.children_system
    moto = after.user + after.system - before.user - before.system
    print(f"the driver's run: {driver:.1f} s of its CPU, {moto:.1f} s of moto's server's")
    return done


def compaction_ok(report: dict[str, Any]) -> bool:
    """The deployed compactor compacted the driver's first run, pointed Glue at it and (with
    no grace period) deleted what it replaced."""
    compacted = {"gen-000001.json", "gen-000001.pointed", "gen-000001.cleaned"}
    if compacted <= set(report["first_compaction_records"]):
        return True
    print("rehearsal: the deployed compactor did not compact, point and clean the run")
    return False


def scale_ok(scale: dict[str, Any]) -> bool:
    """Print what the run at scale did, in one line, then each of its problems."""
    requests = sum(scale["cleanup_requests"].values())
    deleted = sum(c.get("deleted", 0) for c in scale["compactions"])
    print(
        f"at scale: {scale['shards']:,} shards, {len(scale['dispatched'])} dispatcher "
        f"invocations; status while running listed the outcomes in "
        f"{len(scale['running_listings'])} requests; the compactor deleted {deleted:,} files "
        f"in {requests} requests {scale['cleanup_requests']}; {scale['seconds']} s, "
        f"{scale['cpu_seconds']} s of the driver's CPU"
    )
    problems = scale_problems(scale)
    for problem in problems:
        print(f"FAILED at scale: {problem}")
    return not problems


def scale_problems(scale: dict[str, Any]) -> list[str]:
    """Each way the driver's run at scale (``run_at_scale``) differs from what its deployed
    code must do; empty when it ran as it must. Exact counts throughout."""
    n = scale["shards"]
    problems = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{what}: {str(got)[:300]} (want {str(want)[:300]})")

    def spread(k: int) -> dict[str, int]:
        """What the driver reports of values read: each of 0..k-1 once (k = 0: none)."""
        return {"rows": k, "distinct": k, "lo": 0 if k else -1, "hi": k - 1}

    # The tree of 100,000 shards at 1,000 a leaf: a root, 10 inner dispatchers, 100 leaves.
    tree = sorted(tuple(r) for r in scale["dispatched"])
    sizes = Counter(hi - lo for lo, hi in tree)
    expect("dispatcher invocations by shards", dict(sizes), {n: 1, n // 10: 10, n // 100: 100})
    leaves = [(lo, hi) for lo, hi in tree if hi - lo == n // 100]
    expect("the leaves' ranges", leaves, [(k, k + n // 100) for k in range(0, n, n // 100)])
    every = spread(n)
    expect("worker events", scale["worker_events"], n)
    expect("worker invocations per shard", scale["worker_runs"], every)
    running, at = scale["running"], scale["running_at"]
    expect(
        "status while running, shards",
        running["shards"],
        {"succeeded": at, "failed": 0, "pending": n - at},
    )
    expect("status while running, complete", running["complete"], False)
    expect("status while running, dispatch", running["dispatch"], {"dispatched": n, "failed": 0})
    expect("status while running, points", running["points_succeeded"], 2 * at)
    # Its outcome listing (key_ranges): a first page of 1,000 keys, then one range from that
    # page's last key and one from each cut (every 999 shards) past it, all at once.
    listings = scale["running_listings"]
    ranges = 1 + len(range(2 * 999, n, 999))
    expect("outcome listings from the start (first page)", listings.count(""), 1)
    expect("outcome listings while running", len(listings), 1 + ranges)
    complete = {
        "complete": True,
        "shards": {"succeeded": n, "failed": 0, "pending": 0},
        "failed_shards": [],
        "points_succeeded": 2 * n,
        "dispatch": {"dispatched": n, "failed": 0},
    }
    expect("status once complete", scale["complete"], complete)
    expect("status after compaction", scale["compacted"], complete)
    expect(
        "compactor invocations",
        scale["compactions"],
        [{"status": "cleaned", "generation": 1, "deleted": n}],
    )
    records = set(scale["compaction_records"])
    expect(
        "compaction records",
        {"gen-000001.json", "gen-000001.pointed", "gen-000001.cleaned"} - records,
        set(),
    )
    expect("a second generation", "gen-000002.json" in records, False)
    requests = sum(scale["cleanup_requests"].values())
    if not 1 <= requests <= -(-n // 1000):
        problems.append(
            f"the clean-up of {n:,} files took {requests} requests "
            f"{scale['cleanup_requests']} (want at most {-(-n // 1000)}: DeleteObjects, "
            "1,000 keys each)"
        )
    expect("per-shard results files after the clean-up", scale["per_shard_results_left"], 0)
    expect("per-shard success outcomes (kept)", scale["succeeded_outcome_files"], n)
    expect(
        "a late worker delivery after compaction", scale["late_delivery"].get("status"), "duplicate"
    )
    expect(
        "a late root dispatcher delivery after compaction",
        scale["late_dispatch"],
        {"complete": True, "queued": 0},
    )
    partitions = scale["partitions"]
    folders = [*partitions["results"].values(), *partitions["outcomes"].values()]
    expect(
        "partitions not pointed at generation 1",
        [f for f in folders if "/gen-000001-" not in f],
        [],
    )
    expect("results partitions", list(partitions["results"]), [""])
    expect(
        "points read through the results partition",
        scale["results_read"],
        spread(2 * n),
    )
    for partition, read in scale["outcomes_read"].items():
        want = every if partition.startswith("succeeded/") else spread(0)
        expect(f"shards read through the outcomes partition {partition}", read, want)
    expect(
        "outcomes partitions",
        sorted(p.split("/")[0] for p in scale["outcomes_read"]),
        ["failed", "succeeded"],
    )
    return problems


def enforce_iam(url: str, stage: str) -> dict[str, dict[str, str]]:
    """Each function's role credentials, then moto's IAM enforcement on; from here this process
    (and the driver, between handlers) acts as the operator user."""
    import boto3

    from scripts import moto_iam

    operator = moto_iam.operator_environment(boto3.client("iam"))
    roles = moto_iam.role_credentials(stage, boto3.client("lambda"), boto3.client("sts"))
    moto_iam.enforce(url)
    os.environ.update(operator)
    boto3.setup_default_session()
    return roles


def narrowed_policy_bites(stage: str, role: dict[str, str], bucket: str) -> str | None:
    """The probe's own code, under the worker's deployed role: 404; with the role's policy
    narrowed (no read of ``runs/``), an AccessDenied; restored, 404. None when all three hold."""
    import boto3

    from chalicelib.storage import probe
    from chalicelib.storage.stores import S3Store
    from deploy.naming import StageNames
    from scripts import moto_iam

    iam = boto3.client("iam")
    names = StageNames(stage)
    role_name = role["RoleArn"].split("/")[-1]
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    policy = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    client = boto3.client(
        "s3",
        aws_access_key_id=role["AccessKeyId"],
        aws_secret_access_key=role["SecretAccessKey"],
        aws_session_token=role["SessionToken"],
    )
    store = S3Store(bucket, names.prefix, lambda: client)

    def status() -> Any:
        answer = probe.answer(dict(probe.PROBE), store, role["function"])
        return answer.get("status", answer.get("error"))

    narrowed = moto_iam.without_read(policy, "runs")
    answers = [status()]
    iam.put_role_policy(
        RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(narrowed)
    )
    try:
        answers.append(status())
    finally:
        iam.put_role_policy(
            RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(policy)
        )
    answers.append(status())
    denied = isinstance(answers[1], str) and ("AccessDenied" in answers[1] or "403" in answers[1])
    if answers[0] == 404 and denied and answers[2] == 404:
        return None
    return f"probe answers (granted, narrowed, restored): {answers}"


def smoke_verdict(lines: Sequence[Sequence[str]], out: Any = print) -> int:
    """`make smoke`'s checklist as the deployed artifacts answered it: 1 if a line failed or a
    line the rehearsal must run (``smoke.REQUIRED_OFFLINE``) is missing or was skipped."""
    from deploy.smoke import Check, rehearsal_problems

    checks = [Check(name, status, why) for name, status, why in lines]  # type: ignore[arg-type]
    out("make smoke, against the rehearsal's deployment:")
    for check in checks:
        out(f"  {check.line()}")
    problems = rehearsal_problems(checks)
    for problem in problems:
        out(f"FAILED: {problem}")
    out("rehearsal: OK" if not problems else "rehearsal: SMOKE FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
