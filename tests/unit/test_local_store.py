"""LocalStore.list: keys as S3 would give them, whatever form the root was given in, and at the
cost status can afford at 100,000 shards (each folder read once, kept while unchanged)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from chalicelib.storage import stores
from chalicelib.storage.stores import LocalStore, prefix_span
from chalicelib.storage.together import together


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


def test_keys_come_in_key_order_across_folders_whose_names_prefix_others(
    tmp_path: Path,
) -> None:
    """Folders are walked in key order, not name order: "a/…" sorts after "a-b" and "a.c"
    ("/" is after "-" and "."), before "a0"; a link to a folder is not walked, as os.walk."""
    store = LocalStore(tmp_path)
    names = ["a/x", "a/y/z", "a-b", "a.c", "a0", "a-/q", "b", "a/y-", "a/y/.tmp-9", "a/.tmp-x/k"]
    for key in names:
        store.put(key, b"1")
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    expected = sorted(k for k in names if ".tmp-" not in k)
    assert store.list_keys("") == expected == [o.key for o in store.list("")]
    for prefix in ("a", "a/", "a/y", "a-", "a/y/", "b", "c", "a/x"):
        assert store.list_keys(prefix) == [k for k in expected if k.startswith(prefix)], prefix


def settle(folder: Path, seconds_ago: float) -> None:
    """The folder's modification time, as if its last change were ``seconds_ago``."""
    then = os.stat(folder).st_mtime - seconds_ago
    os.utime(folder, (then, then))


def counted_scandir(monkeypatch: pytest.MonkeyPatch, kinds: bool = False) -> list[str]:
    """The folders read from now on, whole (``os.scandir``) or again (``os.listdir``, a read
    that sorts in what a folder gained); with ``kinds``, each as "whole:<path>" or
    "again:<path>"."""
    reads: list[str] = []

    def counted(kind: str, real: Any) -> Any:
        def read(path: str) -> Any:
            reads.append(f"{kind}:{path}" if kinds else path)
            return real(path)

        return read

    monkeypatch.setattr(os, "scandir", counted("whole", os.scandir))
    monkeypatch.setattr(os, "listdir", counted("again", os.listdir))
    return reads


def test_a_settled_folder_is_read_once_and_again_after_any_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    for k in range(3):
        store.put(f"usage/r/worker~{k}", b"")
    settle(tmp_path / "usage" / "r", 60)
    assert len(store.list_keys("usage/r/")) == 3
    reads = counted_scandir(monkeypatch, kinds=True)
    assert store.list_keys("usage/r/worker~") == [f"usage/r/worker~{k}" for k in range(3)]
    assert store.list_keys("usage/r/compactor~") == []
    assert reads == []  # kept: the folder did not change
    store.put("usage/r/compactor~1", b"")  # a change moves the folder's time
    assert store.list_keys("usage/r/compactor~") == ["usage/r/compactor~1"]
    store.delete("usage/r/worker~0")
    assert store.list_keys("usage/r/worker~") == ["usage/r/worker~1", "usage/r/worker~2"]
    folder = tmp_path / "usage" / "r"
    # A name lost: the read again finds it so, and the folder is read whole.
    assert reads == [f"again:{folder}", f"again:{folder}", f"whole:{folder}"]


def test_a_folder_changed_lately_is_read_every_time(tmp_path: Path) -> None:
    """A change in the same clock tick as the one before leaves the folder's time as it was:
    a folder read less than a second after a change is not kept, so such a change is seen."""
    store = LocalStore(tmp_path)
    store.put("runs/r/a", b"")
    folder = tmp_path / "runs" / "r"
    stamp = os.stat(folder).st_mtime_ns
    assert store.list_keys("runs/r/") == ["runs/r/a"]
    store.put("runs/r/b", b"")
    os.utime(folder, ns=(stamp, stamp))  # the second change in the first one's tick
    assert store.list_keys("runs/r/") == ["runs/r/a", "runs/r/b"]


