"""The local stage's stand-in for Lambda: the same dispatcher and worker code, run in-process.

Dispatcher invocations run on a few threads (they only hand out tasks); worker invocations go
to a process pool sized to the cores, because simulations are CPU-bound. Lambda's async
semantics are kept where they matter: an event is fire-and-forget, a worker that raises is
retried up to the configured number of attempts, and then the failure recorder gets the same
destination record Lambda would send. With ``SWEEP_LOCAL_MAX_EVENT_AGE_S`` the pool is Lambda's
async queue too: its size is the worker's concurrency, and an event that waited longer than the
age before a process took it is dropped to the recorder as ``EventAgeExceeded``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import multiprocessing.context
import os
import pickle
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import chalicelib.simulations.math_threads  # noqa: F401  (pool processes: one math thread)
from chalicelib.config import Settings
from chalicelib.fanout.invoking import Function, Invoker, encode
from chalicelib.logs import logger
from chalicelib.model.events import DispatchJob
from chalicelib.simulations import allocator  # noqa: F401  (pool processes: malloc thresholds pinned)
from chalicelib.storage.stores import LocalStore

# What a pool process runs, imported once: by the fork server before it forks any process
# (``pool_context``), else by each spawned process's warm-up task.
WORKER_MODULE = "chalicelib.execution.worker"


def pool_context() -> multiprocessing.context.BaseContext:
    """How the pool starts its processes. ``forkserver`` where the platform has it (Linux,
    macOS): one server process, started with the pool, imports the worker (numpy, pyarrow, the
    simulations) and the main module once, then forks every pool process from itself, so a
    process costs a fork, not its own ~1 s of imports, at the stage's start and whenever a
    broken pool is replaced. Elsewhere ``spawn``. Never ``fork`` from the server itself: it
    has threads, and forking a threaded process is unsafe."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # "__main__" too: each forked process would otherwise re-run the main module (chalice's
    # command line) before its first task, as a spawned one does.
    context.set_forkserver_preload(["__main__", WORKER_MODULE])
    return context


def watch_parent(alive: Connection) -> None:
    """Pool initializer: exit when the server that started us is gone, seen as the end of
    ``alive``, a pipe whose sending end only the server holds. A server killed by a signal
    runs no clean-up, and its workers would otherwise live on as orphans. (Not the parent
    process: a fork server's children are not the server's, and it outlives the server while
    they live.)"""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            alive.recv_bytes()  # nothing is ever sent: this returns at the end of the pipe
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


def warm_worker_process() -> None:
    """A pool process's first task when the pool is warmed: pay the worker's imports now (a
    forked process has them already), not inside the first shard of the first sweep."""
    importlib.import_module(WORKER_MODULE)


# How long a stage starting with a warm pool (``SWEEP_LOCAL_WARM_POOL``) waits for it.
WARM_TIMEOUT_S = 60.0

# A pool process's answer for an event that waited too long to start: it never ran.
EXPIRED = "event_age_exceeded"


def run_worker_process(
    payload: dict[str, Any], root: str, margin_ms: int, expires_at: float | None = None
) -> dict[str, Any]:
    """Entry point in a pool process: the worker function's code path, on the local store.
    An event picked up after ``expires_at`` (wall clock; Lambda's maximum event age, counted
    from the first hand-over) is not run, as Lambda drops it."""
    from chalicelib.execution.worker import run_task

    if expires_at is not None and time.time() > expires_at:
        return {EXPIRED: True}
    return run_task(payload, None, LocalStore(Path(root)), margin_ms)


# Worker events reach the pool in groups of consecutive events, each group one pool task run by
# one process, event after event: a pool task costs the stage's server ~0.1 ms of CPU (pickling,
# the pool's manager thread waking for its hand-over and for its result) on the two cores the
# workers share, more than a one-point shard's own evaluation. A group ends at this many events
# or once it holds ``GROUP_POINTS`` points, so a large shard goes alone and the last group of a
# run is short (32 one-point shards: ~50 ms). Events gather into groups only while the pool is
# busy (``LocalInvoker._feed``): none waits for a group to fill.
GROUP_EVENTS = 32
GROUP_POINTS = 1_000


