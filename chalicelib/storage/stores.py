"""Where objects live: an S3 bucket/prefix on AWS, a folder on the local stage.

Both give the same guarantees the worker relies on: ``create`` is an atomic create-if-absent
(S3 ``If-None-Match: *``; locally a no-replace rename, or a hard link), listings are complete
(paginated), and every failure surfaces as ``StorageError`` after the store's own retries.

``create`` answers "does the key now hold exactly my bytes?", not "did this very request make
it": botocore retries a PutObject whose response was lost, and the retry gets 412 for the object
its own first try wrote (aws-facts). So a 412 is followed by a read, and equal bytes count as
created. Writers whose claim must be exclusive put something unique in it (a token).
"""

from __future__ import annotations

import bisect
import ctypes
import errno
import functools
import itertools
import os
import shutil
import stat as stat_module
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws


class StorageError(Exception):
    """The store failed after its own retries; the attempt is worth retrying later."""


class SlowDown(StorageError):
    """The store is throttling this prefix (S3's 503 SlowDown): try again after a pause
    (``storage.pacing``)."""


# S3's answers to a request rate above what a prefix sustains yet.
SLOW_DOWN_CODES = frozenset({"SlowDown", "503", "RequestLimitExceeded"})


@dataclass(frozen=True)
class StoredObject:
    key: str


# Keys (or a folder's names), named so inside the stores, whose ``list`` method hides the type.
Keys = list[str]


def prefix_span(names: Keys, prefix: str, after: str = "") -> tuple[int, int]:
    """Where the names that start with ``prefix`` and sort after ``after`` are in sorted
    ``names``: two bisections, as S3 starts a listing at its key (a walk over the names
    before would cost what S3 does not). The names from ``prefix`` up to the prefix with its
    last character's successor are exactly those that start with it."""
    at = max(bisect.bisect_left(names, prefix), bisect.bisect_right(names, after))
    if not prefix:
        return at, len(names)
    if ord(prefix[-1]) == sys.maxunicode:  # no successor: the names starting so are few
        end = at
        while end < len(names) and names[end].startswith(prefix):
            end += 1
        return at, end
    return at, max(at, bisect.bisect_left(names, prefix[:-1] + chr(ord(prefix[-1]) + 1), at))


