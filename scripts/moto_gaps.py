"""Workarounds for moto 5.2.5's gaps that the deploy rehearsal and tests run into.

Each is the smallest stand-in for one missing or stricter-than-AWS call, applied to moto's own
objects; nothing here changes what our code sends.

- ImportRestApi accepts OpenAPI 3 only and requires ``info.description``: Chalice sends
  Swagger 2.0 without one (aws-facts) — the API is built from its paths with moto's calls.
- PutRestApi (``chalice deploy`` of an existing API, mode=overwrite) has the same gap.
- Both stand-ins map a method's ``security`` to its authorization type as API Gateway does
  (``awsSigv4`` → AWS_IAM), so the post-deploy check sees what AWS would.
- UpdateMethod and UpdateModel are not implemented (NotImplementedError → HTTP 500) — the
  patch paths ``deploy.post_deploy`` sends are applied directly.
- CloudFormation skips ``AWS::Glue::*`` and ``AWS::Athena::*`` (so their outputs), and gives
  no layer output after a no-op update — ``path_b_outputs`` fills them for path B's run; the
  deploy path itself has no moto branch.
- PutFunctionRecursionConfig / GetFunctionRecursionConfig (API 2024-08-31) have no route
  (the server answers 404): ``recursion_config`` keeps the setting on moto's function.
- PutObject's ``If-None-Match: *`` is checked, then the object stored, with nothing between
  them held: two threads creating one key can both succeed (and a put that replaces a key
  while another reads its ETag raises). S3 makes a conditional write atomic (one wins, the
  others get 412 or 409) — ``atomic_object_writes`` holds a lock over each PutObject.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

from deploy.naming import StageNames


def import_swagger2(backend: Any, doc: dict[str, Any]) -> Any:
    """moto 5.2.5's ImportRestApi takes OpenAPI 3 only and requires ``info.description``;
    Chalice sends Swagger 2.0 without one (aws-facts). Build the same API from its paths with
    moto's own calls: resources, methods, proxy integrations."""
    info = doc.get("info", {})
    api = backend.create_rest_api(name=info.get("title", "api"), description="")
    return build_swagger2_paths(backend, api, doc)


def authorization_type(doc: dict[str, Any], op: dict[str, Any]) -> str:
    """As API Gateway imports it: a method whose ``security`` names a scheme of authtype
    ``awsSigv4`` (what Chalice's ``IAMAuthorizer`` writes) is AWS_IAM; none is NONE."""
    schemes = doc.get("securityDefinitions", {})
    for requirement in op.get("security") or []:
        for name in requirement:
            if schemes.get(name, {}).get("x-amazon-apigateway-authtype") == "awsSigv4":
                return "AWS_IAM"
    return "NONE"


def build_swagger2_paths(backend: Any, api: Any, doc: dict[str, Any]) -> Any:
    ids = {"/": api.default.id}
    for path in sorted(doc.get("paths", {}), key=lambda p: p.count("/")):
        parts = [p for p in path.split("/") if p]
        for depth in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:depth])
            if sub not in ids:
                parent = "/" + "/".join(parts[: depth - 1]) if depth > 1 else "/"
                ids[sub] = backend.create_resource(api.id, ids[parent], parts[depth - 1]).id
        for method, op in doc["paths"][path].items():
            backend.put_method(
                api.id, ids[path], method.upper(), authorization_type=authorization_type(doc, op)
            )
            integration = op.get("x-amazon-apigateway-integration")
            if integration:
                backend.put_integration(
                    api.id,
                    ids[path],
                    method.upper(),
                    integration_type=integration["type"].upper(),
                    uri=integration["uri"],
                    integration_method=integration["httpMethod"],
                )
    return api


def apply_method_patch(method: Any, operations: list[dict[str, Any]]) -> None:
    for op in operations:
        path, value = op["path"], op.get("value")
        if path == "/requestValidatorId":
            method.request_validator_id = value
        elif path.startswith("/requestModels/"):
            content_type = path.removeprefix("/requestModels/").replace("~1", "/")
            method.request_models = {**(method.request_models or {}), content_type: value}
        else:
            raise NotImplementedError(f"moto_gaps: UpdateMethod path {path}")


