"""IAM as AWS evaluates it, for the policy tests: CloudFormation policies rendered as deployed,
and IAM's resource-pattern matching."""

from __future__ import annotations

import re
from typing import Any

from deploy.cfn import Tag

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def render(value: Any, account: str = ACCOUNT, region: str = REGION) -> Any:
    """A CloudFormation policy as it reads once deployed in ``account``/``region``."""
    if isinstance(value, Tag):
        assert value.name == "Sub" and isinstance(value.value, str)
        return (
            value.value.replace("${AWS::Partition}", "aws")
            .replace("${AWS::Region}", region)
            .replace("${AWS::AccountId}", account)
        )
    if isinstance(value, dict):
        return {k: render(v, account, region) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, account, region) for v in value]
    return value


def iam_match(pattern: str, arn: str) -> bool:
    """IAM resource matching: ``*`` any run of characters, ``?`` any one; nothing else."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None