def run_worker_group(
    events: list[tuple[dict[str, Any], float | None]], root: str, margin_ms: int
) -> list[tuple[bool, Any]]:
    """Entry point in a pool process: each (event, expiry) in turn, each its own invocation
    (``run_worker_process``), as (True, its answer) or (False, the exception it raised): one
    event's failure is its own, never its group's."""
    answers: list[tuple[bool, Any]] = []
    for payload, expires_at in events:
        try:
            answers.append((True, run_worker_process(payload, root, margin_ms, expires_at)))
        except Exception as exc:
            answers.append((False, _picklable(exc)))
    return answers


def _picklable(error: Exception) -> Exception:
    """The exception itself when it can travel back to the server, else a RuntimeError naming
    it (an unpicklable one would fail its whole group's answer)."""
    try:
        pickle.dumps(error)
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _points(event: dict[str, Any]) -> int:
    """A worker event's points (``GROUP_POINTS`` for a malformed one: it goes alone)."""
    try:
        return max(1, int(event["end"]) - int(event["start"]))
    except (KeyError, TypeError, ValueError):
        return GROUP_POINTS


def run_compactor_process(payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Entry point in a pool process: the compactor function's code path, on the local store
    (no catalog: the local engine reads the generation record itself)."""
    from chalicelib.analytics.catalog import NoCatalog
    from chalicelib.execution.compaction import compact_event

    return compact_event(payload, LocalStore(settings.local_root), settings, NoCatalog())


def destination_record(
    payload: dict[str, Any], error: BaseException | None, attempts: int
) -> dict[str, Any]:
    """What Lambda sends the OnFailure destination once retries are exhausted, or (``error``
    None) once the event is too old: then no ``responsePayload``, as when it never ran."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "requestContext": {
            "requestId": f"local-{time.time_ns()}",
            "functionArn": "local:worker",
            "condition": "RetriesExhausted" if error is not None else "EventAgeExceeded",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
    }
    if error is not None:
        record["responsePayload"] = {"errorType": type(error).__name__, "errorMessage": str(error)}
    return record


def _may_pace(event: dict[str, Any]) -> bool:
    """``DispatchJob.may_pace`` of a dispatcher event; a malformed one (which its dispatcher
    only logs) is taken as a root."""
    try:
        return DispatchJob.from_payload(event).may_pace
    except (KeyError, TypeError, ValueError):
        return True


def _run_of(event: dict[str, Any]) -> str:
    dispatch = event.get("dispatch")
    return str(event.get("run_id") or (dispatch or {}).get("run_id") or "")


@dataclass(frozen=True)
class _Delivery:
    """One delivery of a worker event: its attempt (1 first) and when it expires, if ever."""

    event: dict[str, Any]
    attempt: int
    expires_at: float | None