def test_a_growing_folder_is_read_again_with_only_its_new_names_sorted_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running run's outcomes folder, polled: each read after a change lists the folder and
    sorts in the names it gained, and gives exactly what a whole read gives (temp files left
    out, in key order), whether or not the last read could answer on its own."""
    store = LocalStore(tmp_path)
    folder = tmp_path / "o" / "r"
    rng = random.Random(5)
    shards = rng.sample(range(10_000), 600)
    for k in shards[:200]:
        store.put(f"o/r/shard-{k:06d}", b"")
    assert len(store.list_keys("o/r/")) == 200
    reads = counted_scandir(monkeypatch, kinds=True)
    for step in range(1, 5):
        for k in shards[100 * step + 100 : 100 * step + 200]:
            store.put(f"o/r/shard-{k:06d}", b"")
        (folder / f".tmp-{step}").write_bytes(b"")  # a write under way
        if step % 2:
            settle(folder, 60)
        listed = store.list_keys("o/r/shard-")
        assert listed == sorted(f"o/r/shard-{k:06d}" for k in shards[: 100 * step + 200])
        assert listed == [o.key for o in LocalStore(tmp_path).list("o/r/")]  # a fresh store's
    assert reads == [f"again:{folder}", f"whole:{folder}"] * 4


@pytest.mark.parametrize("change", ["lost a name", "gained a folder", "gained a link"])
def test_a_folder_that_lost_a_name_or_gained_anything_but_a_file_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    store = LocalStore(tmp_path)
    for k in range(3):
        store.put(f"o/r/{k}", b"")
    assert len(store.list_keys("o/r/")) == 3
    reads = counted_scandir(monkeypatch, kinds=True)
    folder = tmp_path / "o" / "r"
    store.put("o/r/3", b"")
    if change == "lost a name":
        store.delete("o/r/0")
        expected = ["o/r/1", "o/r/2", "o/r/3"]
    elif change == "gained a folder":
        store.put("o/r/4/inner", b"")
        expected = ["o/r/0", "o/r/1", "o/r/2", "o/r/3", "o/r/4/inner"]
    else:  # a link to a folder is not walked, as os.walk does not
        (tmp_path / "elsewhere").mkdir()
        (folder / "4").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        expected = ["o/r/0", "o/r/1", "o/r/2", "o/r/3"]
    assert store.list_keys("o/r/") == expected
    assert f"whole:{folder}" in reads


def test_prefix_span_finds_exactly_the_names_under_a_prefix_after_a_start() -> None:
    rng = random.Random(3)
    alphabet = ["a", "b", "-", "/", "~", "\U0010ffff"]
    names = sorted({"".join(rng.choices(alphabet, k=rng.randrange(1, 6))) for _ in range(400)})
    for _ in range(300):
        prefix = "".join(rng.choices(alphabet, k=rng.randrange(0, 3)))
        after = rng.choice(["", *names])
        at, end = prefix_span(names, prefix, after)
        assert names[at:end] == [n for n in names if n.startswith(prefix) and n > after]


def test_a_folder_store_runs_an_issued_read_once_when_first_waited_for(tmp_path: Path) -> None:
    """``together`` on a store that gains nothing from threads: a read nobody waits for is
    never made (status's compactor listing, for a running run), one waited for is made once,
    and its error comes back on every wait."""
    ran: list[str] = []

    def read(name: str, fail: bool = False) -> str:
        ran.append(name)
        if fail:
            raise KeyError(name)
        return name

    with together(LocalStore(tmp_path)) as issue:
        unused = issue(lambda: read("unused"))
        used = issue(lambda: read("used"))
        failing = issue(lambda: read("failing", fail=True))
        assert ran == []
        assert used() == used() == "used"
        for _ in range(2):
            with pytest.raises(KeyError):
                failing()
    assert ran == ["used", "failing"] and unused is not None


def test_the_kept_folders_are_bounded_least_recently_used_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores, "_KEPT_ENTRIES", 5)
    store = LocalStore(tmp_path)
    for folder in ("a", "b"):
        for k in range(3):
            store.put(f"x/{folder}/{k}", b"")
        settle(tmp_path / "x" / folder, 60)
    reads = counted_scandir(monkeypatch)
    store.list_keys("x/a/")
    store.list_keys("x/b/")  # 6 entries kept: over the bound, "a" goes
    assert store.list_keys("x/b/") == ["x/b/0", "x/b/1", "x/b/2"]
    assert store.list_keys("x/a/") == ["x/a/0", "x/a/1", "x/a/2"]
    assert [Path(p).name for p in reads] == ["a", "b", "a"] and store._kept <= 5
