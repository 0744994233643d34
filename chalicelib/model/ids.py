"""The identifiers that reach storage keys (run ids, dispatch job names, run dates) and the
names that become SQL columns.

Each is checked here, once, before it is ever formatted into a key, so no client value can
name a key outside its run's prefixes. Always with ``fullmatch``: with ``match`` or ``search``,
Python's ``$`` also matches before a final newline, so ``"<run id>\\n"`` would pass.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from typing import TypeGuard

RUN_ID = r"[A-Za-z0-9-]{8,64}"  # also inside the run index's keys (``layout``)
RUN_ID_RE = re.compile(f"^{RUN_ID}$")
JOB_MAX = 40
JOB_RE = re.compile(rf"^[a-z0-9-]{{1,{JOB_MAX}}}$")
LONGEST_JOB = "j" * JOB_MAX  # what an event's size is measured with (``runs.submit``)
DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A parameter's name in a request (``request_schema.json`` says the same; a test compares them)
# and a column of a typed view: a lowercase SQL identifier Athena and DuckDB take unquoted.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def new_run_id(now: datetime) -> str:
    """Sortable by creation time (UTC, millisecond precision), then random to stay unique."""
    return (
        f"{now.astimezone(UTC):%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(6)}"
    )


def is_run_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and RUN_ID_RE.fullmatch(value) is not None


def run_dt(run_id: str) -> str | None:
    """The creation date a server-made run id starts with (``new_run_id``), as a ``dt``; None
    for an id that does not start with one."""
    dt = f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"
    return dt if is_dt(dt) else None


def is_job(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and JOB_RE.fullmatch(value) is not None


def is_name(value: object) -> TypeGuard[str]:
    """A parameter's name, a metric's, a simulation's: ``NAME_RE``."""
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


def is_dt(value: object) -> TypeGuard[str]:
    """A real calendar date written YYYY-MM-DD (a run's date partition)."""
    if not (isinstance(value, str) and DT_RE.fullmatch(value)):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