def apply_model_patch(model: Any, operations: list[dict[str, Any]]) -> None:
    for op in operations:
        if op["path"] != "/schema":
            raise NotImplementedError(f"moto_gaps: UpdateModel path {op['path']}")
        model.schema = op["value"]


def install_server_patches() -> None:
    """Patch moto's API Gateway backend and responses, and make its S3 safe for threads (for a
    server in this process)."""
    thread_safe_s3()
    from moto.apigateway.models import APIGatewayBackend
    from moto.apigateway.responses import APIGatewayResponse

    original = APIGatewayBackend.import_rest_api

    def import_rest_api(self: Any, api_doc: dict[str, Any], fail_on_warnings: bool) -> Any:
        if not str(api_doc.get("swagger", "")).startswith("2"):
            return original(self, api_doc, fail_on_warnings)
        return import_swagger2(self, api_doc)

    def update_method(self: Any) -> str:
        parts = self.path.split("/")
        method = self.backend.get_method(parts[2], parts[4], parts[6])
        apply_method_patch(method, json.loads(self.body)["patchOperations"])
        return json.dumps(method.to_json())

    def update_model(self: Any) -> str:
        parts = self.path.split("/")
        model = self.backend.get_model(parts[2], parts[4])
        apply_model_patch(model, json.loads(self.body)["patchOperations"])
        return json.dumps(model.to_json())

    original_put = APIGatewayBackend.put_rest_api

    def put_rest_api(
        self: Any,
        function_id: str,
        api_doc: dict[str, Any],
        fail_on_warnings: bool,
        mode: str = "merge",
    ) -> Any:
        """PutRestApi has the same Swagger 2 gap (``chalice deploy`` of an existing API uses it
        with mode=overwrite): rebuild the API's resources from the document, as AWS would,
        which also drops whatever the post-deploy step had set."""
        if not str(api_doc.get("swagger", "")).startswith("2") or mode != "overwrite":
            return original_put(self, function_id, api_doc, fail_on_warnings, mode)
        api = self.get_rest_api(function_id)
        api.resources = {}
        api.default = api.add_child("/")
        return build_swagger2_paths(self, api, api_doc)

    recursion_config()
    APIGatewayBackend.import_rest_api = import_rest_api  # type: ignore[method-assign]
    APIGatewayBackend.put_rest_api = put_rest_api  # type: ignore[method-assign]
    APIGatewayResponse.update_method = update_method  # type: ignore[attr-defined]
    APIGatewayResponse.update_model = update_model  # type: ignore[attr-defined]


def recursion_config() -> None:
    """Lambda's recursion config for moto 5.2.5, which has neither the route nor the calls: a
    function's ``RecursiveLoop`` kept on moto's function object, ``Terminate`` unless set, as
    Lambda documents it; a function that does not exist is moto's own 404."""
    from urllib.parse import unquote

    from moto.awslambda import urls
    from moto.awslambda.responses import LambdaResponse

    route = r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[\w_:%-]+)/recursion-config/?$"
    urls.url_paths[route] = LambdaResponse.dispatch

    def function(self: Any) -> Any:
        return self.backend.get_function(unquote(self.path.rstrip("/").split("/")[-2]))

    def put_function_recursion_config(self: Any) -> str:
        value = json.loads(self.body)["RecursiveLoop"]
        if value not in ("Allow", "Terminate"):
            raise ValueError(f"RecursiveLoop {value!r}")
        function(self).recursive_loop = value
        return json.dumps({"RecursiveLoop": value})

    def get_function_recursion_config(self: Any) -> str:
        value = getattr(function(self), "recursive_loop", "Terminate")
        return json.dumps({"RecursiveLoop": value})

    LambdaResponse.put_function_recursion_config = put_function_recursion_config  # type: ignore[attr-defined]
    LambdaResponse.get_function_recursion_config = get_function_recursion_config  # type: ignore[attr-defined]


def thread_safe_s3() -> None:
    """moto's S3 as safe for threads as S3 is: atomic conditional writes, one module reload at
    a time (the tests' session and the rehearsal's server both need it)."""
    atomic_object_writes()
    serial_url_reloads()


