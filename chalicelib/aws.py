"""boto3 clients, built once per process and shared by its threads, and how their errors read.

Retry behaviour is set explicitly, once, for every client: botocore's default mode changed
between releases (aws-facts), and a client built elsewhere with other settings would make the
same call behave differently in two places.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import urllib3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.httpsession import get_cert_path

RETRIES = {"mode": "standard", "max_attempts": 5}
# The services the functions call. The deploy ships botocore with only these models
# (deploy/sdk.py), so a client of any other service would fail in Lambda: refuse it here too.
SERVICES = ("s3", "lambda", "glue", "athena")
# The botocore the tests ran with, shipped in both deploy paths (requirements.txt pins it; a
# test checks they agree). Conditional writes need PutObject's IfNoneMatch (late 2024 on).
NEEDED_BOTOCORE = "1.44.8"


class SdkMismatch(RuntimeError):
    """The process imported a botocore other than the one shipped with the functions."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def sdk_problem(found: str, where: str, conditional_writes: bool) -> str | None:
    """Why this botocore will not do, or None."""
    if _version(found) >= _version(NEEDED_BOTOCORE) and conditional_writes:
        return None
    return (
        f"botocore {found} (from {where}) is not the SDK this package was tested with: it "
        f"needs botocore >= {NEEDED_BOTOCORE}"
        + ("" if conditional_writes else ", whose S3 PutObject knows IfNoneMatch")
        + "; the function zip ships it (requirements.txt) — was it left out of the package?"
    )


def check_sdk() -> None:
    """At cold start: fail naming the version found and the one needed, rather than with a
    confusing parameter-validation error on the first conditional write."""
    import botocore
    import botocore.session

    s3_model = botocore.session.get_session().get_service_model("s3")
    members = s3_model.operation_model("PutObject").input_shape.members
    problem = sdk_problem(botocore.__version__, str(botocore.__file__), "IfNoneMatch" in members)
    if problem is not None:
        raise SdkMismatch(problem)


def client(service: str, **config: Any) -> Any:
    """A new client with the project's retry policy (``config`` adds to it)."""
    if service not in SERVICES:
        raise ValueError(f"{service} is not in aws.SERVICES: its model is not shipped")
    return boto3.client(service, config=Config(retries=RETRIES, **config))


class once_per_process[T]:
    """``functools.cache`` whose first build happens under a lock. A cold process asks for its
    clients from several threads at once (a worker's first checks go out together, a leaf
    dispatcher's first Invokes on up to 32 threads): without the lock each thread built its
    own client, ~0.1 s of CPU and a connection pool apiece, and boto3's default session, which
    builds them, is not safe to use from threads at once."""

    def __init__(self, build: Callable[..., T]) -> None:
        self._cached = cache(build)
        self._lock = threading.Lock()
        self.__doc__ = build.__doc__

    def __call__(self, *args: Hashable) -> T:
        with self._lock:
            return self._cached(*args)

    def cache_clear(self) -> None:
        with self._lock:
            self._cached.cache_clear()


@once_per_process
def s3() -> Any:
    return client("s3", max_pool_connections=32)


@once_per_process
def glue() -> Any:
    return client("glue")


@once_per_process
def athena() -> Any:
    return client("athena")


@dataclass(frozen=True)
class LambdaEndpoint:
    """Where and as whom to call Lambda's Invoke API: resolved once per process by boto3."""

    url: str
    region: str
    credentials: Any  # botocore Credentials (refreshable ones refresh themselves)
    http: urllib3.PoolManager


@once_per_process
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
