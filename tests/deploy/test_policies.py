"""Per-stage least privilege: one source, parliament-clean, no wildcard resources, and no dev
policy that reaches a prod resource."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from deploy import policies
from deploy.generated import sync
from deploy.naming import FUNCTIONS, STAGES, StageNames
from tests.support.policies import ACCOUNT, REGION, iam_match, render


def every_policy() -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for stage in STAGES:
        for fn in FUNCTIONS:
            out.append(("file", stage, fn, policies.file_policy(stage, fn)))
            out.append(("cfn", stage, fn, render(policies.cfn_policy(stage, fn))))
    return out


def scoped(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements on named resources: all but those of actions IAM scopes to no resource
    (``policies.ACCOUNT_WIDE_ACTIONS``, granted on "*" and checked on their own below)."""
    return [s for s in policy["Statement"] if not set(s["Action"]) <= policies.ACCOUNT_WIDE_ACTIONS]


def resources(policy: dict[str, Any]) -> list[str]:
    return [r for s in scoped(policy) for r in s["Resource"]]


def stage_resources(stage: str) -> list[str]:
    """Concrete ARNs of one stage's resources, as they exist once deployed."""
    names = StageNames(stage)
    bucket = f"{names.base}-{ACCOUNT}-{REGION}"
    arns = [f"arn:aws:s3:::{bucket}"]
    arns += [
        f"arn:aws:s3:::{bucket}/sweeps/{f}/x"
        for f in ("runs", "outcomes", "results", "reuse", "usage", "compacted")
    ]
    arns += [
        f"arn:aws:s3:::{bucket}/sweeps/runs/20261126T100000000Z-0123456789ab/{f}/x"
        for f in ("compaction",)
    ]
    arns.append(f"arn:aws:s3:::{bucket}/sweeps/runs/_index/open/x")  # the open-runs index
    for fn in FUNCTIONS:
        arns.append(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{names.function(fn)}")
        log = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{names.log_group(fn)}"
        arns += [log, f"{log}:log-stream:2026/11/26/[$LATEST]abc"]
    db = names.glue_database
    arns += [f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{db}"]
    arns += [
        f"arn:aws:glue:{REGION}:{ACCOUNT}:table/{db}/{t}"
        for t in ("outcomes", "results", "usage", "reuse")
    ]
    return arns


def test_committed_policy_files_are_the_generated_ones() -> None:
    assert sync(policies.generated_files(), write=False) == [], (
        "run: python -m deploy.policies --write"
    )


def test_chalice_config_uses_the_stage_files() -> None:
    config = json.loads((policies.CHALICE_DIR / "config.json").read_text())
    assert config["autogen_policy"] is False
    assert "iam_policy_file" not in config
    for stage in STAGES:
        st = config["stages"][stage]
        assert st["iam_policy_file"] == policies.policy_file_name(stage, "api_handler")
        for fn in ("dispatcher", "worker", "failure_recorder", "reconciler"):
            assert st["lambda_functions"][fn]["iam_policy_file"] == policies.policy_file_name(
                stage, fn
            )
            assert "iam_policy_file" not in config["lambda_functions"][fn]


@pytest.mark.parametrize(("kind", "stage", "fn", "policy"), every_policy())
def test_parliament_finds_nothing(kind: str, stage: str, fn: str, policy: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
        from parliament import analyze_policy_string

    analyzed = analyze_policy_string(json.dumps(policy))
    assert [(f.issue, f.detail) for f in analyzed.findings] == []


@pytest.mark.parametrize(("kind", "stage", "fn", "policy"), every_policy())
def test_no_wildcard_resource_for_data_or_functions(
    kind: str, stage: str, fn: str, policy: dict[str, Any]
) -> None:
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        if statement not in scoped(policy):
            assert statement["Resource"] == ["*"] and fn == "dispatcher"  # pacing's one read
            continue
        for resource in statement["Resource"]:
            assert resource != "*"
            parts = resource.split(":")
            service, name = parts[2], ":".join(parts[5:])
            assert not name.startswith("*"), resource
            if service in ("s3", "lambda", "glue"):
                assert (
                    f"sweeps-{stage}" in name or f"sweeps_{stage}" in name or name == ("catalog")
                ), resource


@pytest.mark.parametrize(("kind", "stage", "fn", "policy"), every_policy())
def test_no_policy_grants_anything_on_another_stage(
    kind: str, stage: str, fn: str, policy: dict[str, Any]
) -> None:
    others = [arn for other in STAGES if other != stage for arn in stage_resources(other)]
    for pattern in resources(policy):
        hits = [arn for arn in others if iam_match(pattern, arn)]
        assert hits == [], f"{pattern} matches {hits}"


@pytest.mark.parametrize(("kind", "stage", "fn", "policy"), every_policy())
def test_each_policy_covers_its_own_stage(
    kind: str, stage: str, fn: str, policy: dict[str, Any]
) -> None:
    """The wildcards must still match the real names: a dead pattern would deny everything."""
    own = stage_resources(stage)
    for pattern in resources(policy):
        if pattern.endswith(":catalog"):
            continue
        assert any(iam_match(pattern, arn) for arn in own), pattern


def test_dev_policies_name_nothing_of_prod() -> None:
    for fn in FUNCTIONS:
        text = json.dumps(policies.file_policy("dev", fn)) + json.dumps(
            render(policies.cfn_policy("dev", fn))
        )
        assert "prod" not in text


@pytest.mark.parametrize(("kind", "stage", "fn", "policy"), every_policy())
def test_every_reader_may_list_its_whole_bucket(
    kind: str, stage: str, fn: str, policy: dict[str, Any]
) -> None:
    """A GET/HEAD of a missing key is 404 only for a caller with s3:ListBucket (else 403); a
    prefix condition might not count (undocumented), so the grant has none: a reader's absent
    cancel marker or success lock must read as absent, never as an error."""
    reads = [s for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    lists = [s for s in policy["Statement"] if "s3:ListBucket" in s["Action"]]
    assert reads and lists
    for statement in lists:
        assert "Condition" not in statement
        (bucket,) = statement["Resource"]
        assert iam_match(bucket, f"arn:aws:s3:::{StageNames(stage).base}-{ACCOUNT}-{REGION}")


@pytest.mark.parametrize(("kind", "stage", "fn", "policy"), every_policy())
def test_each_function_may_create_its_own_log_group_however_iam_names_it(
    kind: str, stage: str, fn: str, policy: dict[str, Any]
) -> None:
    """On path B nothing else creates a function's log group. IAM's reference names the group's
    ARN, but CreateLogGroup has been checked against "<group>:log-stream:" (CloudTrail in
    aws-solutions/instance-scheduler-on-aws#578): both are granted, and no other group is."""
    names = StageNames(stage)
    creating = [s for s in policy["Statement"] if s["Action"] == ["logs:CreateLogGroup"]]
    patterns = [p for s in creating for p in s["Resource"]]
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{names.log_group(fn)}"
    for arn in (group, f"{group}:log-stream:"):
        assert any(iam_match(p, arn) for p in patterns), arn
    for other in FUNCTIONS:
        if other != fn:
            neighbour = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{names.log_group(other)}"
            assert not any(iam_match(p, f"{neighbour}:log-stream:") for p in patterns)
