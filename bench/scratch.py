"""Where ``make bench`` puts the benchmarks' temporary folders (the local stage's data roots).

A tmpfs (``/dev/shm``) when the machine has one with room, because a disk's cost of creating a
file can depend on what was deleted there minutes before, which is not ours to measure. On the
VM these figures come from, the root file system is ext4 without a journal
(``/proc/fs/jbd2`` is empty), and ext4 without a journal will not reuse an inode freed in the
last 60 s (300 s more while its inode table block is dirty): each new file scans past every
such inode (the kernel's ``recently_deleted``). After a benchmark deleted a data root of
thousands of files, a new file there cost 120-650 us of CPU instead of 8-15 us; in a
10,000-shard run on that disk, ``perf`` found a quarter of the worker processes' time in
``recently_deleted`` (2026-12-07). A laptop's journaled ext4 or APFS does not do this, and a
deployed worker writes to S3. The scale row still reports the data root's cost of a new file
beside its per-shard figure, and ``SWEEP_BENCH_TMP`` names another folder (a disk's, to see
it there).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

TMPFS = Path("/dev/shm")
OVERRIDE = "SWEEP_BENCH_TMP"
# The scale row keeps every size's data root until its queries are timed: about 2.5 GB.
NEED_BYTES = 8 * 2**30


def folder() -> Path | None:
    """The benchmarks' temporary folder: ``SWEEP_BENCH_TMP`` if set, else a tmpfs with room,
    else None (the system's default)."""
    chosen = os.environ.get(OVERRIDE)
    if chosen:
        return Path(chosen)
    usable = TMPFS.is_dir() and os.access(TMPFS, os.W_OK | os.X_OK)
    return TMPFS if usable and shutil.disk_usage(TMPFS).free >= NEED_BYTES else None


def file_system(path: Path) -> str:
    """The type of the file system holding ``path`` (its longest mount point in
    /proc/mounts), or "unknown"."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    resolved, best, kind = str(path.resolve()), "", "unknown"
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind
