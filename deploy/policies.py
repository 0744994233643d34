"""The IAM policy of every function of every stage, from one table of grants.

``GRANTS`` says what each function does (which S3 prefixes it reads and writes, which
functions it invokes, whether it registers Glue partitions); two renderers turn it into
policies:

- ``cfn_policy``: for the packaged stack (path A), with the account, region and partition as
  ``!Sub`` variables, so every ARN is exact;
- ``file_policy``: ``.chalice/policy-<stage>-<fn>.json`` for ``chalice deploy`` (path B), written
  before any account is known: account and region are wildcards, but every name carries the
  stage, so no dev pattern matches a prod resource (a test checks this).

    python -m deploy.policies --write    # rewrite .chalice/policy-<stage>-<fn>.json
    python -m deploy.policies --check    # exit 1 if one is stale
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.config import PROJECT_ROOT
from chalicelib.storage.layout import COMPACTED_TABLES
from deploy import generated
from deploy.cfn import Tag
from deploy.naming import FUNCTIONS, STAGES, StageNames

CHALICE_DIR = PROJECT_ROOT / ".chalice"
# The tables partitioned by run, registered at dispatch (analytics/catalog.py: partition_dirs).
RUN_TABLES = ("outcomes", "results", "usage")


# The only actions granted on "*": IAM defines no resource for them (the Service Authorization
# Reference lists no resource type for lambda:GetAccountSettings), and they read account-wide
# limits only, nothing of any stage.
ACCOUNT_WIDE_ACTIONS = frozenset({"lambda:GetAccountSettings"})


@dataclass(frozen=True)
class Grant:
    """What one function does in AWS. Prefixes are folders under the stage's data prefix."""

    read: tuple[str, ...] = ()  # s3:GetObject (also what HeadObject needs)
    write: tuple[str, ...] = ()  # s3:PutObject
    invoke: tuple[str, ...] = ()  # lambda:InvokeFunction on these functions of the stage
    delete: tuple[str, ...] = ()  # s3:DeleteObject
    # glue:BatchCreatePartition on these tables of the stage's database.
    register_partitions: tuple[str, ...] = ()
    point_partitions: bool = False  # glue:BatchUpdatePartition/BatchGetPartition, those tables
    # lambda:GetAccountSettings (resource "*": the action has no resource-level permission).
    account_settings: bool = False


# The calls each function makes (chalicelib/storage/stores.py, fanout/invoking.py,
# analytics/catalog.py); nothing more.
GRANTS: dict[str, Grant] = {
    "api_handler": Grant(
        read=("runs",),
        write=("runs",),
        # compactor: status hands a run it finds complete to the compactor.
        invoke=("dispatcher", "compactor"),
    ),
    # outcomes/: has_success's HEAD of the success outcome, when a redelivered leaf finds its
    # run cancelled after some shards succeeded (dispatcher) and before a stalled shard is
    # closed (reconciler). Without it that HEAD is a 403 in AWS and the shard stays pending.
    "dispatcher": Grant(
        # reuse/: a reusing run's plan reads its family's merged index and pending runs, whose
        # per-shard results/ it reads; each job marks its run pending there
        # (chalicelib/execution/reuse.py).
        read=("runs", "outcomes", "reuse", "results"),
        write=("runs", "outcomes", "usage", "reuse"),
        invoke=("dispatcher", "worker"),
        register_partitions=RUN_TABLES,
        # Pacing reads the account's unreserved concurrency (chalicelib/fanout/pacing.py).
        account_settings=True,
    ),
    # results/: a create that finds its key taken reads it back (ObjectStore._holds): a retry
    # after the success outcome's write failed finds its own results there. Without the read,
    # S3's 403 failed every retry and every redrive of that shard.
    "worker": Grant(
        read=("runs", "outcomes", "results"),
        # usage/: each invocation's usage record (chalicelib/execution/usage.py), for cost.
        write=("runs", "outcomes", "results", "usage"),
        # Lambda delivers the worker's OnFailure record with the worker's own role.
        invoke=("failure_recorder",),
    ),
    "failure_recorder": Grant(
        read=("runs", "outcomes"),
        # Its failures are final: no retry marker under runs/; usage/ holds the crashed
        # attempts' usage records.
        write=("outcomes", "usage"),
    ),
    # The schedule's function (chalicelib/fanout/reconcile.py): open-run markers and redrive
    # lists under runs/, LOST/CANCELLED outcomes, an auto-redrive handed to the dispatcher, and
    # the open-run marker of a complete run removed.
    "reconciler": Grant(
        read=("runs", "outcomes"),
        write=("runs", "outcomes"),
        # compactor: a complete run's compaction step that is due (a lost trigger retried).
        invoke=("dispatcher", "compactor"),
        delete=("runs/_index/open",),
        register_partitions=RUN_TABLES,  # again, for runs whose dispatch-time registration failed
    ),
    # chalicelib/execution/compaction.py: reads a complete run's files and records (usage
    # records by listing only: their keys say everything, so no read of usage/), writes its
    # generation under compacted/ and its records (commit, absorbed usage, pointed, cleaned)
    # under runs/, its own usage record, points its partitions, and deletes what a generation
    # replaced (per-shard results, older generations' parts and absorbed-usage lists) after the
    # grace period. Never an outcome or usage record.
    # reuse/: what the run evaluated (its results) merged into its family's index, and its
    # pending markers deleted (execution/reuse.py).
    "compactor": Grant(
        read=("runs", "outcomes", "results", "compacted", "reuse"),
        write=("runs/*/compaction", "usage", "compacted", "reuse"),
        delete=("results", "compacted", "runs/*/compaction", "reuse"),
        register_partitions=("reuse",),  # a family's partition of the table reuse, once merged
        point_partitions=True,
    ),
}


