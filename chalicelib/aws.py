"""boto3 clients, built once per process and shared by its threads, and how their errors read.

Retry behaviour is set explicitly, once, for every client: botocore's default mode changed
between releases (aws-facts), and a client built elsewhere with other settings would make the
same call behave differently in two places.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import urllib3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.httpsession import get_cert_path

RETRIES = {"mode": "standard", "max_attempts": 5}


def client(service: str, **config: Any) -> Any:
    """A new client with the project's retry policy (``config`` adds to it)."""
    return boto3.client(service, config=Config(retries=RETRIES, **config))


@cache
def s3() -> Any:
    return client("s3", max_pool_connections=32)


@cache
def glue() -> Any:
    return client("glue")


@cache
def athena() -> Any:
    return client("athena")


@dataclass(frozen=True)
class LambdaEndpoint:
    """Where and as whom to call Lambda's Invoke API: resolved once per process by boto3."""

    url: str
    region: str
    credentials: Any  # botocore Credentials (refreshable ones refresh themselves)
    http: urllib3.PoolManager


@cache
def lambda_endpoint(pool: int) -> LambdaEndpoint:
    """Lambda's endpoint and credentials as boto3 resolves them (region, FIPS, profiles), and
    one connection pool of ``pool`` sockets, at least the dispatching threads, so none waits."""
    session = boto3.session.Session()
    lambda_client = session.client("lambda")
    http = urllib3.PoolManager(
        maxsize=pool,
        ca_certs=get_cert_path(True),
        timeout=urllib3.Timeout(connect=5, read=15),
    )
    return LambdaEndpoint(
        lambda_client.meta.endpoint_url,
        lambda_client.meta.region_name,
        session.get_credentials(),
        http,
    )


def error_code(exc: ClientError) -> str:
    """The service's error code, e.g. ``NoSuchKey`` or ``PreconditionFailed``."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def describe(exc: ClientError | BotoCoreError) -> str:
    """One line for a log or an error message: the service's code and message, or the client's
    own error type (timeouts, connection failures) when the service never answered."""
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message", "")).strip()
        return f"{error_code(exc)}: {message}" if message else error_code(exc)
    return f"{type(exc).__name__}: {exc}"


AWS_ERRORS = (ClientError, BotoCoreError)