class ObjectStore(ABC):
    # How many requests (listings, reads) are worth running at once: one for a folder (the
    # work is CPU-bound and the GIL serialises it), more for a store where each is a round trip.
    request_parallelism = 1

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write or overwrite."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Write only if absent. True when the key now holds ``data`` (written by this call or
        by a retry of it); False when it holds other bytes."""

    def _holds(self, key: str, data: bytes) -> bool:
        """After "already exists": is the stored object the one this create meant to write?"""
        try:
            return self.get(key) == data
        except KeyError:  # deleted since (bookkeeping keys are): someone else's, and gone
            return False

    def create_file(self, key: str, path: Path) -> bool:
        """``create`` from a file, so a large object is never held in memory whole (the local
        folder links it; S3 streams it)."""
        return self.create(key, path.read_bytes())

    def scratch(self) -> Path:
        """A folder for files on their way into ``create_file``."""
        return Path(tempfile.gettempdir())

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Read; KeyError when absent."""

    def get_file(self, key: str, path: Path) -> None:
        """``get`` into the file ``path`` (made or overwritten), so a large object is never
        held in memory whole (the local folder links or copies it; S3 streams it); KeyError
        when absent."""
        path.write_bytes(self.get(key))

    @abstractmethod
    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix``, in key order."""

    def list_keys(self, prefix: str) -> Keys:
        """The keys of ``list(prefix)``: where a store has them without building objects
        (a folder), status's 100,000-key listings skip that."""
        return [obj.key for obj in self.list(prefix)]

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove if present (absent is not an error: bookkeeping keys are deleted twice)."""

    def delete_many(self, keys: Iterable[str]) -> None:
        """``delete`` each key; a store that can remove many in one request does (S3: 1,000)."""
        for key in keys:
            self.delete(key)

    def list_after(self, prefix: str, start_after: str) -> Iterator[StoredObject]:
        """Objects under ``prefix`` whose keys sort after ``start_after``: one page of an
        index without walking what came before (S3 starts the listing there)."""
        return (o for o in self.list(prefix) if o.key > start_after)

    def list_range(
        self, prefix: str, after: str | None, until: str | None
    ) -> Iterator[StoredObject]:
        """Objects under ``prefix`` with ``after < key <= until`` (None: unbounded), in key
        order: one slice of a listing, so several slices can be listed at once. On S3 the
        listing starts at ``after`` (``list_after``: StartAfter) and stops paging at ``until``,
        so a slice costs the pages it holds, not the pages before it."""
        listing = self.list(prefix) if after is None else self.list_after(prefix, after)
        for obj in listing:
            if until is not None and obj.key > until:
                return
            yield obj

    @abstractmethod
    def describe(self) -> str:
        """Where the data is, for people and for the query engines."""


# A local store's temp files: always a new name, closed on exec.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_TEMP_NAMES = itertools.count()
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


@functools.cache
def _renameat2() -> Any:
    """Linux's ``renameat2`` from the C library (glibc >= 2.28), or None."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _rename_noreplace(tmp: str, path: str) -> bool | None:
    """Move ``tmp`` to ``path`` unless ``path`` exists (then ``tmp`` is removed): True when
    moved, False when the name was taken, None when this system cannot (then ``tmp`` stays).

    One atomic rename is the whole conditional create: the kernel does a third of the work of
    a hard link and an unlink (measured here: ~65 against ~230 us of system time), on a
    local stage that creates three objects a shard."""
    rename = _renameat2()
    if rename is None:
        return None
    if rename(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(path), _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not on this file system
        return None
    os.unlink(tmp)
    if code == errno.EEXIST:
        return False
    raise OSError(code, os.strerror(code), path)


# How long after a folder's last change its entries may be kept (``LocalStore._entries``): far
# beyond the file system's clock tick (jiffies; 1-10 ms).
_SETTLED_NS = 1_000_000_000
# Entries kept over every folder, least recently used dropped first: a 100,000-shard run's
# usage folder is 100,000 names (~13 MB), and a complete run's status keeps only that one.
_KEPT_ENTRIES = 300_000


@dataclass(frozen=True)
class _Read:
    """One read of a folder (``LocalStore._entries``): its entries in key order, whether any
    is a folder, the entries as a set when none is (what the next read is compared with), the
    folder's (inode, modification time) before the read, and whether the read began long
    enough after that time to answer while it holds."""

    entries: Keys
    folders: bool
    names: frozenset[str]
    stamp: tuple[int, int] = (0, 0)
    settled: bool = False


def _read(path: str) -> _Read:
    """A folder read whole."""
    with os.scandir(path) as it:
        found = list(it)
    # A few tight passes over a leaf's 100,000 entries; the folders' are few.
    entries = [e.name for e in found]
    walked = {e.name: not e.is_symlink() for e in found if e.is_dir()}
    if walked:  # as os.walk: a link to a folder is not walked (nor is it a key)
        entries = [n + "/" if walked.get(n) else n for n in entries if walked.get(n, True)]
    entries.sort()
    temp = bisect.bisect_left(entries, ".tmp-")  # temp files sort together: cut them out
    del entries[temp : bisect.bisect_left(entries, ".tmp.", temp)]
    folders = any(walked.values())
    return _Read(entries, folders, frozenset() if folders else frozenset(entries))


def _read_again(path: str, last: _Read) -> _Read | None:
    """A folder of files read again after it changed: its names compared with the last read's
    as sets, and the names it gained (a few hundred between two polls of a running run)
    sorted in: half the work of a whole read, most of it the kernel's listing. None, for a
    whole read instead, when the folder had a folder or gained anything but a file, or lost a
    name (a clean-up). A name in both reads is taken to be the same file: a key is never a
    folder, and one deleted and made again between two reads is the same key."""
    if last.folders:
        return None
    current = set(os.listdir(path))
    if not last.names <= current:
        return None
    gained = sorted(n for n in current - last.names if not n.startswith(".tmp-"))
    for name in gained:  # a folder or a link (maybe to one): read whole, as ``_read`` sorts
        try:
            if not stat_module.S_ISREG(os.lstat(os.path.join(path, name)).st_mode):
                return None
        except FileNotFoundError:  # gone again
            return None
    entries = last.entries + gained
    entries.sort()  # two sorted runs: one merge
    return _Read(entries, False, last.names.union(gained))


class LocalStore(ObjectStore):
    """A folder; writes go to a temp file first so readers never see half an object."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._base = os.path.abspath(root)
        # Folders' last reads (``_entries``), least recently used first.
        self._folders: OrderedDict[str, _Read] = OrderedDict()
        self._kept = 0
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        """The key's file. Checked by string operations (``normpath``), not ``resolve``: a
        worker maps about ten keys a shard, and resolving each (a ``stat`` per component)
        cost more than the rest of the store's Python. A key is ours to name, so ``..`` and
        absolute keys are what is refused; links inside the root are the user's choice."""
        path = os.path.normpath(os.path.join(self._base, key))
        if path != self._base and not path.startswith(self._base + os.sep):
            raise ValueError(f"key {key!r} escapes the data root")
        return path

    def _temp(self, path: str, data: bytes) -> str:
        """``data`` in a new hidden file beside ``path``, named by process and counter (no
        random name to draw). The folder is made when the first write into it finds it
        missing, not asked for on every write."""
        folder = os.path.dirname(path)
        while True:
            tmp = f"{folder}/.tmp-{os.getpid()}-{next(_TEMP_NAMES)}"
            try:
                fd = os.open(tmp, _NEW_FILE, 0o600)
                break
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            except FileExistsError:  # left by a dead process of the same pid
                continue
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def put(self, key: str, data: bytes) -> None:
        path = self._file(key)
        try:
            os.replace(self._temp(path, data), path)
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc

    def create(self, key: str, data: bytes) -> bool:
        path = self._file(key)
        try:
            tmp = self._temp(path, data)
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc
        try:
            moved = _rename_noreplace(tmp, path)
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc
        if moved is not None:
            return moved or self._holds(key, data)
        try:
            os.link(tmp, path)  # atomic, and fails if the name exists
            return True
        except FileExistsError:
            return self._holds(key, data)
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc
        finally:
            os.unlink(tmp)

    def create_file(self, key: str, path: Path) -> bool:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc
        try:
            os.link(path, target)  # atomic, fails if the name exists, copies nothing
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(f"write {key}: {exc.strerror or exc}") from exc

    def scratch(self) -> Path:
        """The data root itself (files named ``.tmp-…``, which listings skip): a link into the
        store never crosses file systems."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise StorageError(f"read {key}: {exc.strerror or exc}") from exc

    def get_file(self, key: str, path: Path) -> None:
        source = self._file(key)
        try:
            path.unlink(missing_ok=True)
            try:  # an object is replaced, never changed in place: a link is a copy
                os.link(source, path)
            except FileNotFoundError:
                raise
            except OSError:  # another file system, or one without links
                shutil.copyfile(source, path)
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise StorageError(f"read {key}: {exc.strerror or exc}") from exc

    def list(self, prefix: str) -> Iterator[StoredObject]:
        return map(StoredObject, self.list_keys(prefix))

    def list_keys(self, prefix: str) -> Keys:
        """Every key under ``prefix``, in key order, from one read of each folder the prefix
        reaches (``_entries``); only the last folder's names are compared with the prefix."""
        folder, _, start = prefix.rpartition("/")
        path = self._file(folder) if folder else self._base
        entries, folders = self._entries(path)
        at, end = prefix_span(entries, start)
        found: Keys = []
        self._walk(path, folder + "/" if folder else "", entries[at:end], folders, found)
        return found

    def _walk(self, path: str, head: str, entries: Keys, folders: bool, found: Keys) -> None:
        """The keys under ``entries`` of the folder ``path`` (whose keys start ``head``);
        ``folders``: whether any entry is a folder."""
        if not folders:  # the usual leaf: a folder of files
            found += map(head.__add__, entries)
            return
        for entry in entries:
            if entry.endswith("/"):
                inner = f"{path}/{entry[:-1]}"
                self._walk(inner, head + entry, *self._entries(inner), found)
            else:
                found.append(head + entry)

    def _entries(self, path: str) -> tuple[Keys, bool]:
        """A folder's entries in key order: a file as its name, a folder as its name and a
        "/", as its keys sort, so walking the folders in this order yields keys in key order
        with no sort of whole keys; and whether any is a folder. Temp files are left out; a
        missing folder has none.

        A folder's last read is kept (``_Read``). It is the answer while the folder's
        modification time stays what it was: the kernel sets it on every create, rename or
        delete in the folder, so a complete run's folders (its 100,000 usage records) are read
        once, not on every status. Only a read that began ``_SETTLED_NS`` after the last change
        answers so: a change in the same clock tick as the one before it would not move the
        time (the "racy git" case), and no change can come that long after one without moving
        it. A folder that changed is read again, and only the names it gained are sorted in
        (``_read_again``): a running run's status reads its two growing folders (outcomes,
        usage records) on every poll."""
        began = time.time_ns()
        try:
            stat = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return [], False
        stamp = (stat.st_ino, stat.st_mtime_ns)
        with self._lock:
            last = self._folders.get(path)
            if last is not None and last.settled and last.stamp == stamp:
                self._folders.move_to_end(path)
                return last.entries, last.folders
        try:
            read = (None if last is None else _read_again(path, last)) or _read(path)
        except (FileNotFoundError, NotADirectoryError):
            return [], False
        read = replace(read, stamp=stamp, settled=began - stat.st_mtime_ns > _SETTLED_NS)
        with self._lock:
            old = self._folders.pop(path, None)
            self._kept += len(read.entries) - (len(old.entries) if old else 0)
            self._folders[path] = read
            while self._kept > _KEPT_ENTRIES and len(self._folders) > 1:
                self._kept -= len(self._folders.popitem(last=False)[1].entries)
        return read.entries, read.folders

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"delete {key}: {exc.strerror or exc}") from exc

    def describe(self) -> str:
        return str(self.root)


