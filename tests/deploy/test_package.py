"""Path A for real: ``chalice package`` with the generated merge template, for each deployed
stage, then a look at what the stack will create. Needs PyPI (or its mirror), no credentials."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import PROJECT_ROOT
from chalicelib.pricing import function_sizes
from deploy import merge, package, policies, tools
from deploy.cfn import TEMPLATE_BODY_MAX_BYTES, TEMPLATE_URL_MAX_BYTES, Tag, load_yaml
from deploy.naming import FUNCTIONS, STAGES, StageNames

# API Gateway's REST integration timeout (its quotas page: 50 ms - 29 s).
API_GATEWAY_TIMEOUT_S = 29


@pytest.fixture(scope="module", params=STAGES)
def packaged(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], package.Packaged]:
    stage: str = request.param
    result = package.package(stage, tmp_path_factory.mktemp(stage) / "out")  # cfn-lint inside
    template: dict[str, Any] = load_yaml(result.template.read_text())
    return stage, template, result


def test_the_template_goes_to_cloudformation_through_s3(
    packaged: tuple[str, dict[str, Any], package.Packaged],
) -> None:
    """The packaged template is over the 51,200 bytes CloudFormation takes in a request, so the
    runbook's ``aws cloudformation deploy`` names an S3 bucket for it (aws-cli stops without
    one), and within what it takes from S3."""
    size = packaged[2].template.stat().st_size
    assert TEMPLATE_BODY_MAX_BYTES < size <= TEMPLATE_URL_MAX_BYTES
    runbook = (PROJECT_ROOT / "docs" / "runbook.md").read_text()
    deploy = runbook[runbook.index("aws cloudformation deploy") :].split("\n\n", 1)[0]
    assert '--s3-bucket "$ARTIFACTS"' in deploy


def test_every_route_requires_sigv4(packaged: tuple[str, dict[str, Any], Any]) -> None:
    _, template, _ = packaged
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["securityDefinitions"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    methods = [op for ops in body["paths"].values() for op in ops.values()]
    assert len(methods) == 6  # POST+GET /sweeps, GET status, cancel, redrive, simulations
    assert all(op["security"] == [{"sigv4": []}] for op in methods)


def test_path_parameters_survive_the_merge(packaged: tuple[str, dict[str, Any], Any]) -> None:
    _, template, _ = packaged
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for path, ops in paths.items():
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}


def test_the_body_is_validated_and_errors_keep_the_contract_shape(
    packaged: tuple[str, dict[str, Any], Any],
) -> None:
    _, template, _ = packaged
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    post = body["paths"]["/sweeps"]["post"]
    assert post["x-amazon-apigateway-request-validator"] == merge.BODY_VALIDATOR
    assert body["x-amazon-apigateway-request-validators"][merge.BODY_VALIDATOR] == {
        "validateRequestBody": True,
        "validateRequestParameters": False,
    }
    assert body["definitions"][merge.REQUEST_MODEL] == merge.request_models()[merge.REQUEST_MODEL]
    for response in body["x-amazon-apigateway-gateway-responses"].values():
        text = response["responseTemplates"]["application/json"]
        filled = text.replace("$context.error.messageString", '"Forbidden"')
        assert set(json.loads(filled)) == {"error", "message", "problems"}
    # The stage's throttling answers 429 in the contract's body, and so does every other error
    # the gateway makes itself (auth 403, the model's 400, its 5xx).
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert {"THROTTLED", "ACCESS_DENIED", "BAD_REQUEST_BODY", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(
        responses
    )
    throttled = responses["THROTTLED"]["responseTemplates"]["application/json"]
    assert json.loads(throttled.replace("$context.error.messageString", '"Too Many Requests"')) == {
        "error": "throttled",
        "message": "Too Many Requests",
        "problems": [],
    }


def test_the_worker_fails_over_to_the_recorder(packaged: tuple[str, dict[str, Any], Any]) -> None:
    _, template, _ = packaged
    config = template["Resources"]["WorkerEventInvokeConfig"]["Properties"]
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["FailureRecorder", "Arn"]
    }


def test_only_the_dispatcher_allows_recursive_invocation(
    packaged: tuple[str, dict[str, Any], Any],
) -> None:
    """Its pacing continues itself past Lambda's 16-hop recursive-loop limit within hours."""
    _, template, _ = packaged
    functions = {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert functions["Dispatcher"]["RecursiveLoop"] == "Allow"
    assert [n for n, p in functions.items() if "RecursiveLoop" in p] == ["Dispatcher"]


def test_functions_get_their_names_and_only_the_generated_policy(
    packaged: tuple[str, dict[str, Any], Any],
) -> None:
    stage, template, _ = packaged
    names = StageNames(stage)
    resources = template["Resources"]
    for fn in FUNCTIONS:
        function = resources[merge.LOGICAL_IDS[fn]]["Properties"]
        assert function["Runtime"] == "python3.12"
        assert function["FunctionName"] == names.function(fn)
        env = function["Environment"]["Variables"]
        assert env["SWEEP_STAGE"] == stage
        assert env["SWEEP_BUCKET"] == {"Ref": "DataBucket"}
        role = resources[merge.ROLE_IDS[fn]]["Properties"]
        (policy,) = role["Policies"]
        assert policy["PolicyDocument"] == _as_long_form(policies.cfn_policy(stage, fn))
    api_env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api_env["SWEEP_DISPATCHER_FUNCTION"] == {"Ref": "Dispatcher"}


def _as_long_form(node: Any) -> Any:
    """Chalice writes intrinsics in long form (``Fn::Sub``); ours are short-form tags."""
    if isinstance(node, Tag):
        key = "Ref" if node.name == "Ref" else f"Fn::{node.name}"
        return {key: _as_long_form(node.value)}
    if isinstance(node, dict):
        return {k: _as_long_form(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_long_form(v) for v in node]
    return node


def test_the_package_holds_pyarrow(packaged: tuple[str, dict[str, Any], Any]) -> None:
    _, _, result = packaged
    with zipfile.ZipFile(result.zip) as archive:
        names = set(archive.namelist())
    assert "app.py" in names
    assert any(n.startswith("pyarrow/") for n in names)
    assert result.unzipped_bytes < 250 * package.MB


def test_a_dependency_failure_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "chalice"
    fake.write_text(
        "#!/bin/sh\necho 'Could not install dependencies:\npyarrow==26.0.1' >&2\nexit 0\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(
        "deploy.package.tool", lambda n: str(fake) if n == "chalice" else tools.tool(n)
    )
    with pytest.raises(tools.PackageError, match="Could not install dependencies"):
        package.package("dev", tmp_path / "out")


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation's SAM transform makes of the packaged template (SAM's own library),
    with the local code paths that ``aws cloudformation package`` would upload given S3 URIs."""
    from samtranslator.translator.transform import transform

    template = json.loads(json.dumps(template))
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = "s3://artifacts/code.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    out: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return out


def test_the_stack_creates_exactly_one_throttled_stage(
    packaged: tuple[str, dict[str, Any], Any],
) -> None:
    """SAM adds a stage named "Stage" unless OpenApiVersion is set (aws/chalice#1655): a second
    stage would serve the API without the stage's throttling."""
    _, template, _ = packaged
    resources = sam_transform(template)["Resources"]
    stages = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    # A Deployment with a StageName creates that stage too: SAM's "Stage" comes that way.
    deployments = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Deployment"
    ]
    names = [s["StageName"] for s in stages] + [
        d["StageName"] for d in deployments if "StageName" in d
    ]
    assert names == ["api"]
    (settings,) = stages[0]["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == merge.THROTTLE_RATE


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_handler_gives_up_before_api_gateway(stage: str) -> None:
    """API Gateway ends a REST integration at 29 s: a handler allowed longer could still be
    working (a POST /sweeps accepted) when the client is told 504 and submits again."""
    assert function_sizes(stage)["api_handler"].timeout_s < API_GATEWAY_TIMEOUT_S
