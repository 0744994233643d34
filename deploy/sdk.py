"""The SDK the functions ship: boto3/botocore as pinned in requirements.txt, botocore trimmed to
the models of the services they call.

The Lambda runtime bundles a boto3/botocore of AWS's choosing, and conditional writes need a
botocore that knows PutObject's ``IfNoneMatch`` (aws-facts). So both deploy paths ship the
tested version in the function zip (``/var/task`` comes first on Lambda's path), and the
functions check at cold start what they imported (``chalicelib.aws.check_sdk``). botocore's
``data/`` holds every service's model (about 29 MB unzipped); only ``aws.SERVICES`` and the
top-level files (endpoints, partitions, retry and default configuration) are kept.
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

from chalicelib.aws import SERVICES

DATA = "botocore/data/"
# The Python Lambda runs (python3.12), as the layer's wheels are built for it (deploy.layer).
LAMBDA_PYTHON = (3, 12)


class BuildPythonMismatch(Exception):
    pass


def check_build_python(version: tuple[int, ...] = tuple(sys.version_info[:2])) -> None:
    """Chalice makes the function's runtime the Python that runs it (aws-facts): building with
    another would deploy a runtime the cp312 layer and wheels do not fit."""
    if tuple(version[:2]) != LAMBDA_PYTHON:
        found = ".".join(map(str, version[:2]))
        raise BuildPythonMismatch(
            f"building with Python {found}, but the functions and the layer are cp312 "
            "(python3.12): rebuild the virtual environment with Python 3.12 (make clean setup)"
        )


def kept(name: str) -> bool:
    """Whether a zip entry stays: everything but the models of services nobody calls."""
    if not name.startswith(DATA):
        return True
    rest = name[len(DATA) :]
    return "/" not in rest or rest.split("/", 1)[0] in SERVICES


def trim(archive: Path) -> int:
    """Rewrite ``archive`` without the unused models; returns the bytes of files removed."""
    removed = 0
    trimmed = archive.with_suffix(".trimmed")
    with (
        zipfile.ZipFile(archive) as src,
        zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in src.infolist():
            if kept(info.filename):
                out.writestr(info, src.read(info))
            else:
                removed += info.file_size
    os.replace(trimmed, archive)
    return removed
