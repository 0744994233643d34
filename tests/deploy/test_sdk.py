"""The shipped SDK: botocore's models trimmed to the services called, the cold-start check that
names the botocore found and the one needed, and the build refusing a Python other than 3.12."""

from __future__ import annotations

import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore
import pytest

from chalicelib import aws, wiring
from chalicelib.config import PROJECT_ROOT, Settings
from deploy import sdk


def test_the_needed_botocore_is_the_one_requirements_ship() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    assert pins["botocore"] == aws.NEEDED_BOTOCORE == botocore.__version__  # what tests ran


def test_trim_keeps_the_called_services_and_the_top_level_files(tmp_path: Path) -> None:
    archive = tmp_path / "deployment.zip"
    names = [
        "app.py",
        "botocore/__init__.py",
        "botocore/data/endpoints.json",
        "botocore/data/partitions.json",
        *(f"botocore/data/{s}/2006-03-01/service-2.json.gz" for s in aws.SERVICES),
        "botocore/data/ec2/2016-11-15/service-2.json.gz",
        "botocore/data/sagemaker/2017-07-24/paginators-1.json",
    ]
    with zipfile.ZipFile(archive, "w") as zf:
        for name in names:
            zf.writestr(name, "x" * 10)
    assert sdk.trim(archive) == 20
    with zipfile.ZipFile(archive) as zf:
        left = zf.namelist()
    assert left == [n for n in names if "/ec2/" not in n and "/sagemaker/" not in n]


def test_no_client_of_a_service_whose_model_is_not_shipped() -> None:
    with pytest.raises(ValueError, match=r"sts is not in aws\.SERVICES"):
        aws.client("sts")


def test_the_installed_botocore_passes_the_cold_start_check() -> None:
    aws.check_sdk()


def test_an_older_runtime_botocore_fails_the_cold_start_naming_both_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(botocore, "__version__", "1.34.162")
    settings = Settings(
        stage="dev",
        backend="aws",
        bucket="b",
        worker_function="w",
        dispatcher_function="d",
    )
    with pytest.raises(aws.SdkMismatch, match=r"botocore 1\.34\.162 .* needs botocore >= 1\.44"):
        wiring.build(settings)


def test_a_botocore_without_if_none_match_is_refused() -> None:
    problem = aws.sdk_problem("9.9.9", "/var/runtime/botocore", conditional_writes=False)
    assert problem is not None and "IfNoneMatch" in problem and "/var/runtime" in problem


def test_the_build_refuses_a_python_other_than_312() -> None:
    sdk.check_build_python((3, 12))
    with pytest.raises(sdk.BuildPythonMismatch, match=r"Python 3\.11, but .* cp312"):
        sdk.check_build_python((3, 11))


@pytest.mark.parametrize("getter", ["s3", "glue", "athena"])
def test_threads_asking_a_cold_process_for_a_client_get_one_client(
    getter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold worker's first checks go out on four threads at once, a leaf's first Invokes on
    up to 32: each thread built its own client before (~0.1 s of CPU apiece, from boto3's
    default session, which is not safe to share while building). A slow build widens the
    window, so without the lock every thread builds."""
    built: list[str] = []

    def slow_client(service: str, **config: object) -> object:
        built.append(service)
        time.sleep(0.05)
        return object()

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(aws, "client", slow_client)
    get = getattr(aws, getter)
    get.cache_clear()
    start = threading.Barrier(8)

    def ask(_: int) -> object:
        start.wait()
        return get()

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            clients = list(pool.map(ask, range(8)))
    finally:
        get.cache_clear()
    assert len(built) == 1 and len({id(c) for c in clients}) == 1


def test_threads_asking_for_the_lambda_endpoint_at_once_build_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.lambda_endpoint.cache_clear()
    start = threading.Barrier(8)

    def ask(_: int) -> aws.LambdaEndpoint:
        start.wait()
        return aws.lambda_endpoint(32)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            endpoints = list(pool.map(ask, range(8)))
    finally:
        aws.lambda_endpoint.cache_clear()
    assert len({id(e.http) for e in endpoints}) == 1
