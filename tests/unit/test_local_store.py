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


@pytest.mark.parametrize("rename", [True, False], ids=["renameat2", "link"])
def test_writes_step_over_a_temp_name_a_dead_process_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rename: bool
) -> None:
    """Temp names are the process id and a counter: one left by a dead process of the same
    id is skipped, never overwritten or linked in; folders are made as writes need them. A
    conditional create is one no-replace rename where the system has it, else a hard link:
    the same answers either way."""
    from chalicelib.storage import stores

    if not rename:
        monkeypatch.setattr(stores, "_renameat2", lambda: None)
    elif stores._renameat2() is None:
        pytest.skip("no renameat2 here")
    store = LocalStore(tmp_path)
    folder = tmp_path / "runs" / "r1" / "success"
    folder.mkdir(parents=True)
    left = folder / f".tmp-{os.getpid()}-0"
    left.write_bytes(b"stale")
    monkeypatch.setattr(stores, "_TEMP_NAMES", iter(range(100)))
    assert store.create("runs/r1/success/shard-000001.json", b'{"attempt": 1}')
    store.put("runs/r1/deep/er/still/x.json", b"x")  # folders made on the first write
    assert store.get("runs/r1/success/shard-000001.json") == b'{"attempt": 1}'
    assert store.get("runs/r1/deep/er/still/x.json") == b"x"
    assert left.read_bytes() == b"stale"
    assert not store.create("runs/r1/success/shard-000001.json", b'{"attempt": 2}')
    # No temp file of ours is left behind, whatever the outcome of each write.
    assert sorted(p.name for p in tmp_path.rglob(".tmp-*")) == [left.name]
