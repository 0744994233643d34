"""Path B end to end (``make deploy STAGE=dev``): layer → data stack → stage config → ``chalice
deploy`` → post-deploy step.

1. build the trimmed layer (``deploy.layer``) and upload it to ``ARTIFACTS_BUCKET`` under a key
   named by its content, so a changed layer is a new layer version and an unchanged one is not;
2. create or update the stack ``sweeps-<stage>-data`` from ``infra/data-<stage>.yaml``, which
   publishes the layer from S3 (no 50 MB cap there);
3. write the stack's outputs into the stage's configuration of a project copy
   (``build/slim-<stage>/project``, never the committed ``.chalice/config.json``: the values
   carry the account id);
4. ``chalice deploy`` from that copy; 5. ``deploy.post_deploy``.

Every step is idempotent: run it again after any change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chalicelib.config import PROJECT_ROOT
from deploy import infra, layer, post_deploy, slim
from deploy.cfn import TEMPLATE_BODY_MAX_BYTES
from deploy.naming import StageNames
from deploy.tools import PackageError, tool

# Stack output → the stage's environment variable it fills (infra.data_outputs describes each).
OUTPUT_VARIABLES = {
    "DataBucketName": "SWEEP_BUCKET",
    "DataPrefix": "SWEEP_PREFIX",
    "GlueDatabaseName": "SWEEP_GLUE_DATABASE",
    "AthenaWorkGroupName": "SWEEP_ATHENA_WORKGROUP",
}


def stack_name(stage: str) -> str:
    return f"{StageNames(stage).base}-data"


def layer_key(archive: Path) -> str:
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    return f"layers/sweeps-pyarrow-{digest}.zip"


def upload_layer(s3: Any, bucket: str, archive: Path) -> str:
    key = layer_key(archive)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        s3.upload_file(str(archive), bucket, key)
    return key


def deploy_stack(cfn: Any, stage: str, layer_bucket: str, key: str) -> dict[str, str]:
    """Create or update the data stack; its outputs once it is stable."""
    name = stack_name(stage)
    body = infra.template_path(stage).read_text()
    if len(body.encode()) > TEMPLATE_BODY_MAX_BYTES:  # sent in the request, not from S3
        raise PackageError(
            f"{infra.template_path(stage)} is over CloudFormation's {TEMPLATE_BODY_MAX_BYTES:,}"
            " bytes for a template sent in the request"
        )
    params = [
        {"ParameterKey": "LayerBucket", "ParameterValue": layer_bucket},
        {"ParameterKey": "LayerKey", "ParameterValue": key},
    ]
    try:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        exists = True
    except cfn.exceptions.ClientError:
        exists = False
    if exists and status == "ROLLBACK_COMPLETE":
        # A first create that failed and was rolled back: such a stack can only be deleted
        # (CloudFormation refuses to update it), and its bucket went with the rollback
        # (RetainExceptOnCreate), so this run creates it afresh.
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(StackName=name)
        exists = False
    if not exists:
        cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params)
        cfn.get_waiter("stack_create_complete").wait(StackName=name)
    else:
        try:
            cfn.update_stack(StackName=name, TemplateBody=body, Parameters=params)
            cfn.get_waiter("stack_update_complete").wait(StackName=name)
        except cfn.exceptions.ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stage_config(config: dict[str, Any], stage: str, outputs: dict[str, str]) -> dict[str, Any]:
    """``config`` with the stack's outputs in the stage's variables and the layer attached."""
    updated: dict[str, Any] = json.loads(json.dumps(config))
    stage_block = updated["stages"][stage]
    env = stage_block.setdefault("environment_variables", {})
    missing = [key for key in OUTPUT_VARIABLES if key not in outputs]
    if missing:
        raise KeyError(f"stack {stack_name(stage)} has no outputs {missing}")
    for key, variable in OUTPUT_VARIABLES.items():
        env[variable] = outputs[key]
    if "LayerVersionArn" not in outputs:
        raise KeyError(f"stack {stack_name(stage)} has no LayerVersionArn (LayerBucket empty?)")
    stage_block["layers"] = [outputs["LayerVersionArn"]]
    return updated


def chalice_deploy(project: Path, stage: str) -> None:
    done = subprocess.run(
        [tool("chalice"), "--project-dir", str(project), "deploy", "--stage", stage],
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        raise PackageError(f"chalice deploy --stage {stage} failed:\n{done.stdout}{done.stderr}")


# Given the stack's outputs and the layer's key, the outputs to configure the stage with.
OutputsHook = Callable[[dict[str, str], str], dict[str, str]]


def run(
    stage: str, artifacts_bucket: str, out: Path, adjust_outputs: OutputsHook | None = None
) -> None:
    """The five steps against the account in the environment. ``adjust_outputs`` is for a
    rehearsal whose emulator leaves outputs out (``scripts.moto_gaps``); AWS needs none."""
    import boto3

    built = layer.build(out / "layer")
    print(built.summary())
    key = upload_layer(boto3.client("s3"), artifacts_bucket, built.zip)
    outputs = deploy_stack(boto3.client("cloudformation"), stage, artifacts_bucket, key)
    print(f"stack {stack_name(stage)}: {sorted(outputs)}")
    if adjust_outputs is not None:
        outputs = adjust_outputs(outputs, key)
    function = slim.package(stage, out / f"slim-{stage}")
    print(function.summary())
    config_path = function.project / ".chalice" / "config.json"
    config = stage_config(json.loads(config_path.read_text()), stage, outputs)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    chalice_deploy(function.project, stage)
    post_deploy.apply(
        stage,
        post_deploy.rest_api_id(function.project, stage),
        boto3.client("lambda"),
        boto3.client("apigateway"),
    )
    print(f"stage {stage} deployed (path B)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.path_b", description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--artifacts-bucket", default=os.environ.get("ARTIFACTS_BUCKET"))
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build")
    args = parser.parse_args(argv)
    if not args.artifacts_bucket:
        parser.error("set ARTIFACTS_BUCKET (a bucket you own for the layer zip)")
    try:
        run(args.stage, args.artifacts_bucket, args.out)
    except post_deploy.UnsecuredMethods as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
