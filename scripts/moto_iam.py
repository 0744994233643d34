"""moto's IAM enforcement for ``make rehearse``: the second judge of least privilege.

After the deploy, with enforcement still off: an operator user (allowed everything, for the
rehearsal's own checks) and, for each deployed function, credentials of the role Chalice made
for it (STS AssumeRole). Then enforcement goes on (``/moto-api/reset-auth``: moto's
``INITIAL_NO_AUTH_ACTION_COUNT``), and from there moto evaluates every S3 and Glue call against
the policies attached to the caller: a function's call outside its generated policy is an
AccessDenied, as in AWS.

The role credentials are taken while moto checks nothing, trust policies included: on AWS the
roles trust lambda.amazonaws.com only, and that is not widened (an operator cannot assume them;
``make smoke`` probes from inside each function instead, chalicelib/storage/probe.py).

What moto's enforcement does not model (moto/iam/access_control.py, moto 5.2.5), so the first
judge (tests/deploy/test_policies.py) stays: resource-based policies (bucket policies, Lambda
permissions); Conditions outside AssumeRole (treated as met); S3's 403-for-absent-keys without
ListBucket (moto answers 404 whenever GetObject is allowed); resources for services without a
``_determine_resource`` (everything but S3, STS, IAM, SQS: a Glue call is checked against "*",
so ``install_patches`` names the table of a partition batch call); DeleteObjects, which moto
authorizes on the bucket's ARN rather than on each key (``install_patches`` checks each key);
Lambda's Invoke (the rehearsal's Invoke is a stand-in, not moto).
"""

from __future__ import annotations

import functools
import json
import re
import urllib.request
from typing import Any

from deploy.naming import FUNCTIONS, StageNames

OPERATOR = "rehearsal-operator"
EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@functools.cache
def iam_pattern(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` exactly one, everything else
    literal. moto 5.2.5 turns only ``*`` into ``.*`` and leaves the rest as regex, so our
    account-agnostic bucket pattern (``sweeps-dev-????????????-*``) is a regex error there.
    Cached: moto matches every statement's patterns on every request (a policy's few dozen)."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    )


def install_patches() -> None:
    """Make moto's evaluation read our policies as IAM does (for a server in this process)."""
    from moto.glue.responses import GlueResponse
    from moto.iam.access_control import IAMPolicyStatement
    from moto.s3.responses import S3Response

    def match(pattern: str, string: str) -> re.Match[str] | None:
        return iam_pattern(pattern).fullmatch(string)

    def determine_resource(self: Any) -> str:
        """BatchCreatePartition, BatchUpdatePartition and BatchGetPartition (the compactor's)
        are checked against their table's ARN (AWS also wants the catalog and the database,
        which our policies grant alongside); other Glue calls against "*"."""
        batch = ("BatchCreatePartition", "BatchUpdatePartition", "BatchGetPartition")
        if self._get_action() not in batch:
            return "*"
        params = self.parameters
        where = f"{self.region}:{self.current_account}"
        return f"arn:aws:glue:{where}:table/{params['DatabaseName']}/{params['TableName']}"

    IAMPolicyStatement._match = staticmethod(match)  # type: ignore[method-assign]
    GlueResponse._determine_resource = determine_resource  # type: ignore[attr-defined]
    S3Response._authenticate_and_authorize_s3_action = per_key(  # type: ignore[method-assign]
        S3Response._authenticate_and_authorize_s3_action
    )


def per_key(authorize: Any) -> Any:
    """DeleteObjects as IAM authorizes it: s3:DeleteObject on each object the request names
    (AWS's DeleteObjects reference); moto 5.2.5 checks the bucket's ARN instead, which no
    function's policy grants, and then refuses every key. Here each key is checked; one key
    refused refuses them all (moto's fallback), where AWS would refuse that key alone."""

    def authorize_s3(
        self: Any, bucket_name: str | None = None, key_name: str | None = None
    ) -> None:
        if key_name is None and self.data.get("Action") == "DeleteObject" and self.is_delete_keys():
            from xml.etree import ElementTree

            for element in ElementTree.fromstring(self.body).iter():
                if element.tag.rsplit("}", 1)[-1] == "Key":  # Delete/Object/Key, any namespace
                    authorize(self, bucket_name=bucket_name, key_name=element.text or "")
            return
        authorize(self, bucket_name=bucket_name, key_name=key_name)

    return authorize_s3


def operator_environment(iam: Any) -> dict[str, str]:
    """An IAM user allowed everything, and its access key as environment variables."""
    iam.create_user(UserName=OPERATOR)
    iam.put_user_policy(
        UserName=OPERATOR, PolicyName="everything", PolicyDocument=json.dumps(EVERYTHING)
    )
    key = iam.create_access_key(UserName=OPERATOR)["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def role_credentials(stage: str, lambda_client: Any, sts: Any) -> dict[str, dict[str, str]]:
    """Each function of ``deploy.naming.FUNCTIONS``: its deployed name, the role it runs with
    and credentials of that role (``artifact_driver``'s ``SWEEP_REHEARSAL_ROLES``)."""
    names = StageNames(stage)
    roles = {}
    for fn in FUNCTIONS:
        arn = lambda_client.get_function_configuration(FunctionName=names.function(fn))["Role"]
        got = sts.assume_role(RoleArn=arn, RoleSessionName=f"rehearsal-{fn}")["Credentials"]
        roles[fn] = {
            "function": names.function(fn),
            "RoleArn": arn,
            **{k: got[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")},
        }
    return roles


def without_read(policy: dict[str, Any], folder: str) -> dict[str, Any]:
    """``policy`` with its read grant on ``folder`` removed: the deliberately narrowed role
    with which the rehearsal and tests check that the enforcement bites."""
    out: dict[str, Any] = json.loads(json.dumps(policy))
    for statement in out["Statement"]:
        if statement.get("Sid") == "ReadObjects":
            statement["Resource"] = [r for r in statement["Resource"] if f"/{folder}/" not in r]
    return out


def enforce(url: str, after: int = 0) -> None:
    """Switch moto's IAM enforcement on after ``after`` more unauthenticated requests."""
    request = urllib.request.Request(
        f"{url}/moto-api/reset-auth",
        data=str(after).encode(),
        headers={"Content-Type": "text/plain"},  # moto reads the raw body, not a form
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        json.loads(response.read())
