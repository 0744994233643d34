"""LocalStore.list: keys as S3 would give them, whatever form the root was given in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chalicelib.storage.stores import LocalStore


@pytest.mark.parametrize("relative", [False, True])
def test_list_gives_sorted_keys_under_a_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalStore(Path("data") if relative else tmp_path / "data")
    for key in ("runs/b/x.json", "runs/a/m.json", "runs/ab/n.json", "outcomes/k=v/s.parquet"):
        store.put(key, b"1")
    (tmp_path / "data" / "runs" / "a" / ".tmp-half").write_bytes(b"")
    assert [o.key for o in store.list("runs/a")] == ["runs/a/m.json", "runs/ab/n.json"]
    assert [o.key for o in store.list("runs/a/")] == ["runs/a/m.json"]
    assert [o.key for o in store.list("")] == [
        "outcomes/k=v/s.parquet",
        "runs/a/m.json",
        "runs/ab/n.json",
        "runs/b/x.json",
    ]
    assert list(store.list("nothing/here")) == []
    assert os.sep == "/" or all("\\" not in o.key for o in store.list(""))
