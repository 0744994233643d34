"""The probe every deployed function answers (chalicelib/storage/probe.py), judged by moto's IAM
enforcement under each function's generated role: 404 inside the role's grants, AccessDenied
once the role's policy is narrowed, and nothing but the exact probe event is answered. And the
same judge on the compactor's batched delete (``moto_iam.per_key``)."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Iterator
from typing import Any
from unittest.mock import create_autospec

import boto3
import pytest
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication

from chalicelib.storage import layout, probe
from chalicelib.storage.stores import ObjectStore, S3Store
from deploy import policies
from deploy.naming import FUNCTIONS, StageNames
from scripts import moto_iam
from tests.support.harness import Harness

STAGE = "dev"
ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = f"sweeps-{STAGE}-{ACCOUNT}-{REGION}"  # what the stage's bucket pattern stands for
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def aws() -> Iterator[Any]:
    moto_iam.install_patches()
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield boto3.client("iam", region_name=REGION)


def role_store(iam: Any, fn: str, policy: dict[str, Any]) -> S3Store:
    """The stage's store as ``fn``'s role sees it: a role with ``policy``, assumed while moto
    checks nothing (as the rehearsal does), its credentials on the client."""
    name = f"{StageNames(STAGE).function(fn)}-role"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName=fn, PolicyDocument=json.dumps(policy))
    got = boto3.client("sts", region_name=REGION).assume_role(RoleArn=arn, RoleSessionName=fn)
    creds = got["Credentials"]
    client = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return S3Store(BUCKET, StageNames(STAGE).prefix, lambda: client)


def test_every_function_probes_inside_its_own_grants_and_gets_404(aws: Any) -> None:
    stores = {fn: role_store(aws, fn, policies.file_policy(STAGE, fn)) for fn in FUNCTIONS}
    with enable_iam_authentication():
        for fn, store in stores.items():
            answer = probe.answer(dict(probe.PROBE), store, fn)
            assert answer["status"] == 404, (fn, answer)
            assert answer["key"].startswith(layout.PROBES)
            # and the enforcement is real: the same role may not read outside its stage's
            # prefix (every function's grants, the compactor's included, stop there)
            elsewhere = S3Store(
                BUCKET, "another-stage", functools.partial(getattr, store, "client")
            )
            with pytest.raises(Exception, match=r"403|AccessDenied|Forbidden"):
                elsewhere.exists(f"{layout.PROBES}probe")
    listing = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)
    assert listing.get("KeyCount") == 0  # the probe wrote nothing


def test_a_narrowed_policy_makes_the_probe_fail_with_access_denied(aws: Any) -> None:
    policy = moto_iam.without_read(policies.file_policy(STAGE, "worker"), "runs")
    store = role_store(aws, "worker", policy)
    with enable_iam_authentication():
        answer = probe.answer(dict(probe.PROBE), store, "worker")
    assert "status" not in answer
    assert "403" in answer["error"] or "AccessDenied" in answer["error"], answer


def test_the_compactors_batched_delete_is_judged_per_key(aws: Any) -> None:
    """S3Store.delete_many (DeleteObjects: a compaction's clean-up) under the compactor's
    generated role. IAM wants s3:DeleteObject on each key; moto 5.2.5 checks the bucket's ARN,
    which no role is granted, so without ``moto_iam.per_key`` every key came back AccessDenied:
    the keys inside the compactor's grants go, and a key outside them is refused."""
    run = "20261206T155005279Z-5dd8d1c1b044"
    keys = [layout.results(run, shard) for shard in range(3)]
    operator = S3Store(BUCKET, StageNames(STAGE).prefix, lambda: boto3.client("s3"))
    for key in keys:
        operator.put(key, b"parquet")
    compactor = role_store(aws, "compactor", policies.file_policy(STAGE, "compactor"))
    outside = S3Store(BUCKET, "another-stage", functools.partial(getattr, compactor, "client"))
    with enable_iam_authentication():
        compactor.delete_many(keys)
        with pytest.raises(Exception, match="AccessDenied"):
            outside.delete_many(keys)
    assert [key for key in keys if operator.exists(key)] == []


def test_motos_enforcement_is_off_without_the_switch(aws: Any) -> None:
    """The judge above is the switch, not the policy: the same narrowed role passes unchecked."""
    store = role_store(
        aws, "worker", moto_iam.without_read(policies.file_policy(STAGE, "worker"), "runs")
    )
    assert probe.answer(dict(probe.PROBE), store, "worker")["status"] == 404


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({probe.FIELD: probe.ACTION, "key": "runs/x"}, "unexpected field 'key'"),
        ({probe.FIELD: "put_object"}, f"{probe.FIELD} must be 'head_missing_key'"),
        ({probe.FIELD: probe.ACTION, "run_id": "r", "Bucket": "b"}, "unexpected field 'Bucket'"),
    ],
)
def test_anything_but_the_exact_probe_is_refused_before_any_call(
    event: dict[str, Any], problem: str
) -> None:
    store = create_autospec(ObjectStore, instance=True)  # records every call made on it
    answer = probe.answer(event, store, "worker")
    assert answer["probe"] == "refused"
    assert problem in answer["problems"]
    assert store.method_calls == []


class Context:
    function_name = "sweeps-dev-fn"
    aws_request_id = "probe-request"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sweeps-dev-fn"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def lambda_handler(app_module: Any, fn: str) -> Any:
    """What Lambda runs for ``fn``: the object its handler string names (``app.app`` for the
    routes' function), as Chalice records them."""
    app = app_module.app
    strings = {"api_handler": "app.app"}
    for config in [*app.pure_lambda_functions, *app.event_sources]:
        strings[config.name] = config.handler_string
    module, attribute = strings[fn].split(".")
    return getattr(importlib.import_module(module), attribute)


def test_every_deployed_function_answers_a_direct_invoke_with_the_probe(harness: Harness) -> None:
    """Generic over deploy.naming.FUNCTIONS: a function added there without ``@probed`` (or
    without the app's ``__call__``) fails here. Nothing is written, nothing invoked."""
    app_module = importlib.import_module("app")
    for fn in FUNCTIONS:
        answer = lambda_handler(app_module, fn)(dict(probe.PROBE), Context())
        assert answer["probe"] == probe.ACTION and answer["status"] == 404, (fn, answer)
        assert answer["function"] == Context.function_name
        refused = lambda_handler(app_module, fn)({probe.FIELD: probe.ACTION, "x": 1}, Context())
        assert refused["probe"] == "refused", (fn, refused)
    assert harness.all_keys() == []
    assert harness.lambda_.accepted == []
