"""Path B's stage configuration comes from the data stack's outputs, never from hand copying."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import PROJECT_ROOT
from deploy import infra, path_b
from deploy.cfn import TEMPLATE_BODY_MAX_BYTES
from deploy.naming import STAGES
from deploy.tools import PackageError

OUTPUTS = {
    "DataBucketName": "sweeps-dev-000000000000-eu-west-1",
    "DataPrefix": "sweeps",
    "GlueDatabaseName": "sweeps_dev",
    "AthenaWorkGroupName": "sweeps-dev",
    "LayerVersionArn": "arn:aws:lambda:eu-west-1:000000000000:layer:sweeps-dev-pyarrow:3",
}


def committed() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    return config


def test_outputs_fill_the_stage_and_attach_the_layer() -> None:
    config = path_b.stage_config(committed(), "dev", OUTPUTS)
    env = config["stages"]["dev"]["environment_variables"]
    assert env["SWEEP_BUCKET"] == OUTPUTS["DataBucketName"]
    assert env["SWEEP_GLUE_DATABASE"] == "sweeps_dev"
    assert env["SWEEP_ATHENA_WORKGROUP"] == "sweeps-dev"
    assert config["stages"]["dev"]["layers"] == [OUTPUTS["LayerVersionArn"]]
    assert config["stages"]["prod"] == committed()["stages"]["prod"]  # other stages untouched


@pytest.mark.parametrize("missing", ["DataBucketName", "LayerVersionArn"])
def test_a_missing_output_is_an_error(missing: str) -> None:
    outputs = {k: v for k, v in OUTPUTS.items() if k != missing}
    with pytest.raises(KeyError, match=missing):
        path_b.stage_config(committed(), "dev", outputs)


def test_every_stage_variable_is_an_output_of_the_data_stack() -> None:
    from deploy import infra
    from deploy.naming import StageNames

    outputs = infra.data_outputs(StageNames("dev"))
    for key, variable in path_b.OUTPUT_VARIABLES.items():
        assert outputs[key]["Description"] == variable


def test_the_committed_config_names_no_bucket() -> None:
    """Bucket names are global: a fixed one may belong to someone else. The deployed value
    comes from the stack (path A: !Ref DataBucket; path B: stage_config); the placeholder is
    not even a valid bucket name, so a stage deployed without it fails loudly."""
    for stage in ("dev", "prod"):
        env = committed()["stages"][stage]["environment_variables"]
        assert env["SWEEP_BUCKET"] == "SET_BY_DEPLOY"


def test_the_committed_config_uses_the_deployed_names() -> None:
    from deploy.naming import StageNames

    for stage in ("dev", "prod"):
        names = StageNames(stage)
        env = committed()["stages"][stage]["environment_variables"]
        assert env["SWEEP_WORKER_FUNCTION"] == names.function("worker")
        assert env["SWEEP_DISPATCHER_FUNCTION"] == names.function("dispatcher")
        assert env["SWEEP_GLUE_DATABASE"] == names.glue_database
        assert env["SWEEP_ATHENA_WORKGROUP"] == names.workgroup
        assert env["SWEEP_PREFIX"] == names.prefix


@pytest.mark.parametrize("stage", STAGES)
def test_the_data_template_fits_a_request(stage: str) -> None:
    """Path B sends the data stack's template in the request (TemplateBody), where
    CloudFormation takes at most 51,200 bytes: a template grown past it (each simulation adds
    named queries) fails here, offline, and ``deploy_stack`` refuses it before any call."""
    assert len(infra.template_path(stage).read_bytes()) <= TEMPLATE_BODY_MAX_BYTES


def test_an_oversized_data_template_is_refused_before_any_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    big = tmp_path / "data.yaml"
    big.write_text("#" * (TEMPLATE_BODY_MAX_BYTES + 1))
    monkeypatch.setattr(infra, "template_path", lambda stage: big)

    class NoCalls:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"CloudFormation was called: {name}")

    with pytest.raises(PackageError, match="51,200"):
        path_b.deploy_stack(NoCalls(), "dev", "artifacts", "layers/x.zip")


class RecordingCloudFormation:
    """A stand-in for CloudFormation answering for a data stack in a given state, recording the
    calls made: the state a failed first create leaves is AWS's, not reproduced here."""

    class exceptions:
        ClientError = RuntimeError

    def __init__(self, status: str | None) -> None:
        self.status = status
        self.calls: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.calls.append("describe_stacks")
        if self.status is None:
            raise RuntimeError(f"Stack with id {StackName} does not exist")
        return {"Stacks": [{"StackStatus": self.status, "Outputs": []}]}

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> None:
            self.calls.append(name)
            if name == "delete_stack":
                self.status = None
            if name == "create_stack":
                self.status = "CREATE_COMPLETE"

        if name == "get_waiter":
            return lambda *_: type("Waiter", (), {"wait": lambda *_, **__: None})()
        return call


@pytest.mark.parametrize(
    ("status", "calls"),
    [
        (None, ["describe_stacks", "create_stack"]),
        ("ROLLBACK_COMPLETE", ["describe_stacks", "delete_stack", "create_stack"]),
        ("UPDATE_COMPLETE", ["describe_stacks", "update_stack"]),
    ],
)
def test_a_rolled_back_first_create_is_deleted_then_created_again(
    status: str | None, calls: list[str]
) -> None:
    """``make deploy`` is run again after any failure: a data stack whose first create rolled
    back (ROLLBACK_COMPLETE) only accepts deletion, so it is deleted and created afresh."""
    cfn = RecordingCloudFormation(status)
    path_b.deploy_stack(cfn, "dev", "artifacts", "layers/x.zip")
    assert cfn.calls == [*calls, "describe_stacks"]  # the last: the outputs
