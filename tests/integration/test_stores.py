"""Both stores keep the promises the worker builds on: create-if-absent never overwrites,
listings are complete and ordered (past S3's 1,000-key pages), keys cannot escape the root."""

from __future__ import annotations

import itertools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chalicelib.storage.pacing import PacedStore
from chalicelib.storage.stores import CountingStore, LocalStore, ObjectStore, S3Store


def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [obj.key for obj in store.list(prefix)]


def test_create_does_not_overwrite(store: ObjectStore) -> None:
    assert store.create("runs/x/a.json", b"first") is True
    assert store.create("runs/x/a.json", b"second") is False
    assert store.get("runs/x/a.json") == b"first"
    store.put("runs/x/a.json", b"third")
    assert store.get("runs/x/a.json") == b"third"
    assert store.exists("runs/x/a.json") and not store.exists("runs/x/b.json")
    with pytest.raises(KeyError):
        store.get("runs/x/b.json")


def test_listing_is_by_prefix_and_in_key_order(store: ObjectStore) -> None:
    for key in ("b/2", "a/1", "b/10", "b2/x", "c"):
        store.put(key, key.encode())
    assert keys(store, "b/") == ["b/10", "b/2"]
    assert keys(store, "b") == ["b/10", "b/2", "b2/x"]
    assert keys(store) == ["a/1", "b/10", "b/2", "b2/x", "c"]
    assert keys(store, "zzz/") == []


def test_get_file_writes_the_object_to_a_file_and_counts_one_read(
    store: ObjectStore, tmp_path: Path
) -> None:
    """``get_file`` (a reuse plan, read as the worker goes) gives the bytes ``get`` gives, over
    a file already there, leaves the object as it was, counts one read, and raises KeyError
    for an absent key."""
    data = bytes(range(256)) * 20_000  # 5 MB: more than one streamed chunk
    store.put("runs/x/plan.parquet", data)
    target = tmp_path / "plan.parquet"
    target.write_bytes(b"stale")
    counting = CountingStore(PacedStore(store))
    counting.get_file("runs/x/plan.parquet", target)
    assert target.read_bytes() == data and counting.reads == 1
    assert store.get("runs/x/plan.parquet") == data
    target.unlink()
    assert store.get("runs/x/plan.parquet") == data
    with pytest.raises(KeyError):
        counting.get_file("runs/x/absent.parquet", tmp_path / "absent.parquet")


def test_s3_listing_pages_past_1000_keys(s3_store: S3Store) -> None:
    client = s3_store.client
    for k in range(1100):
        client.put_object(Bucket=s3_store.bucket, Key=f"sweeps/test/many/{k:05d}", Body=b"x")
    client.put_object(Bucket=s3_store.bucket, Key="sweeps/other/many/00000", Body=b"x")
    pages = itertools.count()

    def count(**_: Any) -> None:
        next(pages)

    client.meta.events.register("after-call.s3.ListObjectsV2", count)
    listed = keys(s3_store, "many/")
    assert next(pages) >= 2  # really more than one page
    assert listed == [f"many/{k:05d}" for k in range(1100)]


def test_local_store_rejects_keys_escaping_the_root(local_store: LocalStore) -> None:
    for key in ("../outside", "runs/../../outside", "/etc/passwd"):
        with pytest.raises(ValueError, match="escapes"):
            local_store.put(key, b"x")
        with pytest.raises(ValueError, match="escapes"):
            local_store.create(key, b"x")
        with pytest.raises(ValueError, match="escapes"):
            local_store.get(key)
    assert not (local_store.root.parent / "outside").exists()


def test_local_store_hides_temporary_files(local_store: LocalStore) -> None:
    local_store.put("runs/r/a", b"1")
    (local_store.root / "runs/r/.tmp-abc").write_bytes(b"partial")
    assert keys(local_store, "runs/") == ["runs/r/a"]


# -- a conditional create whose first response was lost --------------------------------------


def lose_first_response(client: Any, operation: str) -> list[int]:
    """The first ``operation`` reaches S3 (moto stores the object) but its answer is lost:
    botocore retries it, as it does after a dropped connection. Returns the attempts seen."""
    seen: list[int] = []

    def needs_retry(attempts: int, **_: Any) -> int | None:
        seen.append(attempts)
        return 0 if len(seen) == 1 else None  # retry at once, the first time only

    client.meta.events.register_first(f"needs-retry.s3.{operation}", needs_retry)
    return seen


def test_a_retried_create_that_finds_its_own_object_created_it(s3_store: S3Store) -> None:
    seen = lose_first_response(s3_store.client, "PutObject")
    assert s3_store.create("runs/x/manifest.json", b"mine") is True
    assert seen == [1, 2]  # really retried, and the retry got 412 for the first try's object
    assert s3_store.get("runs/x/manifest.json") == b"mine"


