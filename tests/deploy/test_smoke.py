"""`make smoke`'s checklist logic: a failing check makes the exit non-zero, the rehearsal fails
when a line it must run is skipped or missing, and the "nothing written" check compares the
bucket's real keys (S3 through moto) before and after the refused request."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.storage import probe
from deploy import smoke
from deploy.naming import FUNCTIONS
from deploy.smoke import FAIL, OFFLINE, OK, Check
from scripts.rehearse import smoke_verdict
from tests.support import BUCKET


def all_required(status: smoke.Status = OK) -> list[Check]:
    return [Check(name, status) for name in smoke.required_offline()]


def test_a_failing_check_makes_the_exit_non_zero() -> None:
    checks = [*all_required(), Check("unsigned request refused (403)", OFFLINE)]
    assert smoke.exit_code(checks) == 0
    checks.append(Check("extra", FAIL, "answered 500"))
    assert smoke.exit_code(checks) == 1
    lines: list[str] = []
    assert smoke.report(checks, lines.append) == 1
    assert lines[-1] == "extra: FAIL: answered 500"
    assert lines[-2] == "unsigned request refused (403): not checkable offline"


def test_a_required_line_skipped_or_missing_fails_the_rehearsal() -> None:
    good = [[c.name, c.status, c.why] for c in all_required()]
    assert smoke_verdict(good, out=lambda _: None) == 0
    skipped = [list(line) for line in good]
    skipped[0][1] = OFFLINE
    assert smoke.exit_code([Check(n, s, w) for n, s, w in skipped]) == 0  # type: ignore[arg-type]
    printed: list[str] = []
    assert smoke_verdict(skipped, out=printed.append) == 1
    assert any("skipped, but the rehearsal must run it" in line for line in printed)
    assert smoke_verdict(good[1:], out=lambda _: None) == 1  # a line missing altogether


@dataclass
class FakeApi:
    """The API's answer to a POST, and what it writes while answering (a broken app that
    stores before validating)."""

    s3_client: Any
    status: int
    body: Any
    writes: list[str] = field(default_factory=list)
    offline: bool = True
    bucket: str = BUCKET
    prefix: str = "sweeps"
    database: str = "sweeps_dev"
    probes: dict[str, Any] = field(default_factory=dict)  # function → its answer, or an error

    @property
    def functions(self) -> tuple[str, ...]:
        return tuple(self.probes)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        assert event == probe.PROBE, event
        answer = self.probes[function]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def call(
        self, method: str, path: str, body: Any = None, signed: bool = True
    ) -> tuple[int, Any]:
        for key in self.writes:
            self.s3_client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        return self.status, self.body

    def settle(self) -> None:
        """Nothing runs behind this API."""

    def s3(self) -> Any:
        return self.s3_client

    def glue(self) -> Any:
        raise AssertionError("not used")

    def count_rows(self, sql: str) -> int:
        raise AssertionError("not used")

    def account_settings(self) -> dict[str, Any]:
        return {"AccountLimit": {"ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10}}


PROBLEMS = {
    "error": "invalid_request",
    "message": "m",
    "problems": [{"path": "/p", "message": "m"}],
}


def test_the_apps_400_passes_only_with_problems_and_nothing_written(s3_client: Any) -> None:
    assert smoke.check_app_400(FakeApi(s3_client, 400, PROBLEMS)).status == OK
    assert smoke.check_app_400(FakeApi(s3_client, 202, {"run_id": "r"})).status == FAIL
    no_problems = dict(PROBLEMS, problems=[])
    assert "without problems" in smoke.check_app_400(FakeApi(s3_client, 400, no_problems)).why
    writes = FakeApi(s3_client, 400, PROBLEMS, writes=["sweeps/runs/x/manifest.json"])
    assert "wrote 1 objects" in smoke.check_app_400(writes).why


def test_offline_only_the_gateways_answers_are_skipped(s3_client: Any) -> None:
    api = FakeApi(s3_client, 400, PROBLEMS)
    assert smoke.check_unsigned(api).status == OFFLINE
    assert smoke.check_gateway_400(api).status == OFFLINE
    assert smoke.check_athena(api, "r", {}).status == OFFLINE
    assert smoke.check_concurrency(api).status == OFFLINE
    api.offline = False
    assert smoke.check_unsigned(api).status == FAIL  # 400, not 403
    assert smoke.check_gateway_400(api).status == OK
    concurrency = smoke.check_concurrency(api)
    assert concurrency.line() == "account concurrency reported: ok (limit 10, unreserved 10)"


def test_the_sweep_check_wants_every_shard_represented() -> None:
    done = {"complete": True, "shards": {"succeeded": 1, "failed": 2, "pending": 0}}
    assert smoke.check_sweep({**done, "failed_shards": [1, 2]}, "").status == OK
    assert smoke.check_sweep({**done, "failed_shards": [1]}, "").status == FAIL
    assert smoke.check_sweep({}, "not complete after 3 polls").status == FAIL


def test_every_functions_probe_is_a_required_line() -> None:
    required = smoke.required_offline()
    assert all(smoke.probe_line(fn) in required for fn in FUNCTIONS)
    lines = [[c.name, c.status, c.why] for c in all_required()]
    without_worker = [line for line in lines if line[0] != smoke.probe_line("worker")]
    printed: list[str] = []
    assert smoke_verdict(without_worker, out=printed.append) == 1
    assert f"FAILED: {smoke.probe_line('worker')}: missing" in printed


def answered(**fields: Any) -> dict[str, Any]:
    return {"probe": probe.ACTION, "function": "sweeps-dev-worker", "key": "k", **fields}


def test_the_probe_line_passes_only_on_the_probes_404(s3_client: Any) -> None:
    denied = "head runs/_probe/k: 403: Forbidden"
    api = FakeApi(
        s3_client,
        200,
        {},
        probes={
            "api_handler": answered(status=404),
            "dispatcher": answered(error=denied),
            "worker": {"probe": "refused", "problems": ["unexpected field 'x'"]},
            "failure_recorder": RuntimeError("Unhandled: KeyError 'version'"),
            "reconciler": {"statusCode": 200, "body": "{}"},  # a deploy without the probe
            "compactor": answered(error=denied),
        },
    )
    checks = {fn: smoke.check_probe(api, fn) for fn in api.functions}
    assert checks["api_handler"].status == OK
    assert checks["api_handler"].line() == f"{smoke.probe_line('api_handler')}: ok"
    assert all(checks[fn].status == FAIL for fn in FUNCTIONS if fn != "api_handler")
    assert "s3:ListBucket" in checks["dispatcher"].why and denied in checks["dispatcher"].why
    assert "invoke failed: RuntimeError" in checks["failure_recorder"].why
    assert "refused the probe event" in checks["worker"].why
    assert "not the probe's answer" in checks["reconciler"].why


def _stack(cfn: Any, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_the_smoke_finds_the_stage_deployed_by_either_path() -> None:
    """Path B's names come from its data stack ``sweeps-<stage>-data``; path A has one stack,
    ``sweeps-<stage>``, with the same outputs and the API's ``EndpointURL`` (moto's
    CloudFormation holds the stacks)."""
    import boto3
    from moto import mock_aws

    names = {"DataBucketName": "b", "DataPrefix": "sweeps", "GlueDatabaseName": "sweeps_dev"}
    names["AthenaWorkGroupName"] = "sweeps-dev"
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        with pytest.raises(SystemExit, match="sweeps-dev-data or sweeps-dev"):
            smoke.stage_outputs(cfn, "dev")
        _stack(cfn, "sweeps-dev", names | {"EndpointURL": "https://api.example/api/"})
        assert smoke.stage_outputs(cfn, "dev")["EndpointURL"] == "https://api.example/api/"
        assert smoke.stage_outputs(cfn, "dev")["DataBucketName"] == "b"
        _stack(cfn, "sweeps-dev-data", names | {"DataBucketName": "from-path-b"})
        assert smoke.stage_outputs(cfn, "dev")["DataBucketName"] == "from-path-b"
