"""Path B's artifacts run: the slim function zip plus the trimmed layer, unpacked into an empty
folder, imported by a clean Python 3.12 that sees only that folder and boto3, drive a sweep
through the API, dispatcher, worker and failure recorder handlers against moto's server.

This catches what the rest of the suite cannot: a dependency missing from the package, a
trimmed library file that was needed, a wrong Python. Needs PyPI (or its mirror).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from chalicelib import aws as sweeps_aws
from chalicelib.analytics.glue_schema import TABLES, table_input
from chalicelib.simulations.registry import REGISTRY
from deploy import layer, policies, slim
from deploy.naming import FUNCTIONS
from scripts.rehearse import LAMBDA_PYTHON, run_driver
from tests.support.policies import iam_match, render

# What the Lambda Python runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
BUCKET = "sweeps-dev-000000000000-us-east-1"
SAMPLES = [100, 200, 300, 400, 500, 600, 700, 800]
DRIVER_REQUEST = {  # artifact_driver.py's request
    "simulation": "monte_carlo_pi",
    "parameters": {"samples": {"values": SAMPLES}},
    "shards": {"count": 4},
    "fail_shards": [1],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[layer.Layer, slim.Slim]:
    root = tmp_path_factory.mktemp("artifacts")
    return layer.build(root / "layer"), slim.package("dev", root / "slim")


def unpack(built: tuple[layer.Layer, slim.Slim], dest: Path) -> Path:
    lay, function = built
    artifact = dest / "artifact"
    with zipfile.ZipFile(function.zip) as zf:
        zf.extractall(artifact)
    shutil.copytree(lay.folder / "python", artifact, dirs_exist_ok=True)  # /opt/python
    return artifact


def runtime_boto(dest: Path) -> Path:
    folder = dest / "runtime"
    folder.mkdir()
    for name in RUNTIME_PACKAGES:
        module = importlib.import_module(name)
        source = Path(str(module.__file__))
        if source.name == "__init__.py":
            shutil.copytree(source.parent, folder / name)
        else:
            shutil.copy2(source, folder / source.name)
    return folder


FAKE = "testing"  # moto accepts any credential; a real account never sees these


def aws_env(moto_url: str) -> dict[str, str]:
    """Fake credentials (as conftest's) and moto's server as every endpoint."""
    fake = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return {
        **dict.fromkeys(fake, FAKE),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_url,
    }


def test_sizes_fit_lambda(built: tuple[layer.Layer, slim.Slim]) -> None:
    lay, function = built
    assert function.zip_bytes < slim.DIRECT_UPLOAD_LIMIT
    assert lay.zip_bytes < slim.DIRECT_UPLOAD_LIMIT
    assert function.unzipped_bytes + lay.unzipped_bytes <= slim.UNZIPPED_GOAL


@pytest.fixture(scope="module")
def run(
    built: tuple[layer.Layer, slim.Slim],
    moto_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], Path, Path]:
    """The driver's report of one sweep run by the unpacked artifacts."""
    tmp_path = tmp_path_factory.mktemp("run")
    env = aws_env(moto_url)
    aws: Any = boto3.session.Session(
        aws_access_key_id=FAKE,
        aws_secret_access_key=FAKE,
        aws_session_token=FAKE,
        region_name="us-east-1",
    )
    aws.client("s3", endpoint_url=moto_url).create_bucket(Bucket=BUCKET)
    glue = aws.client("glue", endpoint_url=moto_url)
    glue.create_database(DatabaseInput={"Name": "sweeps_dev"})
    for table in TABLES:
        glue.create_table(
            DatabaseName="sweeps_dev",
            TableInput=table_input(table, f"s3://{BUCKET}/sweeps/{table}/"),
        )
    artifact, boto = unpack(built, tmp_path), runtime_boto(tmp_path)
    assert LAMBDA_PYTHON.exists(), "Lambda runs python3.12; so must this check"
    child_env = {
        "PATH": os.environ.get("PATH", ""),
        **env,
        "SWEEP_STAGE": "dev",
        "SWEEP_BACKEND": "aws",
        "SWEEP_FAULT_INJECTION": "true",
        "SWEEP_BUCKET": BUCKET,
        "SWEEP_PREFIX": "sweeps",
        "SWEEP_WORKER_FUNCTION": "sweeps-dev-worker",
        "SWEEP_DISPATCHER_FUNCTION": "sweeps-dev-dispatcher",
        "SWEEP_COMPACTOR_FUNCTION": "sweeps-dev-compactor",
        "SWEEP_COMPACTION_GRACE_S": "0",  # the compactor deletes what it replaced at once
        "SWEEP_GLUE_DATABASE": "sweeps_dev",
        "POWERTOOLS_SERVICE_NAME": "sweeps",
        "SWEEP_DISPATCH_LEAF_SHARDS": "2",  # a dispatcher tree, even for 4 shards
        "SWEEP_STALL_TIMEOUT_S": "1",  # the reconciler's scenario (artifact_driver.py)
        "SWEEP_MAX_AUTO_REDRIVES": "1",
        "SWEEP_DISPATCH_MAX_ATTEMPTS": "2",
    }
    done = run_driver(artifact, boto, child_env, tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report, artifact, boto


def test_the_unpacked_artifacts_run_a_sweep(run: tuple[dict[str, Any], Path, Path]) -> None:
    report, artifact, _ = run
    assert report["python"] == [3, 12]
    for module in ("pyarrow", "numpy", "app"):
        assert report[module].startswith(str(artifact)), report[module]
    # The SDK the package ships wins over the runtime's (the artifact is first on the path, as
    # /var/task is in Lambda), with only the models of the services the functions call.
    assert report["boto3"].startswith(str(artifact)), report["boto3"]
    assert report["botocore"].startswith(str(artifact)), report["botocore"]
    assert report["botocore_models"] == sorted(sweeps_aws.SERVICES)
    assert report["status"] == 200
    state = report["state"]
    assert state["complete"] is True
    # shard 1: injected failure; 2: worker crashes (→ recorder); 3: Invoke refuses its event.
    # Each is tried twice: once dispatched, once redriven.
    assert state["shards"] == {"succeeded": 1, "failed": 3, "pending": 0}
    assert state["failed_shards"] == [1, 2, 3]
    assert report["handled"]["failure_recorder"] == 2
    # the crashing shard's event ran 3 times (Lambda's 2 retries) each time it was dispatched;
    # one more attempt failed on its outcome's write (``retried_outcome_write``)
    handled = report["handled"]
    assert handled["worker_attempts"] - handled["worker"] == 2 * 3 + 1
    assert report["handled"]["dispatcher"] > 2  # the tree's inner and leaf dispatchers
    assert report["partitions"] == {"outcomes": 2, "results": 1}
    assert report["handled"]["duplicates"] == 1
    # One success per shard whatever was delivered twice; each failure has its own outcome.
    successes = [f for f in report["outcome_files"] if f.startswith("shard-000000-")]
    assert len(successes) == 1, report["outcome_files"]
    # The results equal what the simulation gives for those points anywhere (the local stage
    # computes them with the same call): they depend on the point, the seed and the index only.
    sim = REGISTRY["monte_carlo_pi"]
    assert {shard for *_, shard in report["results"]} == {0}
    for index, params, metrics, _ in report["results"]:
        samples = SAMPLES[index]
        assert params == {"samples": str(samples)}
        assert metrics == sim.evaluate({"samples": samples}, 0)


def test_a_retry_after_the_outcome_write_failed_succeeds(
    run: tuple[dict[str, Any], Path, Path],
) -> None:
    """S3 fails a worker's success outcome PUT after its results landed: Lambda's retry finds
    its lock and results stored, reads them back and writes the outcome. (The read of its own
    results/ is a call ``test_each_call_is_granted_and_each_grant_is_used`` checks against the
    worker's policy, and ``make rehearse`` makes as the worker's role under moto's IAM.)"""
    retried = run[0]["retried_outcome_write"]
    assert retried["outcome_failures"] == 1
    assert retried["worker_attempts"] == 2  # the failed attempt, then Lambda's retry
    assert retried["complete"] is True
    assert retried["shards"] == {"succeeded": 1, "failed": 0, "pending": 0}
    reads = [
        call
        for call in run[0]["aws_calls"]
        if call["fn"] == "worker" and call["op"] == "GetObject" and "/results/" in call["Key"]
    ]
    assert reads, "the retry did not read its stored results back"


# -- every AWS call each function made, against that function's policy ----------------------

ACCOUNT, REGION = "000000000000", "us-east-1"  # the bucket name above carries them


def iam_requests(call: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(action, resource ARN, condition keys) that IAM evaluates for one recorded call."""
    service, op = call["service"], call["op"]
    if service == "s3" and op in ("PutObject", "GetObject", "HeadObject"):
        action = "s3:PutObject" if op == "PutObject" else "s3:GetObject"
        return [(action, f"arn:aws:s3:::{call['Bucket']}/{call['Key']}", {})]
    if service == "s3" and op == "DeleteObject":
        return [("s3:DeleteObject", f"arn:aws:s3:::{call['Bucket']}/{call['Key']}", {})]
    if service == "s3" and op == "DeleteObjects":  # one DeleteObject permission a key
        return [("s3:DeleteObject", f"arn:aws:s3:::{call['Bucket']}/{k}", {}) for k in call["Keys"]]
    if service == "s3" and op == "ListObjectsV2":
        return [("s3:ListBucket", f"arn:aws:s3:::{call['Bucket']}", {"s3:prefix": call["Prefix"]})]
    if service == "glue" and op in (
        "BatchCreatePartition",
        "BatchUpdatePartition",
        "BatchGetPartition",
    ):
        glue = f"arn:aws:glue:{REGION}:{ACCOUNT}"
        db, table = call["DatabaseName"], call["TableName"]
        return [
            (f"glue:{op}", arn, {})
            for arn in (f"{glue}:catalog", f"{glue}:database/{db}", f"{glue}:table/{db}/{table}")
        ]
    if service == "lambda" and op == "GetAccountSettings":
        return [("lambda:GetAccountSettings", "*", {})]
    if service == "lambda" and op == "Invoke":
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{call['FunctionName']}"
        return [("lambda:InvokeFunction", arn, {})]
    raise AssertionError(f"map {service}:{op} to IAM here, then grant it in deploy/policies.py")


def granting(
    policy: dict[str, Any], action: str, arn: str, context: dict[str, str]
) -> list[tuple[str, str]]:
    """(Sid, resource pattern) of every Allow that grants the request."""
    grants = []
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or action not in statement["Action"]:
            continue
        like = statement.get("Condition", {}).get("StringLike", {})
        if any(
            key not in context or not any(iam_match(p, context[key]) for p in patterns)
            for key, patterns in like.items()
        ):
            continue
        grants += [(statement["Sid"], r) for r in statement["Resource"] if iam_match(r, arn)]
    return grants


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("kind", ["file", "cfn"])
def test_each_call_is_granted_and_each_grant_is_used(
    run: tuple[dict[str, Any], Path, Path], fn: str, kind: str
) -> None:
    report = run[0]
    if kind == "file":
        policy = policies.file_policy("dev", fn)
    else:
        policy = render(policies.cfn_policy("dev", fn), account=ACCOUNT, region=REGION)
    calls = [c for c in report["aws_calls"] if c["fn"] == fn]
    assert calls, f"{fn} made no AWS call in the run"
    used: set[tuple[str, str]] = set()
    for call in calls:
        for action, arn, context in iam_requests(call):
            grants = granting(policy, action, arn, context)
            assert grants, f"{fn}: {action} on {arn} {context} is not granted"
            used.update(grants)
    unused = [
        (statement["Sid"], resource)
        for statement in policy["Statement"]
        if not statement["Sid"].startswith("OwnLog")  # CloudWatch Logs: Lambda writes them
        for resource in statement["Resource"]
        if (statement["Sid"], resource) not in used
    ]
    assert unused == [], f"{fn}: grants no call needed: {unused}"


def test_the_reconciler_redrives_then_closes_a_lost_shard(
    run: tuple[dict[str, Any], Path, Path],
) -> None:
    report = run[0]
    assert report["reconciler_passes"] == [
        {"complete": 1, "progressing": 1},
        {"redriven": 1},
        {"progressing": 1},
        {"closed-lost": 1},
        {"compacting": 1},
        {"complete": 1},
    ]
    lost = report["lost_run"]
    assert lost["complete"] and lost["failed_shards"] == [1] and lost["auto_redrives"] == 1
    # Glue failed its dispatcher's registration (the driver's outage): the reconciler's first
    # pass registered it, so it is queryable.
    assert lost["queryable"] is True
    # Compacted by the compactor the reconciler asked for; redriven after that, its lost shard
    # succeeded, and status's trigger compacted it again (generation 2, generation 1 cleaned).
    again = report["recompacted_run"]
    assert again["complete"] and again["failed_shards"] == []
    assert again["cost"]["by_function"]["compactor"]["invocations"] >= 2
    first = report["first_compaction_records"]  # status's trigger; no grace period here
    assert {"gen-000001.json", "gen-000001.pointed", "gen-000001.cleaned"} <= set(first), first
    # The usage table is compacted too, under the compactor's enforced policy.
    assert [r for r in first if r.endswith(".usage.gz")] != [], first
    records = report["compaction_records"]
    assert {"gen-000001.json", "gen-000002.json", "gen-000002.cleaned"} <= set(records), records


def test_the_results_equal_the_local_stages(
    run: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    """The same request on the local stage (process pool, local files) gives the same rows for
    every shard the AWS-shaped run completed."""
    from chalicelib.config import Settings
    from chalicelib.fanout.local_lambda import LocalInvoker
    from chalicelib.runs.submit import submit
    from chalicelib.storage import layout
    from chalicelib.storage.stores import LocalStore

    report = run[0]
    settings = Settings(  # as on the local stage
        local_root=tmp_path / "data", local_processes=2, allow_fault_injection=True
    )
    store = LocalStore(settings.local_root)
    invoker = LocalInvoker(settings, store)
    try:
        run_id = submit(settings, store, invoker, DRIVER_REQUEST)["run_id"]
        assert invoker.wait_idle(120)
    finally:
        invoker.close()
    local_rows = []
    for obj in store.list(layout.results_prefix(run_id)):
        for row in pq.read_table(io.BytesIO(store.get(obj.key))).to_pylist():
            local_rows.append(
                [row["point_index"], dict(row["params"]), dict(row["metrics"]), row["shard_id"]]
            )
    shards = {row[3] for row in report["results"]}
    assert sorted(r for r in local_rows if r[3] in shards) == report["results"]