class S3Store(ObjectStore):
    """A bucket and key prefix; the client is built on first use, once per process."""

    CONFLICT_RETRIES = 5
    DELETE_BATCH = 1000  # DeleteObjects' most keys a request
    request_parallelism = 32  # the client's connection pool (aws.s3)

    def __init__(self, bucket: str, prefix: str, client_factory: Callable[[], Any]) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._client_factory = client_factory

    @property
    def client(self) -> Any:
        return self._client_factory()  # aws.py builds each client once

    def _call(self, what: str, fn: Callable[[], Any], expected: tuple[str, ...] = ()) -> Any:
        """Run one S3 call. An error code in ``expected`` is the caller's to handle
        (``_Answered``); every other failure is a ``StorageError`` naming the call."""
        try:
            return fn()
        except ClientError as exc:
            if (code := aws.error_code(exc)) in expected:
                raise _Answered(code) from None
            if code in SLOW_DOWN_CODES:
                raise SlowDown(f"{what}: {aws.describe(exc)}") from exc
            raise StorageError(f"{what}: {aws.describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{what}: {aws.describe(exc)}") from exc

    def put(self, key: str, data: bytes) -> None:
        self._call(
            f"put {key}",
            lambda: self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data),
        )

    def create(self, key: str, data: bytes) -> bool:
        return self._create(key, lambda: data, lambda: data)

    def create_file(self, key: str, path: Path) -> bool:
        with path.open("rb") as f:  # botocore streams a file (and rewinds it on its retries)

            def body() -> Any:
                f.seek(0)
                return f

            return self._create(key, body, path.read_bytes)

    def _create(self, key: str, body: Callable[[], Any], meant: Callable[[], bytes]) -> bool:
        """``meant`` gives the bytes this create writes, read only after a 412 (``_holds``)."""
        for attempt in range(self.CONFLICT_RETRIES):
            try:
                self._call(
                    f"create {key}",
                    lambda: self.client.put_object(
                        Bucket=self.bucket, Key=self.prefix + key, Body=body(), IfNoneMatch="*"
                    ),
                    expected=("PreconditionFailed", "ConditionalRequestConflict"),
                )
                return True
            except _Answered as answer:
                if answer.code == "PreconditionFailed":
                    return self._holds(key, meant())
            # A concurrent conditional write is in flight; its outcome decides ours.
            time.sleep(0.05 * (attempt + 1))
        raise StorageError(f"create {key}: ConditionalRequestConflict persisted")

    def get(self, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            body: bytes = response["Body"].read()
            return body

        try:
            data: bytes = self._call(f"get {key}", read, expected=("NoSuchKey", "404"))
            return data
        except _Answered:
            raise KeyError(key) from None

    def get_file(self, key: str, path: Path) -> None:
        def read() -> None:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            with path.open("wb") as f:  # the body streamed a megabyte at a time
                shutil.copyfileobj(response["Body"], f, 1 << 20)

        try:
            self._call(f"get {key}", read, expected=("NoSuchKey", "404"))
        except _Answered:
            raise KeyError(key) from None

    def list(self, prefix: str) -> Iterator[StoredObject]:
        return self._list(prefix, {})

    def list_after(self, prefix: str, start_after: str) -> Iterator[StoredObject]:
        return self._list(prefix, {"StartAfter": self.prefix + start_after})

    def _list(self, prefix: str, extra: dict[str, str]) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix, **extra))
        cut = len(self.prefix)
        while (page := self._call(f"list {prefix}", lambda: next(pages, None))) is not None:
            for obj in page.get("Contents", []):
                yield StoredObject(obj["Key"][cut:])

    def exists(self, key: str) -> bool:
        try:
            self._call(
                f"head {key}",
                lambda: self.client.head_object(Bucket=self.bucket, Key=self.prefix + key),
                expected=("404", "NoSuchKey", "NotFound"),
            )
            return True
        except _Answered:
            return False

    def delete(self, key: str) -> None:
        self._call(
            f"delete {key}",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key),
        )

    def delete_many(self, keys: Iterable[str]) -> None:
        """DeleteObjects, 1,000 keys a request, one request at a time: a compaction's clean-up
        removes a results file a shard, 100,000 for a 100,000-shard run, which one DELETE
        each (~20 ms) would take over half an hour to issue. S3 answers an absent key as
        deleted. A key it could not delete fails the call (the clean-up runs again)."""
        for batch in itertools.batched(keys, self.DELETE_BATCH):
            answer = self._call(f"delete {len(batch)} keys from {batch[0]}", self._deleting(batch))
            if errors := answer.get("Errors"):
                first = errors[0]
                raise StorageError(
                    f"delete {first.get('Key')}: {first.get('Code')} {first.get('Message', '')}"
                    f" ({len(errors)} of {len(batch)} keys not deleted)"
                )

    def _deleting(self, keys: tuple[str, ...]) -> Callable[[], Any]:
        objects = [{"Key": self.prefix + key} for key in keys]
        return lambda: self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
        )

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class CountingStore(ObjectStore):
    """Another store, counting the requests S3 would bill for what is asked of it: a write
    request per put, create and page of a listing (1,000 keys), a read request per get and
    head; deletes are free. A run's cost (outcomes' ``s3_requests``, usage records) comes from
    it, on the local stage as on AWS."""

    PAGE = 1000

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.request_parallelism = inner.request_parallelism
        self.reads = 0
        self.writes = 0
        # Requests may be made from several threads at once (``together.read_ahead``).
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        return self.reads + self.writes

    def _read(self) -> None:
        with self._lock:
            self.reads += 1

    def _write(self) -> None:
        with self._lock:
            self.writes += 1

    def put(self, key: str, data: bytes) -> None:
        self._write()
        self.inner.put(key, data)

    def create(self, key: str, data: bytes) -> bool:
        self._write()
        return self.inner.create(key, data)

    def create_file(self, key: str, path: Path) -> bool:
        self._write()
        return self.inner.create_file(key, path)  # streamed by the inner store, never read whole

    def scratch(self) -> Path:
        return self.inner.scratch()

    def get(self, key: str) -> bytes:
        self._read()
        return self.inner.get(key)

    def get_file(self, key: str, path: Path) -> None:
        self._read()
        self.inner.get_file(key, path)  # streamed by the inner store, never held whole

    def exists(self, key: str) -> bool:
        self._read()
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        self.inner.delete_many(keys)

    def list(self, prefix: str) -> Iterator[StoredObject]:
        return self._paged(self.inner.list(prefix))

    def list_after(self, prefix: str, start_after: str) -> Iterator[StoredObject]:
        return self._paged(self.inner.list_after(prefix, start_after))

    def _paged(self, objects: Iterator[StoredObject]) -> Iterator[StoredObject]:
        """A listing's pages as S3 makes them: the first whatever it holds, and another as each
        page's first key comes (1,000 keys are one page, not two)."""
        self._write()
        for n, obj in enumerate(objects):
            if n and n % self.PAGE == 0:
                self._write()
            yield obj

    def describe(self) -> str:
        return self.inner.describe()


class _Answered(Exception):
    """An S3 error code that answers the caller's question (absent, exists, lost a race)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