def test_a_retried_create_that_finds_another_object_lost(s3_store: S3Store) -> None:
    assert s3_store.create("runs/x/claim", b"theirs") is True
    lose_first_response(s3_store.client, "PutObject")
    assert s3_store.create("runs/x/claim", b"mine") is False


def test_a_stored_manifest_is_a_run_even_if_its_response_was_lost(s3_store: S3Store) -> None:
    from datetime import UTC, datetime

    from chalicelib.model.manifest import Manifest
    from chalicelib.model.request import Limits
    from chalicelib.model.validation import validate_request
    from chalicelib.storage import manifests
    from tests.support import CONTRACT_EXAMPLE

    request = validate_request(CONTRACT_EXAMPLE, None)
    limits = Limits(max_points=10**6, max_shards=100, allow_fault_injection=False)
    manifest = Manifest.new("lost-response-run", datetime.now(UTC), "dev", request, limits)
    lose_first_response(s3_store.client, "PutObject")
    manifests.save(s3_store, manifest)  # was: "already has a manifest" -> a 500
    assert manifests.load(s3_store, manifest.run_id).run_id == manifest.run_id


def test_a_failure_whose_response_was_lost_is_recorded_once(s3_store: S3Store) -> None:
    from datetime import UTC, datetime

    from chalicelib.execution.failure_codes import FailureCode
    from chalicelib.execution.outcomes import OutcomeWriter, ShardRef, Timing

    ref = ShardRef("run-lost-response", 3, "2026-12-01", 0, 10, "monte_carlo_pi")
    writer = OutcomeWriter(s3_store)
    lose_first_response(s3_store.client, "PutObject")
    t = datetime.now(UTC)
    attempt = writer.record_failure(ref, FailureCode.INJECTED_FAILURE, "boom", Timing(t, t), "r")
    assert attempt == 1
    failed = [o.key for o in s3_store.list("outcomes/") if "status=failed" in o.key]
    assert len(failed) == 1, failed  # was: a second, duplicate attempt


def _race(store: ObjectStore, key: str, writers: int) -> list[bool]:
    """``writers`` threads creating ``key`` at once, each with its own bytes."""
    barrier = threading.Barrier(writers)

    def create(i: int) -> bool:
        barrier.wait()
        return store.create(key, f"writer {i}".encode())

    with ThreadPoolExecutor(writers) as pool:
        return list(pool.map(create, range(writers)))


def test_one_of_many_racing_creates_wins(s3_store: S3Store, local_store: LocalStore) -> None:
    """Eight threads creating each key at once, switching threads every microsecond: exactly
    one create per key wins, on S3 (through moto, whose conditional write is made atomic as
    S3's is: ``moto_gaps.atomic_object_writes``; without it 21 of 100 keys had more than one
    winner here) and on a folder."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for store in (s3_store, local_store):
            for k in range(60):
                wins = _race(store, f"race/{k}", 8)
                assert wins.count(True) == 1, (type(store).__name__, k, wins)
                assert store.get(f"race/{k}") == f"writer {wins.index(True)}".encode()
    finally:
        sys.setswitchinterval(interval)


def test_moto_s3_requests_in_threads_never_meet_a_reload_half_done(
    s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's S3 reloads ``moto.s3.urls`` on every request, and a reload takes the module out
    of ``sys.modules`` and puts it back (``importlib._bootstrap._exec``), while another reload
    first checks that it is there. Here each reload's window is held open for 20 ms, so two
    threads' requests meet in it unless reloads go one at a time
    (``moto_gaps.serial_url_reloads``, installed for every test by the session fixture)."""
    import importlib

    import moto.s3.models

    def reload(module: ModuleType) -> ModuleType:
        """importlib.reload's check, then _exec's window, held open."""
        name = module.__name__
        if sys.modules.get(name) is not module:
            raise ImportError(f"module {name} not in sys.modules")
        sys.modules.pop(name)
        threading.Event().wait(0.02)
        sys.modules[name] = module
        return importlib.reload(module)

    monkeypatch.setattr(moto.s3.models, "reload", reload)
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda k: s3_store.exists(f"absent/{k}"), range(8)))
    assert found == [False] * 8


@pytest.mark.parametrize(("keys", "pages"), [(0, 1), (1, 1), (1000, 1), (1001, 2), (2000, 2)])
def test_a_listing_is_counted_as_the_pages_s3_makes(
    local_store: LocalStore, keys: int, pages: int
) -> None:
    """A LIST page is priced as a write: 1,000 keys are one page (S3 answers IsTruncated
    false), not two; an empty listing is still a request."""
    for i in range(keys):
        local_store.put(f"k/{i:05d}", b"")
    counting = CountingStore(local_store)
    assert sum(1 for _ in counting.list("k/")) == keys
    assert (counting.reads, counting.writes) == (0, pages)
