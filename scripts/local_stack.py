"""Start the embedded local stack: ``chalice local --stage local`` on a free loopback port.

Used by ``make demo`` and the end-to-end tests, so both exercise what a user runs. The server
gets no AWS credentials: the local stage needs none.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from chalicelib.config import PROJECT_ROOT
from chalicelib.storage import layout


def last_outcome_written(data_root: Path, run_id: str) -> float:
    """When the run's last outcome file was written, on the ``time.time()`` clock (its
    modification time): when the stage finished the run's work, before any follower polled."""
    outcomes = data_root / layout.run_table_prefix("outcomes", run_id)
    return max(p.stat().st_mtime for p in outcomes.rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def local_stage(
    data_root: Path,
    log_path: Path,
    start_timeout: float = 60,
    settings: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Yield the base URL and the process of a running local stage writing under
    ``data_root``; ``settings`` adds SWEEP_* variables. The process may be killed inside the
    block (the restart test does); whatever is left of it is stopped on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= (settings or {}) | {
        "SWEEP_LOCAL_ROOT": str(data_root),
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONUNBUFFERED": "1",
    }
    chalice = Path(sys.executable).with_name("chalice")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [str(chalice), "local", "--stage", "local", "--port", str(port), "--no-autoreload"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log_path, start_timeout)
        yield base, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def local_server(data_root: Path, log_path: Path, start_timeout: float = 60) -> Iterator[str]:
    """Yield the base URL of a running local stage writing under ``data_root``."""
    with local_stage(data_root, log_path, start_timeout) as (base, _):
        yield base


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(base + "/simulations", timeout=2) as response:
                if response.status == 200:
                    return
        except (URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chalice local did not start; its log:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
