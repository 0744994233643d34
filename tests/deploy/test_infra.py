"""The data-plane stack: committed, generated, lint-clean, and locked down as the issue asks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import PROJECT_ROOT
from deploy import infra
from deploy.cfn import Tag, load_yaml
from deploy.generated import sync
from deploy.naming import STAGES, StageNames


def load(stage: str) -> dict[str, Any]:
    template: dict[str, Any] = load_yaml(infra.template_path(stage).read_text())
    return template


def test_committed_templates_are_the_generated_ones() -> None:
    assert sync(infra.generated_files(), write=False) == [], "run: python -m deploy.infra --write"


@pytest.mark.parametrize("stage", STAGES)
def test_bucket_is_private_encrypted_and_named_per_account(stage: str) -> None:
    bucket = load(stage)["Resources"]["DataBucket"]
    props = bucket["Properties"]
    assert props["BucketName"] == Tag("Sub", f"sweeps-{stage}-${{AWS::AccountId}}-${{AWS::Region}}")
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    expiry = [r for r in props["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert [r["Prefix"] for r in expiry] == ["athena-results/"]
    # kept when the stack is deleted, but removed by the rollback of a failed first create
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    assert bucket["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("stage", STAGES)
def test_bucket_policy_denies_plain_http(stage: str) -> None:
    policy = load(stage)["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(deny["Resource"]) == 2  # the bucket and its objects


@pytest.mark.parametrize("stage", STAGES)
def test_workgroup_enforces_location_encryption_and_cutoff(stage: str) -> None:
    group = load(stage)["Resources"]["AnalyticsWorkGroup"]["Properties"]
    assert group["Name"] == StageNames(stage).workgroup
    config = group["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == infra.BYTES_SCANNED_CUTOFF
    result = config["ResultConfiguration"]
    assert result["OutputLocation"] == Tag("Sub", "s3://${DataBucket}/athena-results/")
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}


@pytest.mark.parametrize("stage", STAGES)
def test_one_named_query_per_baseline_query(stage: str) -> None:
    """Each file of athena/ (but the DDL) as is, and each generated query once per simulation,
    its text exactly what ``sweep query`` runs for that simulation."""
    from chalicelib.simulations.registry import REGISTRY
    from sweeps.views import PER_SIMULATION_QUERIES

    resources = load(stage)["Resources"]
    named = {
        r["Properties"]["Name"]: r["Properties"]["QueryString"]
        for r in resources.values()
        if r["Type"] == "AWS::Athena::NamedQuery"
    }
    files = {
        p.stem: p.read_text()
        for p in (PROJECT_ROOT / "athena").glob("*.sql")
        if not p.stem.startswith("ddl_")
    }
    generated = {
        f"{query}_{name}": build(sim)
        for query, (build, _) in PER_SIMULATION_QUERIES.items()
        for name, sim in REGISTRY.items()
    }
    assert files and generated
    assert {k: v for k, v in named.items() if k in files} == files
    assert {k: v.split("\n", 1)[1] for k, v in named.items() if k in generated} == generated
    assert set(named) == set(files) | set(generated)


@pytest.mark.parametrize("stage", STAGES)
def test_tables_point_into_the_stage_bucket(stage: str) -> None:
    resources = load(stage)["Resources"]
    db = resources["AnalyticsDatabase"]["Properties"]["DatabaseInput"]["Name"]
    assert db == f"sweeps_{stage}"
    for table in ("outcomes", "results"):
        location = resources[f"{table.capitalize()}Table"]["Properties"]["TableInput"][
            "StorageDescriptor"
        ]["Location"]
        assert location == Tag("Sub", f"s3://${{DataBucket}}/sweeps/{table}/")


def test_no_stage_template_names_another_stage() -> None:
    for stage in STAGES:
        text = infra.template_path(stage).read_text()
        for other in STAGES:
            if other != stage:
                assert f"sweeps-{other}" not in text and f"sweeps_{other}" not in text


def test_cfn_lint_is_clean() -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert cfn_lint, "cfn-lint is installed with requirements-dev.txt"
    paths = [str(infra.template_path(s)) for s in STAGES]
    done = subprocess.run([cfn_lint, *paths], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("stage", STAGES)
def test_the_layer_is_published_from_s3_only_when_asked(stage: str) -> None:
    template = load(stage)
    layer = template["Resources"]["PyarrowLayer"]
    assert layer["Condition"] == "HasLayer"
    props = layer["Properties"]
    assert props["Content"] == {
        "S3Bucket": Tag("Ref", "LayerBucket"),
        "S3Key": Tag("Ref", "LayerKey"),
    }
    assert props["CompatibleRuntimes"] == ["python3.12"]
    assert props["CompatibleArchitectures"] == ["x86_64"]
    assert props["LayerName"] == f"sweeps-{stage}-pyarrow"
    assert template["Outputs"]["LayerVersionArn"]["Condition"] == "HasLayer"


@pytest.mark.parametrize("stage", STAGES)
def test_a_saved_query_with_placeholders_says_to_replace_them(stage: str) -> None:
    """Athena's console runs a saved query as it is, and ``${run_id}`` left in matches no run:
    each saved query names the placeholders its text holds, and only those."""
    for resource in load(stage)["Resources"].values():
        if resource["Type"] != "AWS::Athena::NamedQuery":
            continue
        props = resource["Properties"]
        held = set(re.findall(r"\$\{(\w+)\}", props["QueryString"]))
        said = (
            props["Description"].split("Replace ", 1)[1]
            if "Replace " in props["Description"]
            else ""
        )
        assert set(re.findall(r"\$\{(\w+)\}", said)) == held, props["Name"]
        assert len(props["Description"]) <= 1024
