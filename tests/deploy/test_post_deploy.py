"""Path B's post-deploy step against moto: on an API shaped like Chalice's (auth declared on the
routes, so every method is AWS_IAM from ``chalice deploy`` on) it adds validation and wires the
worker's OnFailure destination, a second run changes nothing, and a method without AWS_IAM
fails it, named."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.apigateway.models import apigateway_backends
from moto.core.models import DEFAULT_ACCOUNT_ID

from chalicelib.model.errors import error_body
from deploy import merge, post_deploy
from deploy.naming import StageNames
from scripts import moto_gaps

ROUTES = {"/sweeps": ["POST"], "/sweeps/{run_id}": ["GET"], "/sweeps/{run_id}/redrive": ["POST"]}
ROUTES["/simulations"] = ["GET"]


class MotoApiGateway:
    """The apigateway client, plus the two calls moto 5.2.5 does not implement (UpdateMethod,
    UpdateModel: NotImplementedError), applied to moto's own objects the way API Gateway
    documents their patch paths. Everything else goes to moto unchanged."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def backend(self) -> Any:
        return apigateway_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]

    def update_method(
        self, restApiId: str, resourceId: str, httpMethod: str, patchOperations: list[Any]
    ) -> None:
        method = self.backend.get_method(restApiId, resourceId, httpMethod)
        moto_gaps.apply_method_patch(method, patchOperations)

    def update_model(self, restApiId: str, modelName: str, patchOperations: list[Any]) -> None:
        moto_gaps.apply_model_patch(self.backend.get_model(restApiId, modelName), patchOperations)


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


