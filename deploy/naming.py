"""Every deployed name of a stage, in one place: both deploy paths, the policies and the tests
derive function, bucket, Glue and log-group names from here, so a policy cannot drift from
the resource it is meant to cover.

Names are ``<app>-<stage>-<fn>`` because that is what ``chalice deploy`` gives its functions
(aws-facts); the packaged path sets the same names explicitly, so one policy text fits both.
The bucket name carries the account and region: bucket names are global across all of AWS, and
a fixed one may already belong to someone else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

APP = "sweeps"
STAGES = ("dev", "prod")
# Chalice's names for the Lambda functions of app.py; "api_handler" is the routes' function.
FUNCTIONS = (
    "api_handler",
    "dispatcher",
    "worker",
    "failure_recorder",
    "reconciler",
    "compactor",
)
STAGE_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
DATA_PREFIX = "sweeps"
ATHENA_RESULTS_PREFIX = "athena-results"


@dataclass(frozen=True)
class StageNames:
    stage: str
    app: str = APP

    def __post_init__(self) -> None:
        if not STAGE_RE.match(self.stage):
            raise ValueError(f"stage names are short lowercase words, got {self.stage!r}")

    @property
    def base(self) -> str:
        return f"{self.app}-{self.stage}"

    def function(self, fn: str) -> str:
        """The deployed function name (``chalice deploy``'s convention)."""
        if fn not in FUNCTIONS:
            raise ValueError(f"unknown function {fn!r}")
        if fn == "api_handler":
            return self.base
        # Chalice keeps the name as app.py gives it, underscore included
        # (sweeps-dev-failure_recorder): rehearsing `chalice deploy` on moto showed it.
        return f"{self.base}-{fn}"

    def log_group(self, fn: str) -> str:
        return f"/aws/lambda/{self.function(fn)}"

    @property
    def bucket_sub(self) -> str:
        """The bucket name as a CloudFormation ``!Sub`` string."""
        return f"{self.base}-${{AWS::AccountId}}-${{AWS::Region}}"

    @property
    def bucket_pattern(self) -> str:
        """The bucket name with account and region as IAM wildcards, for policy files written
        before the account is known: 12 digits, then a region; no other stage matches it."""
        return f"{self.base}-{'?' * 12}-*"

    @property
    def glue_database(self) -> str:
        return f"{self.app}_{self.stage}"

    @property
    def workgroup(self) -> str:
        return self.base

    @property
    def prefix(self) -> str:
        return DATA_PREFIX
