"""boto3 clients, built on first use and shared by the threads of a process.

Retry behaviour is set explicitly: botocore's default mode changed between releases.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config


@cache
def s3() -> Any:
    return boto3.client(
        "s3",
        config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32),
    )


@cache
def lambda_(pool: int) -> Any:
    """One client per pool size; ``pool`` >= the dispatching threads so none waits on a socket.

    botocore retries are kept to one attempt: the dispatcher's own backoff with jitter handles
    throttles, so that a shard's dispatch budget is counted in one place.
    """
    return boto3.client(
        "lambda",
        config=Config(
            retries={"mode": "standard", "max_attempts": 1},
            max_pool_connections=pool,
            connect_timeout=5,
            read_timeout=15,
        ),
    )


@cache
def glue() -> Any:
    return boto3.client("glue", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@cache
def athena() -> Any:
    return boto3.client("athena", config=Config(retries={"mode": "standard", "max_attempts": 5}))
