"""Path B's finishing step: what ``chalice deploy`` cannot configure, applied with boto3.

Chalice rewrites the REST API on every deploy and has no setting for a function's async
configuration (aws-facts), so after each ``chalice deploy`` this applies, idempotently:

- the worker's async config: retries, maximum event age, OnFailure → the failure recorder;
  its reserved concurrency (``SWEEP_WORKER_RESERVED_CONCURRENCY``; removed when unset);
- the dispatcher's recursive-loop setting (``Allow``: its pacing continues itself);
- on the API: the request model (the coarse gateway check, as path A's) and the body validator
  on ``POST /sweeps``, the gateway responses in the contract's error shape, stage throttling,
  and a deployment so the stage serves all of it.

IAM auth is not applied here: it is declared on the routes (``IAMAuthorizer`` in app.py), so
Chalice's own deploy carries it from the first second. This step only checks it, first, and
fails naming every method without AWS_IAM.

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

from deploy import merge, stage_settings
from deploy.naming import StageNames

API_STAGE = "api"  # .chalice/config.json api_gateway_stage
DRAFT_4 = "http://json-schema.org/draft-04/schema#"


def rest_api_id(project: Path, stage: str) -> str:
    """The API's id as ``chalice deploy`` recorded it."""
    deployed = json.loads((project / ".chalice" / "deployed" / f"{stage}.json").read_text())
    for resource in deployed.get("resources", []):
        if resource.get("resource_type") == "rest_api":
            return str(resource["rest_api_id"])
    raise LookupError(f"no rest_api in .chalice/deployed/{stage}.json")


def configure_worker(lambda_client: Any, names: StageNames) -> None:
    reserved = stage_settings.settings(names.stage).worker_reserved_concurrency
    if reserved:
        lambda_client.put_function_concurrency(
            FunctionName=names.function("worker"), ReservedConcurrentExecutions=reserved
        )
    else:  # unset in the config: no reservation left from an earlier deploy either
        lambda_client.delete_function_concurrency(FunctionName=names.function("worker"))
    recorder = lambda_client.get_function(FunctionName=names.function("failure_recorder"))
    lambda_client.put_function_event_invoke_config(
        FunctionName=names.function("worker"),
        MaximumRetryAttempts=merge.WORKER_RETRIES,
        MaximumEventAgeInSeconds=merge.WORKER_MAX_EVENT_AGE,
        DestinationConfig={"OnFailure": {"Destination": recorder["Configuration"]["FunctionArn"]}},
    )


def configure_dispatcher(lambda_client: Any, names: StageNames) -> None:
    """Lambda's recursive-loop detection left off for the dispatcher, as path A's template
    sets it (``merge.RECURSIVE_LOOP``: why)."""
    lambda_client.put_function_recursion_config(
        FunctionName=names.function("dispatcher"), RecursiveLoop=merge.RECURSIVE_LOOP
    )


def put_models(apigw: Any, api: str) -> None:
    for name, model in merge.request_models().items():
        schema = json.dumps({"$schema": DRAFT_4, **model}, sort_keys=True)
        if name in {m["name"] for m in apigw.get_models(restApiId=api, limit=500)["items"]}:
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


class UnsecuredMethods(Exception):
    """Methods the deployed API serves without SigV4: the deploy must not be called done."""


def _methods(apigw: Any, api: str) -> list[tuple[dict[str, Any], str]]:
    resources = apigw.get_resources(restApiId=api, limit=500, embed=["methods"])["items"]
    return [
        (resource, method)
        for resource in resources
        for method in resource.get("resourceMethods") or {}
        if method != "OPTIONS"
    ]


def check_auth(apigw: Any, api: str) -> None:
    """Every method must already carry AWS_IAM, from the routes' ``IAMAuthorizer`` in Chalice's
    own swagger. This only looks: patching auth in here would mean the stage served without it
    from ``chalice deploy`` until now (docs/security.md)."""
    open_methods = [
        f"{method} {resource['path']}"
        for resource, method in _methods(apigw, api)
        if apigw.get_method(restApiId=api, resourceId=resource["id"], httpMethod=method).get(
            "authorizationType"
        )
        != "AWS_IAM"
    ]
    if open_methods:
        raise UnsecuredMethods(
            f"REST API {api} serves without AWS_IAM: {', '.join(sorted(open_methods))}; "
            "declare authorizer=IAM on these routes in app.py and deploy again"
        )


def validate_bodies(apigw: Any, api: str, validator: str) -> int:
    """The validator and model on ``POST /sweeps``; returns how many methods changed."""
    changed = 0
    for resource, method in _methods(apigw, api):
        if (resource["path"], method) != ("/sweeps", "POST"):
            continue
        current = apigw.get_method(restApiId=api, resourceId=resource["id"], httpMethod=method)
        ops = []
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
                restApiId=api, resourceId=resource["id"], httpMethod=method, patchOperations=ops
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
    check_auth(apigw, api)
    names = StageNames(stage)
    configure_worker(lambda_client, names)
    configure_dispatcher(lambda_client, names)
    put_models(apigw, api)
    validator = body_validator(apigw, api)
    validate_bodies(apigw, api, validator)
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
    try:
        apply(args.stage, api, boto3.client("lambda"), boto3.client("apigateway"))
    except UnsecuredMethods as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"post-deploy applied to {args.stage} (REST API {api})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
