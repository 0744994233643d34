"""boto3 clients, built on first use and shared by the threads of a process.

Retry behaviour is set explicitly: botocore's default mode changed between releases.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
import urllib3
from botocore.config import Config
from botocore.httpsession import get_cert_path

from chalicelib.invoking import LambdaEndpoint


@cache
def s3() -> Any:
    return boto3.client(
        "s3",
        config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32),
    )


@cache
def lambda_endpoint(pool: int) -> LambdaEndpoint:
    """Lambda's endpoint and credentials as boto3 resolves them (region, FIPS, profiles), and
    one connection pool of ``pool`` sockets, at least the dispatching threads, so none waits."""
    session = boto3.session.Session()
    client = session.client("lambda")
    http = urllib3.PoolManager(
        maxsize=pool,
        ca_certs=get_cert_path(True),
        timeout=urllib3.Timeout(connect=5, read=15),
    )
    return LambdaEndpoint(
        client.meta.endpoint_url, client.meta.region_name, session.get_credentials(), http
    )


@cache
def glue() -> Any:
    return boto3.client("glue", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@cache
def athena() -> Any:
    return boto3.client("athena", config=Config(retries={"mode": "standard", "max_attempts": 5}))
