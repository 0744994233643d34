"""Where objects live: an S3 bucket/prefix on AWS, a folder on the local stage.

Both give the same guarantees the worker relies on: ``create`` is an atomic create-if-absent
(S3 ``If-None-Match: *``; a hard link locally), listings are complete (paginated), and every
failure surfaces as ``StorageError`` after the store's own retries.
"""

from __future__ import annotations

import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class StorageError(Exception):
    """The store failed after its own retries; the attempt is worth retrying later."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class ObjectStore(ABC):
    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write or overwrite."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Write only if absent; False when the key already exists."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Read; KeyError when absent."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix``, in key order."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the data is, for people and for the query engines."""


class LocalStore(ObjectStore):
    """A folder; writes go to a temp file first so readers never see half an object."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} escapes the data root")
        return path

    def _temp(self, path: Path, data: bytes) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return tmp

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            os.replace(self._temp(path, data), path)
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        try:
            tmp = self._temp(path, data)
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc
        try:
            os.link(tmp, path)  # atomic, and fails if the name exists
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc
        finally:
            os.unlink(tmp)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise StorageError(f"read {key}: {exc.strerror or exc}") from exc

    def list(self, prefix: str) -> Iterator[StoredObject]:
        base = self._path(prefix.rsplit("/", 1)[0]) if "/" in prefix else self.root
        if not base.is_dir():
            return
        found = []
        for dirpath, _, files in os.walk(base):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                full = Path(dirpath, name)
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(StoredObject(key, full.stat().st_size))
        yield from sorted(found, key=lambda o: o.key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def describe(self) -> str:
        return str(self.root)


class S3Store(ObjectStore):
    """A bucket and key prefix; the client is built on first use, once per process."""

    CONFLICT_RETRIES = 5

    def __init__(self, bucket: str, prefix: str, client_factory: Callable[[], Any]) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._client_factory = client_factory

    @property
    def client(self) -> Any:
        return self._client_factory()  # clients.py builds each client once

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ClientError as exc:
            raise StorageError(f"{what}: {_error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{what}: {type(exc).__name__}") from exc

    def put(self, key: str, data: bytes) -> None:
        self._call(
            f"put {key}",
            lambda: self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data),
        )

    def create(self, key: str, data: bytes) -> bool:
        for attempt in range(self.CONFLICT_RETRIES):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self.prefix + key, Body=data, IfNoneMatch="*"
                )
                return True
            except ClientError as exc:
                code = _error_code(exc)
                if code == "PreconditionFailed":
                    return False
                if code != "ConditionalRequestConflict":
                    raise StorageError(f"create {key}: {code}") from exc
                # A concurrent conditional write is in flight; its outcome decides ours.
                time.sleep(0.05 * (attempt + 1))
            except BotoCoreError as exc:
                raise StorageError(f"create {key}: {type(exc).__name__}") from exc
        raise StorageError(f"create {key}: ConditionalRequestConflict persisted")

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            body: bytes = response["Body"].read()
            return body
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise StorageError(f"get {key}: {_error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"get {key}: {type(exc).__name__}") from exc

    def list(self, prefix: str) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        cut = len(self.prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield StoredObject(obj["Key"][cut:], obj["Size"])
        except ClientError as exc:
            raise StorageError(f"list {prefix}: {_error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"list {prefix}: {type(exc).__name__}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            return True
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"head {key}: {_error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"head {key}: {type(exc).__name__}") from exc

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))