UNSECURED: list[tuple[str, str]] = []  # (path, method) created without auth, per test


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any, str]]:
    with mock_aws():
        names = StageNames("dev")
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(
            RoleName="r",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        moto_gaps.recursion_config()  # PutFunctionRecursionConfig: no route in moto 5.2.5
        lam = boto3.client("lambda", region_name="us-east-1")
        for fn in ("worker", "failure_recorder", "dispatcher"):
            lam.create_function(
                FunctionName=names.function(fn),
                Runtime="python3.12",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": lambda_zip()},
            )
        apigw = MotoApiGateway(boto3.client("apigateway", region_name="us-east-1"))
        api = apigw.create_rest_api(name="sweeps")["id"]
        root = next(r for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
        ids = {"/": root["id"]}
        for path in sorted(ROUTES, key=len):
            parent = path.rsplit("/", 1)[0] or "/"
            if path not in ids:
                part = path.rsplit("/", 1)[1]
                ids[path] = apigw.create_resource(
                    restApiId=api, parentId=ids[parent], pathPart=part
                )["id"]
        for path, methods in ROUTES.items():
            for method in methods:
                apigw.put_method(
                    restApiId=api,
                    resourceId=ids[path],
                    httpMethod=method,
                    authorizationType="NONE" if (path, method) in UNSECURED else "AWS_IAM",
                )
                apigw.put_integration(
                    restApiId=api,
                    resourceId=ids[path],
                    httpMethod=method,
                    type="AWS_PROXY",
                    integrationHttpMethod="POST",
                    uri="arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                    f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:sweeps-dev/invocations",
                )
        yield lam, apigw, api


def test_post_deploy_configures_the_api_and_wires_the_worker(aws: tuple[Any, Any, str]) -> None:
    lam, apigw, api = aws
    post_deploy.apply("dev", api, lam, apigw)

    config = lam.get_function_event_invoke_config(FunctionName="sweeps-dev-worker")
    assert config["MaximumRetryAttempts"] == merge.WORKER_RETRIES
    recorder = lam.get_function(FunctionName="sweeps-dev-failure_recorder")
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == recorder["Configuration"]["FunctionArn"]
    # The pacer's self-invocations never stopped by recursive-loop detection (as path A).
    looping = lam.get_function_recursion_config(FunctionName="sweeps-dev-dispatcher")
    assert looping["RecursiveLoop"] == "Allow"
    worker = lam.get_function_recursion_config(FunctionName="sweeps-dev-worker")
    assert worker["RecursiveLoop"] == "Terminate"  # Lambda's default, left alone

    resources = apigw.get_resources(restApiId=api, embed=["methods"])["items"]
    methods = {
        (r["path"], m): apigw.get_method(restApiId=api, resourceId=r["id"], httpMethod=m)
        for r in resources
        for m in r.get("resourceMethods") or {}
    }
    assert len(methods) == 4
    assert {m["authorizationType"] for m in methods.values()} == {"AWS_IAM"}
    post = methods[("/sweeps", "POST")]
    (validator,) = apigw.get_request_validators(restApiId=api)["items"]
    assert post["requestValidatorId"] == validator["id"]
    assert validator["validateRequestBody"] is True
    assert post["requestModels"] == {"application/json": merge.REQUEST_MODEL}
    models = {m["name"]: json.loads(m["schema"]) for m in apigw.get_models(restApiId=api)["items"]}
    request = models[merge.REQUEST_MODEL]
    assert request.pop("$schema") == "http://json-schema.org/draft-04/schema#"
    assert request == merge.request_models()[merge.REQUEST_MODEL]  # the coarse gateway check
    responses = {r["responseType"]: r for r in apigw.get_gateway_responses(restApiId=api)["items"]}
    assert set(merge.GATEWAY_ERRORS) <= set(responses)
    # The stage's own 429 answers the contract's body, from the one error-body source.
    throttled = responses["THROTTLED"]["responseTemplates"]["application/json"]
    assert (
        throttled == merge.gateway_responses()["THROTTLED"]["responseTemplates"]["application/json"]
    )
    filled = throttled.replace("$context.error.messageString", json.dumps("Too Many Requests"))
    assert json.loads(filled) == error_body("throttled", "Too Many Requests")


def test_post_deploy_is_idempotent(aws: tuple[Any, Any, str]) -> None:
    lam, apigw, api = aws
    post_deploy.apply("dev", api, lam, apigw)
    validator = post_deploy.body_validator(apigw, api)
    models = apigw.get_models(restApiId=api)["items"]
    post_deploy.apply("dev", api, lam, apigw)
    assert len(apigw.get_request_validators(restApiId=api)["items"]) == 1
    assert post_deploy.body_validator(apigw, api) == validator
    assert len(apigw.get_models(restApiId=api)["items"]) == len(models)
    assert post_deploy.validate_bodies(apigw, api, validator) == 0  # nothing left to change


@pytest.fixture
def one_open_method() -> Iterator[None]:
    UNSECURED.append(("/simulations", "GET"))
    yield
    UNSECURED.clear()


@pytest.mark.usefixtures("one_open_method")
def test_a_method_without_iam_fails_post_deploy_naming_it(aws: tuple[Any, Any, str]) -> None:
    lam, apigw, api = aws
    with pytest.raises(post_deploy.UnsecuredMethods, match=r"without AWS_IAM: GET /simulations;"):
        post_deploy.apply("dev", api, lam, apigw)
    resources = apigw.get_resources(restApiId=api)["items"]
    (simulations,) = [r for r in resources if r["path"] == "/simulations"]
    method = apigw.get_method(restApiId=api, resourceId=simulations["id"], httpMethod="GET")
    assert method["authorizationType"] == "NONE"  # only checked, never patched
    with pytest.raises(lam.exceptions.ResourceNotFoundException):  # nothing else applied
        lam.get_function_event_invoke_config(FunctionName="sweeps-dev-worker")


def test_the_workers_reserved_concurrency_follows_the_stage_setting(
    aws: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy import stage_settings

    lam, apigw, api = aws
    post_deploy.apply("dev", api, lam, apigw)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName="sweeps-dev-worker"
    )  # unset by default
    config = stage_settings.chalice_config()
    config["stages"]["dev"]["environment_variables"]["SWEEP_WORKER_RESERVED_CONCURRENCY"] = "50"
    monkeypatch.setattr(stage_settings, "chalice_config", lambda: config)
    post_deploy.apply("dev", api, lam, apigw)
    concurrency = lam.get_function_concurrency(FunctionName="sweeps-dev-worker")
    assert concurrency["ReservedConcurrentExecutions"] == 50
    template = merge.merge_template("dev")
    assert template["Resources"]["Worker"]["Properties"]["ReservedConcurrentExecutions"] == 50
    monkeypatch.undo()
    assert (
        "ReservedConcurrentExecutions"
        not in merge.merge_template("dev")["Resources"]["Worker"]["Properties"]
    )