@dataclass(frozen=True)
class Arns:
    """ARN formats for one stage: exact (CloudFormation) or with wildcards (policy files)."""

    names: StageNames
    exact: bool

    def _text(self, service: str, resource: str, regional: bool = True) -> Any:
        if self.exact:
            where = "${AWS::Region}:${AWS::AccountId}" if regional else ":"
            return Tag("Sub", f"arn:${{AWS::Partition}}:{service}:{where}:{resource}")
        where = "*:*" if regional else ":"
        return f"arn:aws:{service}:{where}:{resource}"

    @property
    def bucket_name(self) -> str:
        return self.names.bucket_sub if self.exact else self.names.bucket_pattern

    def bucket(self) -> Any:
        return self._text("s3", self.bucket_name, regional=False)

    def objects(self, folder: str) -> Any:
        return self._text("s3", f"{self.bucket_name}/{self.names.prefix}/{folder}/*", False)

    def function(self, fn: str) -> Any:
        return self._text("lambda", f"function:{self.names.function(fn)}")

    def log_group(self, fn: str, suffix: str = "") -> Any:
        return self._text("logs", f"log-group:{self.names.log_group(fn)}{suffix}")

    def log_streams(self, fn: str) -> Any:
        return self._text("logs", f"log-group:{self.names.log_group(fn)}:log-stream:*")

    def glue(self, resource: str) -> Any:
        return self._text("glue", resource)


def statements(names: StageNames, fn: str, exact: bool) -> list[dict[str, Any]]:
    grant = GRANTS[fn]
    arns = Arns(names, exact)
    out: list[dict[str, Any]] = [
        {
            # Both forms of the group's ARN: the Service Authorization Reference names the
            # group's own, but IAM has been seen to check CreateLogGroup against the ":*" form
            # (CloudTrail: "...:log-group:<name>:log-stream:", aws-solutions/
            # instance-scheduler-on-aws#578), so the group alone left path B's functions,
            # whose groups nothing else creates, without logs. ":*" reaches no other group.
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup"],
            "Resource": [arns.log_group(fn), arns.log_group(fn, ":*")],
        },
        {
            "Sid": "OwnLogStreams",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [arns.log_streams(fn)],
        },
    ]
    object_grants = (
        ("ReadObjects", "s3:GetObject", grant.read),
        ("WriteObjects", "s3:PutObject", grant.write),
        ("DeleteObjects", "s3:DeleteObject", grant.delete),
    )
    for sid, action, folders in object_grants:
        if folders:
            out.append(
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Action": [action],
                    "Resource": [arns.objects(f) for f in folders],
                }
            )
    if grant.read:
        # Every reader lists, and lists the whole bucket: S3 answers a GET/HEAD of a missing
        # key with 404 only if the caller may ListBucket, else 403 (HeadObject docs), and
        # whether a ListBucket limited by an s3:prefix condition counts is undocumented. A 403
        # there would make every absent cancel marker or success lock an error and fail every
        # shard. The bucket holds one stage's data only (deploy/naming.py), so this widens
        # nothing across stages (docs/security.md).
        out.append(
            {
                "Sid": "ListBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [arns.bucket()],
            }
        )
    if grant.invoke:
        out.append(
            {
                "Sid": "InvokeFunctions",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction"],
                "Resource": [arns.function(f) for f in grant.invoke],
            }
        )
    if grant.account_settings:
        out.append(
            {
                "Sid": "ReadAccountLimits",
                "Effect": "Allow",
                "Action": ["lambda:GetAccountSettings"],
                "Resource": ["*"],
            }
        )
    glue: tuple[tuple[str, list[str], Sequence[str]], ...] = (
        ("RegisterPartitions", ["glue:BatchCreatePartition"], grant.register_partitions),
        # Compaction repoints the tables it rewrites (outcomes, results, usage), and reads
        # where they point before it deletes anything.
        (
            "PointPartitions",
            ["glue:BatchUpdatePartition", "glue:BatchGetPartition"],
            COMPACTED_TABLES if grant.point_partitions else (),
        ),
    )
    for sid, actions, tables in glue:
        if tables:
            db = names.glue_database
            out.append(
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Action": actions,
                    "Resource": [
                        arns.glue("catalog"),
                        arns.glue(f"database/{db}"),
                        *(arns.glue(f"table/{db}/{t}") for t in tables),
                    ],
                }
            )
    return out


def policy_document(stage: str, fn: str, exact: bool) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements(StageNames(stage), fn, exact)}


def cfn_policy(stage: str, fn: str) -> dict[str, Any]:
    return policy_document(stage, fn, exact=True)


def file_policy(stage: str, fn: str) -> dict[str, Any]:
    return policy_document(stage, fn, exact=False)


def policy_file_name(stage: str, fn: str) -> str:
    return f"policy-{stage}-{fn.replace('_', '-')}.json"


def generated_files() -> dict[Path, str]:
    return {
        CHALICE_DIR / policy_file_name(stage, fn): json.dumps(file_policy(stage, fn), indent=2)
        + "\n"
        for stage in STAGES
        for fn in FUNCTIONS
    }


def main(argv: Sequence[str] | None = None) -> int:
    return generated.main("python -m deploy.policies", __doc__, generated_files, argv)


if __name__ == "__main__":
    sys.exit(main())
