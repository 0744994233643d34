"""Shared fixtures: real stores (a temp folder, and S3 through moto), and the contract's example."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.storage.stores import LocalStore, ObjectStore, S3Store
from scripts import moto_gaps
from tests.support import BUCKET, CONTRACT_EXAMPLE
from tests.support.harness import Harness


@pytest.fixture(autouse=True, scope="session")
def _atomic_moto_writes() -> None:
    """moto's conditional PutObject is not atomic across threads, S3's is: tests whose threads
    race to create one key (reconciler passes, compactions at once) get S3's answer; and its
    S3 reloads a module on every request, which threads must not do at once."""
    moto_gaps.thread_safe_s3()


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so nothing can ever reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def contract_example() -> dict[str, Any]:
    return copy.deepcopy(CONTRACT_EXAMPLE)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "data")


@pytest.fixture
def s3_client() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def s3_store(s3_client: Any) -> S3Store:
    return S3Store(BUCKET, "sweeps/test", lambda: s3_client)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each test that takes ``store`` runs against both implementations."""
    name = "local_store" if request.param == "local" else "s3_store"
    result: ObjectStore = request.getfixturevalue(name)
    return result


@pytest.fixture
def harness(s3_store: S3Store) -> Iterator[Harness]:
    h = Harness(s3_store)
    yield h
    h.close()