class LocalInvoker(Invoker):
    def __init__(self, settings: Settings, store: LocalStore) -> None:
        self.settings = settings
        self.store = store
        # A root or paced job's dispatcher may wait for its pacing window for minutes; every
        # other event (the slices it hands out, leaves, worker retries, final records) runs on
        # threads no pacer holds: four paced runs at once, sharing one pool of four, held all
        # its threads waiting for windows that only their queued slices could open.
        self._pacers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pacer")
        self._dispatchers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dispatcher")
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        # Every pool process holds the receiving end; the sending end is only ever ours.
        self._alive = multiprocessing.Pipe(duplex=False)
        self._in_flight = 0
        self._runs: Counter[str] = Counter()
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        # Worker events waiting for the pool (``_feed``), and room for two groups a process.
        self._waiting: queue.SimpleQueue[_Delivery | None] = queue.SimpleQueue()
        self._slots = threading.Semaphore(2 * settings.local_processes)
        self._feeder: threading.Thread | None = None
        now = datetime.now(UTC)  # to the millisecond, as manifests record creation times
        self._started_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if settings.local_warm_pool:
            self._warm()

    def _warm(self, timeout_s: float = WARM_TIMEOUT_S) -> None:
        """Start every pool process now (one warm-up task each) and wait for them, so a stage
        that answers has its workers ready: the first shard of the first sweep pays no
        imports (with ``forkserver``, none of them does)."""
        try:
            pool = self._worker_pool()
            tasks = [pool.submit(warm_worker_process) for _ in range(self.settings.local_processes)]
            _, late = wait(tasks, timeout=timeout_s)
            if late:
                logger.warning("the local worker pool is still starting", extra={"late": len(late)})
        except Exception:  # a pool that cannot start now will be retried by the first shard
            logger.exception("warming the local worker pool failed")

    def start_reconciler(self) -> None:
        """The local stage's stand-in for the reconciler's schedule: a daemon thread that runs
        a pass every ``reconcile_interval_s``, starting with one at once, so a stage restarted
        on the data root of a killed one finishes its runs with no manual step."""
        if self._timer is not None:
            return
        self._timer = threading.Thread(target=self._reconcile_loop, daemon=True, name="reconciler")
        self._timer.start()

    def _reconcile_loop(self) -> None:
        from chalicelib.fanout.reconcile import reconcile

        while True:
            try:
                reconcile(self.store, self, self.settings)
            except Exception:
                logger.exception("local reconciler pass failed")
            if self._stop.wait(self.settings.reconcile_interval_s):
                return

    def invoke(self, function: Function, payload: dict[str, Any]) -> None:
        # Through JSON and back, as a real event is: same size limit, no shared objects.
        event = json.loads(encode(payload))
        self._started(event)
        if function == "dispatcher":
            pool = self._pacers if _may_pace(event) else self._dispatchers
            pool.submit(self._run_dispatcher, event)
        elif function == "compactor":
            self._submit_compactor(event)
        else:
            age = self.settings.local_max_event_age_s
            self._submit_worker(event, attempt=1, expires_at=time.time() + age if age else None)

    def wait_idle(self, timeout: float) -> bool:
        """True once every event handed out so far (and what it spawned) has finished."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        """Stop the timer and the pools (waiting for what is running), so a process can exit
        cleanly."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        self._pacers.shutdown(wait=True)
        with self._lock:
            feeder, self._feeder = self._feeder, None
        if feeder is not None:  # the groups it handed out end, and their retries are queued
            self._waiting.put(None)
            feeder.join()
        self._dispatchers.shutdown(wait=True)
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def waits_on_network(self) -> bool:
        """No: a hand-over is a put on the pool's queue. A leaf's 32 threads putting at once
        only took turns at the pool's lock and woke its manager thread for each other, at the
        cost of the stage's two cores that the workers share (issue 16); one thread puts."""
        return False

    def worker_concurrency(self) -> int | None:
        """The pool's size, when events expire (``SWEEP_LOCAL_MAX_EVENT_AGE_S``): only then
        can waiting in the pool's queue lose one, and dispatch is paced against it."""
        return self.settings.local_processes if self.settings.local_max_event_age_s else None

    def in_flight(self, run_id: str) -> bool:
        """Whether an event of this run is queued or running here: the reconciler must not take
        a run waiting behind another's work in the pool for a stalled one."""
        with self._lock:
            return self._runs[run_id] > 0

    def orphaned(self, run_id: str, created_at: datetime) -> bool:
        """A run made before this process started, with nothing of it queued or running here:
        its events lived in the queue and pool of a process that is gone (a killed stage), and
        the local stage has no other queue. The reconciler re-dispatches it at once instead
        of waiting out the stall timeout."""
        return created_at < self._started_at and not self.in_flight(run_id)

    def _started(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._in_flight += 1
            self._runs[_run_of(event)] += 1

    def _finished(self, event: dict[str, Any]) -> None:
        with self._idle:
            self._in_flight -= 1
            self._runs[_run_of(event)] -= 1
            self._idle.notify_all()

    def _run_dispatcher(self, event: dict[str, Any]) -> None:
        from chalicelib.analytics.catalog import NoCatalog
        from chalicelib.fanout.dispatcher import run_event

        try:
            run_event(event, self.store, self, self.settings, NoCatalog())
        except Exception:
            logger.exception("local dispatcher failed", extra={"event": event})
        finally:
            self._finished(event)

    def _worker_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.settings.local_processes,
                    mp_context=pool_context(),
                    initializer=watch_parent,
                    initargs=(self._alive[0],),
                )
            return self._pool

    def _submit_compactor(self, event: dict[str, Any]) -> None:
        """In the background, in a pool process (rewriting Parquet is CPU-bound); a failure is
        logged, and the reconciler invokes it again later."""
        try:
            future = self._worker_pool().submit(run_compactor_process, event, self.settings)
        except (BrokenProcessPool, RuntimeError):
            logger.exception("local compactor not started; the reconciler retries")
            self._finished(event)
            return

        def done(f: Future[dict[str, Any]]) -> None:
            if f.exception() is not None:
                logger.warning("local compactor failed", extra={"error": str(f.exception())})
            self._finished(event)

        future.add_done_callback(done)

    def _submit_worker(
        self, event: dict[str, Any], attempt: int, expires_at: float | None = None
    ) -> None:
        """Queue one delivery of a worker event for the pool (``_feed``)."""
        with self._lock:
            if self._feeder is None:
                self._feeder = threading.Thread(target=self._feed, daemon=True, name="feeder")
                self._feeder.start()
        self._waiting.put(_Delivery(event, attempt, expires_at))

    def _feed(self) -> None:
        """Hand waiting deliveries to the pool a group at a time: wait for room (two groups a
        process queued or running), then take the next delivery and those queued behind it,
        up to ``GROUP_EVENTS`` events or ``GROUP_POINTS`` points. While the pool is busy,
        deliveries gather; while it is idle, each goes at once."""
        while True:
            self._slots.acquire()
            first = self._waiting.get()
            if first is None:
                return
            group, points = [first], _points(first.event)
            last = False
            while len(group) < GROUP_EVENTS and points < GROUP_POINTS:
                try:
                    more = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    last = True
                    break
                group.append(more)
                points += _points(more.event)
            self._submit_group(group)
            if last:
                return

    def _submit_group(self, group: list[_Delivery]) -> None:
        pool = None
        try:
            pool = self._worker_pool()
            future = pool.submit(
                run_worker_group,
                [(d.event, d.expires_at) for d in group],
                str(self.settings.local_root),
                self.settings.deadline_margin_ms,
            )
        except Exception as exc:  # broken, shut down meanwhile, or not started
            self._slots.release()
            if pool is not None:
                self._reset_pool(pool)
            for d in group:
                self._after_worker_error(d.event, d.attempt, exc, d.expires_at)
            return
        future.add_done_callback(lambda f: self._after_group(f, group, pool))

    def _after_group(
        self,
        future: Future[list[tuple[bool, Any]]],
        group: list[_Delivery],
        pool: ProcessPoolExecutor,
    ) -> None:
        self._slots.release()
        error = future.exception()
        answers = [(False, error)] * len(group) if error is not None else future.result()
        for d, (ok, answer) in zip(group, answers, strict=True):
            if ok:
                if answer.get(EXPIRED):  # never ran: attempts before this one did
                    self._dispatchers.submit(self._record_final, d.event, d.attempt - 1, None)
                else:
                    self._finished(d.event)
                continue
            # This may run on the pool's own manager thread, which holds the pool's shutdown
            # lock while it fails the futures of a broken pool: shutting the pool down from
            # here deadlocks (seen with a worker process SIGKILLed mid-shard). Hand it to a
            # thread.
            self._dispatchers.submit(
                self._after_worker_failed, d.event, d.attempt, answer, pool, d.expires_at
            )

    def _after_worker_failed(
        self,
        event: dict[str, Any],
        attempt: int,
        error: BaseException,
        pool: ProcessPoolExecutor,
        expires_at: float | None,
    ) -> None:
        if isinstance(error, BrokenProcessPool):
            self._reset_pool(pool)
        self._after_worker_error(event, attempt, error, expires_at)

    def _after_worker_error(
        self, event: dict[str, Any], attempt: int, error: BaseException, expires_at: float | None
    ) -> None:
        logger.warning(
            "local worker attempt failed",
            extra={"attempt": attempt, "error": f"{type(error).__name__}: {error}"},
        )
        # Off the pool's result thread: resubmitting and recording both do I/O.
        if attempt < self.settings.worker_max_attempts:
            self._dispatchers.submit(self._submit_worker, event, attempt + 1, expires_at)
        else:
            self._dispatchers.submit(self._record_final, event, attempt, error)

    def _record_final(
        self, event: dict[str, Any], attempt: int, error: BaseException | None
    ) -> None:
        """What Lambda's OnFailure destination would do once retries are exhausted (or, with
        no error, once the event is too old)."""
        from chalicelib.execution.failure_recorder import record_destination

        try:
            record_destination(destination_record(event, error, attempt), self.store)
        except Exception:
            logger.exception("local failure recorder failed")
        finally:
            self._finished(event)

    def _reset_pool(self, broken: ProcessPoolExecutor) -> None:
        """Replace the pool if it is still the broken one (every future of a broken pool
        reports it; only the first replaces it, and never the fresh pool that replaced it)."""
        with self._lock:
            if self._pool is not broken:
                return
            self._pool = None
        broken.shutdown(wait=False, cancel_futures=False)
