"""Path A: the merge template that turns ``chalice package`` output into one deployable stack.

Chalice cannot express request validation, IAM auth on routes, gateway responses, throttling,
the worker's OnFailure destination or the data plane (aws-facts); ``--merge-template`` deep-merges
this file into its template, so everything here is derived from the sources:

- the request model, a coarse check generated from ``chalicelib/model/request_schema.json``
  (``deploy.gateway_model``; the app does the full check);
- routes and their path parameters from ``app.routes`` (a ``parameters`` list replaces
  Chalice's, so path parameters are listed again);
- the data plane from ``deploy.infra``, names from ``deploy.naming``, IAM from ``deploy.policies``.

Function names are set explicitly (``chalice deploy``'s ``<app>-<stage>-<fn>``): the dispatcher
invokes itself, and naming itself through ``!Ref`` would be a circular dependency.

    python -m deploy.merge --stage dev > build/merge-dev.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from chalicelib.model.errors import error_body
from deploy import infra, policies, stage_settings, timeline
from deploy.cfn import Tag, dump_yaml
from deploy.gateway_model import gateway_model
from deploy.naming import FUNCTIONS, StageNames
from deploy.routes import routes

# Chalice's logical ids (aws-facts): the routes' function is APIHandler, others CamelCased.
LOGICAL_IDS = {
    "api_handler": "APIHandler",
    "dispatcher": "Dispatcher",
    "worker": "Worker",
    "failure_recorder": "FailureRecorder",
    "reconciler": "Reconciler",  # the @app.schedule function
    "compactor": "Compactor",
}
ROLE_IDS = {
    "api_handler": "ApiHandlerRole",
    "dispatcher": "DispatcherRole",
    "worker": "WorkerRole",
    "failure_recorder": "FailureRecorderRole",
    "reconciler": "ReconcilerRole",
    "compactor": "CompactorRole",
}
REQUEST_MODEL = "SweepRequest"
BODY_VALIDATOR = "body-only"
AUTH = "sigv4"
# Lambda's async retries for the worker: 3 attempts in all, as the worker's own accounting
# (SWEEP_WORKER_MAX_ATTEMPTS) assumes; an event older than 6 hours goes to the recorder. The
# reconciler's stall timeout is tied to them (deploy/timeline.py).
WORKER_RETRIES = timeline.WORKER_RETRIES
WORKER_MAX_EVENT_AGE = timeline.WORKER_MAX_EVENT_AGE
THROTTLE_RATE = 20  # requests per second, the stage's steady state
THROTTLE_BURST = 40
LOG_RETENTION_DAYS = 30
# The DefinitionBody is Swagger 2.0; naming its version is what stops SAM adding a stage.
OPENAPI_VERSION = "2.0"

# API Gateway's own errors in the contract's body: {"error", "message", "problems"}.
# $context.error.messageString is already a quoted JSON string.
GATEWAY_ERRORS = {
    "BAD_REQUEST_BODY": "invalid_request",
    "REQUEST_TOO_LARGE": "payload_too_large",
    "UNSUPPORTED_MEDIA_TYPE": "unsupported_media_type",
    "MISSING_AUTHENTICATION_TOKEN": "forbidden",
    "ACCESS_DENIED": "forbidden",
    "INVALID_SIGNATURE": "forbidden",
    "EXPIRED_TOKEN": "forbidden",
    "THROTTLED": "throttled",
    "QUOTA_EXCEEDED": "throttled",
    "DEFAULT_4XX": "client_error",
    "DEFAULT_5XX": "gateway_error",
}


def gateway_responses() -> dict[str, Any]:
    """The contract's body (``errors.error_body``) with the gateway's own message in it."""
    marker = json.dumps("MESSAGE")
    return {
        kind: {
            "responseTemplates": {
                "application/json": json.dumps(error_body(code, "MESSAGE")).replace(
                    marker, "$context.error.messageString"
                )
            }
        }
        for kind, code in GATEWAY_ERRORS.items()
    }


def request_models() -> dict[str, dict[str, Any]]:
    """The swagger ``definitions``: one model, the coarse gateway check (deploy.gateway_model)."""
    return {REQUEST_MODEL: gateway_model()}


def path_methods() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, methods in routes().items():
        for method, args in methods.items():
            op: dict[str, Any] = {"security": [{AUTH: []}]}
            params: list[dict[str, Any]] = [
                {"in": "path", "name": a, "required": True, "type": "string"} for a in args
            ]
            if path == "/sweeps" and method == "post":
                op["consumes"] = ["application/json"]
                op["x-amazon-apigateway-request-validator"] = BODY_VALIDATOR
                params.append(
                    {
                        "in": "body",
                        "name": REQUEST_MODEL,
                        "required": True,
                        "schema": {"$ref": f"#/definitions/{REQUEST_MODEL}"},
                    }
                )
            if params:
                op["parameters"] = params
            paths.setdefault(path, {})[method] = op
    return paths


def rest_api() -> dict[str, Any]:
    return {
        "Properties": {
            "DefinitionBody": {
                # moto's ImportRestApi requires a description (aws-facts).
                "info": {"description": "Serverless parameter sweeps"},
                "securityDefinitions": {
                    AUTH: {
                        "type": "apiKey",
                        "name": "Authorization",
                        "in": "header",
                        "x-amazon-apigateway-authtype": "awsSigv4",
                    }
                },
                "definitions": request_models(),
                "x-amazon-apigateway-request-validators": {
                    BODY_VALIDATOR: {
                        "validateRequestBody": True,
                        "validateRequestParameters": False,
                    }
                },
                "x-amazon-apigateway-gateway-responses": gateway_responses(),
                "paths": path_methods(),
            },
            # Without it SAM adds a second, unthrottled stage named "Stage" (aws/chalice#1655).
            "OpenApiVersion": OPENAPI_VERSION,
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": THROTTLE_RATE,
                    "ThrottlingBurstLimit": THROTTLE_BURST,
                }
            ],
        }
    }


# The dispatcher's recursive-loop setting (``function_overrides``; path B: ``post_deploy``).
RECURSIVE_LOOP = "Allow"


def function_overrides(names: StageNames) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for fn in FUNCTIONS:
        env: dict[str, Any] = {
            "SWEEP_BUCKET": Tag("Ref", "DataBucket"),
            "SWEEP_PREFIX": names.prefix,
            "SWEEP_GLUE_DATABASE": Tag("Ref", "AnalyticsDatabase"),
            "SWEEP_ATHENA_WORKGROUP": Tag("Ref", "AnalyticsWorkGroup"),
            "SWEEP_WORKER_FUNCTION": names.function("worker"),
            "SWEEP_DISPATCHER_FUNCTION": names.function("dispatcher"),
            "SWEEP_COMPACTOR_FUNCTION": names.function("compactor"),
        }
        if fn == "api_handler":  # no cycle here: the routes' function is invoked by nothing
            env["SWEEP_WORKER_FUNCTION"] = Tag("Ref", "Worker")
            env["SWEEP_DISPATCHER_FUNCTION"] = Tag("Ref", "Dispatcher")
            env["SWEEP_COMPACTOR_FUNCTION"] = Tag("Ref", "Compactor")
        resources[LOGICAL_IDS[fn]] = {
            "Properties": {
                "FunctionName": names.function(fn),
                "Environment": {"Variables": env},
            }
        }
        resources[ROLE_IDS[fn]] = {
            "Properties": {
                # A list replaces Chalice's wholesale (aws-facts): this is the role's only policy.
                "Policies": [
                    {
                        "PolicyName": f"{names.function(fn)}-policy",
                        "PolicyDocument": policies.cfn_policy(names.stage, fn),
                    }
                ]
            }
        }
        resources[f"{LOGICAL_IDS[fn]}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": names.log_group(fn),
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        }
    # The pacer's continuations are the dispatcher invoking itself, once per
    # SWEEP_PACING_MAX_WAIT_S for as long as a paced run lasts: past Lambda's recursive-loop
    # limit (16 invocations in one chain) within hours. Our signed Invoke forwards no X-Ray
    # trace header, which the detection follows, so it should not see the chain; whether it
    # can otherwise is undocumented, so the dispatcher says Allow whichever way AWS answers.
    resources[LOGICAL_IDS["dispatcher"]]["Properties"]["RecursiveLoop"] = RECURSIVE_LOOP
    reserved = stage_settings.settings(names.stage).worker_reserved_concurrency
    if reserved:
        resources[LOGICAL_IDS["worker"]]["Properties"]["ReservedConcurrentExecutions"] = reserved
    resources["WorkerEventInvokeConfig"] = {
        "Type": "AWS::Lambda::EventInvokeConfig",
        "Properties": {
            "FunctionName": Tag("Ref", "Worker"),
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": WORKER_RETRIES,
            "MaximumEventAgeInSeconds": WORKER_MAX_EVENT_AGE,
            "DestinationConfig": {
                "OnFailure": {"Destination": Tag("GetAtt", "FailureRecorder.Arn")}
            },
        },
    }
    return resources


def merge_template(stage: str) -> dict[str, Any]:
    names = StageNames(stage)
    return {
        "Resources": {
            **infra.data_resources(names),
            **function_overrides(names),
            "RestAPI": rest_api(),
        },
        "Outputs": infra.data_outputs(names),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.merge", description=__doc__)
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    sys.stdout.write(dump_yaml(merge_template(args.stage)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
