"""Path B's post-deploy step against moto: it secures an API shaped like Chalice's and wires the
worker's OnFailure destination, and a second run changes nothing."""

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


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any, str]]:
    with mock_aws():
        names = StageNames("dev")
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(
            RoleName="r",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lam = boto3.client("lambda", region_name="us-east-1")
        for fn in ("worker", "failure_recorder"):
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
                    authorizationType="NONE",
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


def test_post_deploy_secures_the_api_and_wires_the_worker(aws: tuple[Any, Any, str]) -> None:
    lam, apigw, api = aws
    post_deploy.apply("dev", api, lam, apigw)

    config = lam.get_function_event_invoke_config(FunctionName="sweeps-dev-worker")
    assert config["MaximumRetryAttempts"] == merge.WORKER_RETRIES
    recorder = lam.get_function(FunctionName="sweeps-dev-failure_recorder")
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == recorder["Configuration"]["FunctionArn"]

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
    axis_ref = request["properties"]["parameters"]["patternProperties"]
    assert next(iter(axis_ref.values()))["$ref"].endswith(f"/restapis/{api}/models/SweepAxis")
    responses = {r["responseType"] for r in apigw.get_gateway_responses(restApiId=api)["items"]}
    assert set(merge.GATEWAY_ERRORS) <= responses


def test_post_deploy_is_idempotent(aws: tuple[Any, Any, str]) -> None:
    lam, apigw, api = aws
    post_deploy.apply("dev", api, lam, apigw)
    validator = post_deploy.body_validator(apigw, api)
    models = apigw.get_models(restApiId=api)["items"]
    post_deploy.apply("dev", api, lam, apigw)
    assert len(apigw.get_request_validators(restApiId=api)["items"]) == 1
    assert post_deploy.body_validator(apigw, api) == validator
    assert len(apigw.get_models(restApiId=api)["items"]) == len(models)
    assert post_deploy.secure_methods(apigw, api, validator) == 0  # nothing left to change