def atomic_object_writes() -> None:
    """One PutObject at a time in moto's S3 (in this process: ``mock_aws`` or a threaded
    server), as S3 decides conditional writes atomically. moto 5.2.5 reads whether the key
    exists, then stores, unlocked: with threads switching often (``sys.setswitchinterval``
    1 us), 21 of 100 keys each created by 8 threads at once had more than one winner, which is
    how two reconciler passes once both closed a shard as LOST. Idempotent."""
    from moto.s3.responses import S3Response

    if getattr(S3Response.put_object, "_atomic", False):
        return
    original = S3Response.put_object
    lock = threading.Lock()

    @functools.wraps(original)
    def put_object(self: Any) -> Any:
        with lock:
            return original(self)

    put_object._atomic = True  # type: ignore[attr-defined]
    S3Response.put_object = put_object  # type: ignore[method-assign]


def serial_url_reloads() -> None:
    """One reload at a time of ``moto.s3.urls``, which moto 5.2.5's S3 backend reloads on every
    request (``S3Backend._url_module``). ``importlib.reload`` checks that the module is in
    ``sys.modules`` before taking the import lock, and a reload in progress takes it out and puts
    it back (``_bootstrap._exec``): a request in another thread in between failed with
    "module moto.s3.urls not in sys.modules" (a fresh-clone CI, in
    ``test_one_of_many_racing_creates_wins``'s eight threads). S3 has no such step. Idempotent."""
    from moto.s3.models import S3Backend

    current = S3Backend.__dict__["_url_module"]
    if getattr(current.fget, "_serial", False):
        return
    lock = threading.Lock()

    @functools.wraps(current.fget)
    def url_module(self: Any) -> Any:
        with lock:
            return current.fget(self)

    url_module._serial = True  # type: ignore[attr-defined]
    S3Backend._url_module = property(url_module)  # type: ignore[method-assign, assignment]


# ---------------------------------------------------------------------- path B's stack outputs


def fill_moto_gaps(outputs: dict[str, str], stage: str, glue: Any) -> dict[str, str]:
    """moto's CloudFormation skips AWS::Glue::* and AWS::Athena::* resources
    (and so their outputs). Create the Glue catalog directly and name the rest as the template
    would; against AWS a missing output stays an error."""
    from chalicelib.analytics.glue_schema import TABLES, table_input

    names = StageNames(stage)
    filled = dict(outputs)
    if "GlueDatabaseName" not in filled:
        try:
            glue.create_database(DatabaseInput={"Name": names.glue_database})
            for table in TABLES:
                location = f"s3://{filled['DataBucketName']}/{names.prefix}/{table}/"
                glue.create_table(
                    DatabaseName=names.glue_database, TableInput=table_input(table, location)
                )
        except glue.exceptions.AlreadyExistsException:
            pass
        filled["GlueDatabaseName"] = names.glue_database
    filled.setdefault("AthenaWorkGroupName", names.workgroup)
    return filled


def moto_layer_arn(lambda_client: Any, stage: str, bucket: str, key: str) -> str:
    """moto drops the layer output when a stack update changes nothing."""
    name = f"{StageNames(stage).base}-pyarrow"
    versions = lambda_client.list_layer_versions(LayerName=name).get("LayerVersions", [])
    if versions:
        return str(versions[0]["LayerVersionArn"])
    published = lambda_client.publish_layer_version(
        LayerName=name, Content={"S3Bucket": bucket, "S3Key": key}
    )
    return str(published["LayerVersionArn"])


def path_b_outputs(
    stage: str, artifacts_bucket: str
) -> Callable[[dict[str, str], str], dict[str, str]]:
    """``deploy.path_b.run``'s ``adjust_outputs`` on moto: the outputs its CloudFormation
    leaves out, filled as the template would give them."""
    import boto3

    def adjust(outputs: dict[str, str], key: str) -> dict[str, str]:
        filled = fill_moto_gaps(outputs, stage, boto3.client("glue"))
        # No output after a no-op update, and !Ref gives the layer's name, not its ARN.
        if not filled.get("LayerVersionArn", "").startswith("arn:"):
            print(f"moto gap: LayerVersionArn output is {filled.get('LayerVersionArn')!r}")
            filled["LayerVersionArn"] = moto_layer_arn(
                boto3.client("lambda"), stage, artifacts_bucket, key
            )
        return filled

    return adjust
