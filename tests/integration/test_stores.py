"""Both stores keep the promises the worker builds on: create-if-absent never overwrites,
listings are complete and ordered (past S3's 1,000-key pages), keys cannot escape the root."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from chalicelib.storage.stores import LocalStore, ObjectStore, S3Store


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
