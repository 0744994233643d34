"""Path B's finishing step: what ``chalice deploy`` cannot configure, applied with boto3.

Chalice rewrites the REST API on every deploy and has no setting for a function's async
configuration (aws-facts), so after each ``chalice deploy`` this applies, idempotently:

- the worker's async config: retries, maximum event age, OnFailure → the failure recorder;
- on the API: the request models (from the request schema, as path A's) and the body validator
  on ``POST /sweeps``, IAM auth on every method, the gateway responses in the contract's error
  shape, stage throttling, and a deployment so the stage serves all of it.

Running it twice changes nothing the second time (a test checks).

    python -m deploy.post_deploy --stage dev --rest-api-id <id>
    python -m deploy.post_deploy --stage dev --project build/slim-dev/project   # id from Chalice
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deploy import merge
from deploy.naming import StageNames

API_STAGE = "api"  # .chalice/config.json api_gateway_stage
MODEL_URL = "https://apigateway.amazonaws.com/restapis/{api}/models/{name}"


def rest_api_id(project: Path, stage: str) -> str:
    """The API's id as ``chalice deploy`` recorded it."""
    deployed = json.loads((project / ".chalice" / "deployed" / f"{stage}.json").read_text())
    for resource in deployed.get("resources", []):
        if resource.get("resource_type") == "rest_api":
            return str(resource["rest_api_id"])
    raise LookupError(f"no rest_api in .chalice/deployed/{stage}.json")


def configure_worker(lambda_client: Any, names: StageNames) -> None:
    recorder = lambda_client.get_function(FunctionName=names.function("failure_recorder"))
    lambda_client.put_function_event_invoke_config(
        FunctionName=names.function("worker"),
        MaximumRetryAttempts=merge.WORKER_RETRIES,
        MaximumEventAgeInSeconds=merge.WORKER_MAX_EVENT_AGE,
        DestinationConfig={"OnFailure": {"Destination": recorder["Configuration"]["FunctionArn"]}},
    )


def _model_schema(api: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Swagger-style references become API Gateway model URLs (how models reference models)."""
    text = json.dumps(schema)
    for name in merge.request_models():
        text = text.replace(
            f'"#/definitions/{name}"', json.dumps(MODEL_URL.format(api=api, name=name))
        )
    schema_out: dict[str, Any] = json.loads(text)
    schema_out["$schema"] = "http://json-schema.org/draft-04/schema#"
    return schema_out


def put_models(apigw: Any, api: str) -> None:
    existing = {m["name"] for m in apigw.get_models(restApiId=api, limit=500).get("items", [])}
    # In request_models' order, referenced models first: API Gateway checks references when a
    # model is created.
    for name in merge.request_models():
        schema = json.dumps(_model_schema(api, merge.request_models()[name]), sort_keys=True)
        if name in existing:
            apigw.update_model(
                restApiId=api,
                modelName=name,
                patchOperations=[{"op": "replace", "path": "/schema", "value": schema}],
            )
        else:
            apigw.create_model(
                restApiId=api, name=name, contentType="application/json", schema=schema
            )


def body_validator(apigw: Any, api: str) -> str:
    for validator in apigw.get_request_validators(restApiId=api).get("items", []):
        if validator.get("name") == merge.BODY_VALIDATOR:
            return str(validator["id"])
    created = apigw.create_request_validator(
        restApiId=api,
        name=merge.BODY_VALIDATOR,
        validateRequestBody=True,
        validateRequestParameters=False,
    )
    return str(created["id"])


def secure_methods(apigw: Any, api: str, validator: str) -> int:
    """IAM auth on every method; the validator and model on ``POST /sweeps``."""
    changed = 0
    resources = apigw.get_resources(restApiId=api, limit=500, embed=["methods"])["items"]
    for resource in resources:
        for method in resource.get("resourceMethods") or {}:
            if method == "OPTIONS":
                continue
            current = apigw.get_method(restApiId=api, resourceId=resource["id"], httpMethod=method)
            ops = []
            if current.get("authorizationType") != "AWS_IAM":
                ops.append({"op": "replace", "path": "/authorizationType", "value": "AWS_IAM"})
            if resource["path"] == "/sweeps" and method == "POST":
                if current.get("requestValidatorId") != validator:
                    ops.append({"op": "replace", "path": "/requestValidatorId", "value": validator})
                models = current.get("requestModels") or {}
                if models.get("application/json") != merge.REQUEST_MODEL:
                    ops.append(
                        {
                            "op": "add",
                            "path": "/requestModels/application~1json",
                            "value": merge.REQUEST_MODEL,
                        }
                    )
            if ops:
                apigw.update_method(
                    restApiId=api,
                    resourceId=resource["id"],
                    httpMethod=method,
                    patchOperations=ops,
                )
                changed += 1
    return changed


def put_gateway_responses(apigw: Any, api: str) -> None:
    for kind, response in merge.gateway_responses().items():
        apigw.put_gateway_response(
            restApiId=api, responseType=kind, responseTemplates=response["responseTemplates"]
        )


def deploy_stage(apigw: Any, api: str) -> None:
    apigw.create_deployment(restApiId=api, stageName=API_STAGE)
    apigw.update_stage(
        restApiId=api,
        stageName=API_STAGE,
        patchOperations=[
            {
                "op": "replace",
                "path": "/*/*/throttling/rateLimit",
                "value": str(merge.THROTTLE_RATE),
            },
            {
                "op": "replace",
                "path": "/*/*/throttling/burstLimit",
                "value": str(merge.THROTTLE_BURST),
            },
        ],
    )


def apply(stage: str, api: str, lambda_client: Any, apigw: Any) -> None:
    names = StageNames(stage)
    configure_worker(lambda_client, names)
    put_models(apigw, api)
    validator = body_validator(apigw, api)
    secure_methods(apigw, api, validator)
    put_gateway_responses(apigw, api)
    deploy_stage(apigw, api)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.post_deploy", description=__doc__)
    parser.add_argument("--stage", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--rest-api-id")
    where.add_argument("--project", type=Path, help="the folder chalice deploy ran in")
    args = parser.parse_args(argv)
    import boto3

    api = args.rest_api_id or rest_api_id(args.project, args.stage)
    apply(args.stage, api, boto3.client("lambda"), boto3.client("apigateway"))
    print(f"post-deploy applied to {args.stage} (REST API {api})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
