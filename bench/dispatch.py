"""Dispatch at scale against a local stand-in for Lambda's Invoke API (issue 4).

    .venv/bin/python -m bench.dispatch                              # 1,000 / 10,000 / 100,000
    .venv/bin/python -m bench.dispatch --sizes 1000 --latency-ms 30 --json

The stand-in (``scripts.invoke_standin``, its own process, 127.0.0.1 only) answers every Invoke
202 after ``--latency-ms``. ``LambdaInvoker`` is pointed at it by its ``LambdaEndpoint``;
everything else is the project's code: ``submit`` (validate, store the manifest, invoke the
dispatcher once) and ``Dispatcher.run`` for every dispatcher job, with ``LambdaInvoker``
and a ``LocalStore`` in a temp folder (the leaves' progress records are written there, inside
the measured cost).

For each size:
- POST: ``submit`` timed directly, and ``POST /sweeps`` through ``chalice.test.Client``;
  the Lambda client is already built (a warm API handler).
- floor: the same number of requests as bare SigV4-signed urllib3 POSTs of a worker-sized
  payload (``SigV4Auth`` + ``AWSRequest`` + ``urllib3.PoolManager``), in the same process and
  thread shape as the tree (``--processes`` processes, ``--threads`` threads each).
- tree: the default policy (1,000 shards a leaf, width 10); each dispatcher job the stand-in
  receives runs in a pool of ``--processes`` processes (separate Lambda instances), each with
  its own client, as soon as it is recorded.
- width-1: one process, one dispatcher job covering every shard (no tree).
- sequential (first size only, unless ``--sequential-max`` says otherwise): width-1 with one
  thread; larger sizes are extrapolated linearly, and the table says so.

CPU is ``time.process_time`` in each dispatching process around each job, summed: it covers
every thread of the process (botocore, payload building, the store), not process start-up
(imports, client creation), which is reported apart as ``setup`` (children's rusage minus the
jobs). The stand-in's own CPU is reported too; the driver's polling is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import botocore
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chalicelib.analytics.catalog import NoCatalog
from chalicelib.aws import LambdaEndpoint
from chalicelib.config import PROJECT_ROOT, Settings
from chalicelib.fanout.dispatcher import Dispatcher, Policy
from chalicelib.fanout.invoking import LambdaInvoker
from chalicelib.logs import logger
from chalicelib.model import events
from chalicelib.model.events import DispatchJob
from chalicelib.runs.status import status
from chalicelib.runs.submit import submit
from chalicelib.storage import manifests
from chalicelib.storage.stores import LocalStore
from chalicelib.wiring import Runtime
from scripts.invoke_standin import fetch_state

WORKER = "sweeps-bench-worker"
DISPATCHER = "sweeps-bench-dispatcher"
NAMES = {"worker": WORKER, "dispatcher": DISPATCHER}
REGION = "us-east-1"
POLL_S = 0.02


def request_body(size: int) -> bytes:
    """monte_carlo_pi over a range axis of ``size`` points, one point per shard."""
    body = {
        "simulation": "monte_carlo_pi",
        "parameters": {"samples": {"range": {"start": 1, "stop": size + 1, "step": 1}}},
        "shards": {"count": size},
        "seed": 0,
        "label": f"bench-dispatch-{size}",
    }
    return json.dumps(body).encode()


def lambda_endpoint(endpoint: str, threads: int) -> LambdaEndpoint:
    """What ``clients.lambda_endpoint`` resolves on AWS, pointed at the stand-in."""
    return LambdaEndpoint(
        endpoint,
        REGION,
        Credentials("testing", "testing"),
        urllib3.PoolManager(maxsize=threads + 4, timeout=urllib3.Timeout(connect=5, read=15)),
    )


# --- the stand-in, in its own process -------------------------------------------------------


class RemoteStandIn:
    """``scripts.invoke_standin`` in a child process, so its CPU is not the dispatchers'."""

    def __init__(self, latency_ms: float, max_kept: int) -> None:
        self.latency_ms = latency_ms
        self.max_kept = max_kept
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> RemoteStandIn:
        cmd = [
            sys.executable,
            "-m",
            "scripts.invoke_standin",
            "--latency-ms",
            str(self.latency_ms),
            "--keep",
            DISPATCHER,
            "--max-kept",
            str(self.max_kept),
        ]
        self._proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            self._proc.kill()
            raise RuntimeError(f"the stand-in did not start: {line}")
        self.url = line[1]
        return self

    def __exit__(self, *_: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()  # the stand-in serves until its stdin closes
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def state(self, drain: bool = False) -> dict[str, Any]:
        return fetch_state(self.url, drain)

    def take_dispatcher_payloads(self) -> list[dict[str, Any]]:
        state = self.state(drain=True)
        if state["dropped"]:
            raise RuntimeError(f"the stand-in dropped {state['dropped']} dispatcher payloads")
        payloads: list[dict[str, Any]] = state["payloads"][DISPATCHER]
        return payloads

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.state()["counts"]
        return counts

    def cpu_s(self) -> float:
        return float(self.state()["cpu_s"])


# --- what runs in each dispatching process (a Lambda instance of the dispatcher) --------------

# The tree's own speed is measured: as if the worker could run every shard at once (a
# reservation this large), so no job is paced (chalicelib/fanout/pacing.py).
UNPACED = 1_000_000
_PROCESS: dict[str, Any] = {}


def _init_process(endpoint: str, root: str, threads: int) -> None:
    logger.setLevel("WARNING")
    target = lambda_endpoint(endpoint, threads)
    _PROCESS["invoker"] = LambdaInvoker(NAMES, lambda: target, UNPACED)
    _PROCESS["store"] = LocalStore(Path(root))
    _PROCESS["endpoint"] = endpoint


def _ready(delay_s: float) -> int:
    time.sleep(delay_s)  # holds this process so the next warm-up task starts another
    return os.getpid()


def _dispatch_job(payload: dict[str, Any], policy: Policy) -> tuple[float, dict[str, Any]]:
    """One dispatcher invocation; its process CPU time and summary."""
    began = time.process_time()
    dispatcher = Dispatcher(_PROCESS["store"], _PROCESS["invoker"], policy, NoCatalog())
    summary = dispatcher.run(DispatchJob.from_payload(payload))
    return time.process_time() - began, summary


def _floor_job(count: int, threads: int, payload: bytes) -> float:
    """``count`` bare signed Invoke requests on ``threads`` threads; the process CPU it took."""
    began = time.process_time()
    url = f"{_PROCESS['endpoint']}/2015-03-31/functions/{WORKER}/invocations"
    signer = SigV4Auth(Credentials("testing", "testing"), "lambda", REGION)
    http = urllib3.PoolManager(maxsize=threads + 4)

    def one(_: int) -> None:
        request = AWSRequest(
            method="POST", url=url, data=payload, headers={"X-Amz-Invocation-Type": "Event"}
        )
        signer.add_auth(request)
        prepared = request.prepare()
        response = http.urlopen(
            "POST",
            prepared.url,
            body=prepared.body,
            headers=dict(prepared.headers.items()),
            retries=False,
        )
        if response.status != 202:
            raise RuntimeError(f"floor request answered {response.status}")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(count)))
    http.clear()
    return time.process_time() - began


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Pass:
    mode: str
    shards: int
    processes: int
    threads: int
    wall_s: float
    cpu_s: float
    setup_cpu_s: float
    jobs: int
    standin_cpu_s: float
    requests: dict[str, int] = field(default_factory=dict)
    extrapolated: bool = False

    @property
    def cpu_ms_per_shard(self) -> float:
        return self.cpu_s / self.shards * 1000


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in sorted(after) if after[k] != before.get(k)
    }


class Pool:
    """Spawned processes (each builds its own client), warmed before any clock starts."""

    def __init__(self, processes: int, endpoint: str, root: Path, threads: int) -> None:
        self.processes = processes
        self._cpu_before = _children_cpu()
        self.executor = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=get_context("spawn"),
            initializer=_init_process,
            initargs=(endpoint, str(root), threads),
        )
        list(self.executor.map(_ready, [0.3] * processes))

    def close(self) -> float:
        """Shut down; the CPU all its processes used, start-up included."""
        self.executor.shutdown(wait=True)
        return _children_cpu() - self._cpu_before


def run_floor(
    standin: RemoteStandIn, root: Path, size: int, processes: int, threads: int, payload: bytes
) -> Pass:
    pool = Pool(processes, standin.url, root, threads)
    before, standin_before = standin.counts(), standin.cpu_s()
    shares = [size // processes + (1 if k < size % processes else 0) for k in range(processes)]
    began = time.perf_counter()
    futures = [pool.executor.submit(_floor_job, n, threads, payload) for n in shares if n]
    cpu = sum(f.result() for f in futures)
    wall = time.perf_counter() - began
    total = pool.close()
    requests = _delta(standin.counts(), before)
    if requests != {WORKER: size}:
        raise RuntimeError(f"floor: the stand-in saw {requests}, expected {size} worker calls")
    return Pass(
        "floor",
        size,
        processes,
        threads,
        wall,
        cpu,
        total - cpu,
        len(futures),
        standin.cpu_s() - standin_before,
        requests,
    )


def run_dispatch(
    mode: str,
    standin: RemoteStandIn,
    root: Path,
    roots: list[dict[str, Any]],
    processes: int,
    policy: Policy,
) -> Pass:
    """Run the dispatcher job ``roots`` and every child job it hands out, until none is left."""
    store = LocalStore(root)
    job = DispatchJob.from_payload(roots[0])
    size = job.hi - job.lo
    pool = Pool(processes, standin.url, root, policy.threads)
    before, standin_before = standin.counts(), standin.cpu_s()
    cpu, jobs = 0.0, 0
    began = time.perf_counter()
    pending: set[Future[tuple[float, dict[str, Any]]]] = {
        pool.executor.submit(_dispatch_job, p, policy) for p in roots
    }
    while pending:
        done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
        for future in done:
            job_cpu, _ = future.result()
            cpu += job_cpu
            jobs += 1
        for payload in standin.take_dispatcher_payloads():  # children, as soon as invoked
            pending.add(pool.executor.submit(_dispatch_job, payload, policy))
    wall = time.perf_counter() - began
    total = pool.close()
    requests = _delta(standin.counts(), before)
    counts = status(store, job.run_id)["dispatch"]
    if requests.get(WORKER) != size or counts != {"dispatched": size, "failed": 0}:
        raise RuntimeError(f"{mode}: stand-in saw {requests}, status says {counts}")
    return Pass(
        mode,
        size,
        processes,
        policy.threads,
        wall,
        cpu,
        total - cpu,
        jobs,
        standin.cpu_s() - standin_before,
        requests,
    )


@dataclass
class PostTiming:
    shards: int
    submit_ms: list[float]
    route_ms: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "shards": self.shards,
            "submit_ms_median": round(statistics.median(self.submit_ms), 1),
            "submit_ms_max": round(max(self.submit_ms), 1),
            "route_ms_median": round(statistics.median(self.route_ms), 1),
            "route_ms_max": round(max(self.route_ms), 1),
            "submit_ms": [round(t, 1) for t in self.submit_ms],
            "route_ms": [round(t, 1) for t in self.route_ms],
        }


class Api:
    """The API handler's side: settings, store and a warm Lambda client, in this process."""

    def __init__(self, endpoint: str, root: Path, max_shards: int, threads: int) -> None:
        self.settings = Settings(
            stage="bench",
            max_shards=max_shards,
            max_points=max(10_000_000, max_shards),
            local_root=root,
            dispatch_threads=threads,
        )
        self.store = LocalStore(root)
        target = lambda_endpoint(endpoint, threads)
        self.invoker = LambdaInvoker(NAMES, lambda: target, UNPACED)
        self._route: Callable[[bytes], dict[str, Any]] | None = None

    def submit(self, raw: bytes) -> tuple[float, dict[str, Any]]:
        began = time.perf_counter()
        answer = submit(self.settings, self.store, self.invoker, json.loads(raw))
        return (time.perf_counter() - began) * 1000, answer

    def post(self, raw: bytes) -> tuple[float, dict[str, Any]]:
        """``POST /sweeps`` through Chalice's test client, with this process's wiring."""
        if self._route is None:
            from chalice.test import Client

            from app import app
            from chalicelib import wiring

            wiring.use(Runtime(self.settings, self.store, self.invoker))
            client = Client(app, stage_name="local", project_dir=str(PROJECT_ROOT))

            def route(body: bytes) -> dict[str, Any]:
                response = client.http.post(
                    "/sweeps", headers={"Content-Type": "application/json"}, body=body
                )
                if response.status_code != 202:
                    raise RuntimeError(f"POST /sweeps answered {response.status_code}")
                answer: dict[str, Any] = json.loads(response.body)
                return answer

            self._route = route
        began = time.perf_counter()
        answer = self._route(raw)
        return (time.perf_counter() - began) * 1000, answer


def worker_payload(root: Path, size: int, run_id: str) -> bytes:
    """A real worker payload of this run (the last shard), for the floor's requests."""
    manifest = manifests.load(LocalStore(root), run_id)
    return events.encode(events.run_task_payload(manifest, size - 1))


def progress(message: str) -> None:
    print(f"[bench.dispatch {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_size(
    api: Api,
    standin: RemoteStandIn,
    root: Path,
    size: int,
    args: argparse.Namespace,
    sequential: bool,
) -> tuple[PostTiming, list[Pass]]:
    raw = request_body(size)
    timing = PostTiming(size, [], [])
    for _ in range(args.posts):
        ms, _answer = api.post(raw)
        timing.route_ms.append(ms)
    standin.take_dispatcher_payloads()  # those runs are not dispatched
    run_roots: list[list[dict[str, Any]]] = []
    for _ in range(3 if sequential else 2):
        ms, answer = api.submit(raw)
        timing.submit_ms.append(ms)
        if answer["shard_count"] != size:
            raise RuntimeError(f"submit planned {answer['shard_count']} shards, not {size}")
        roots = standin.take_dispatcher_payloads()
        if len(roots) != 1 or roots[0]["dispatch"]["run_id"] != answer["run_id"]:
            raise RuntimeError(f"expected one dispatcher event for {answer['run_id']}: {roots}")
        run_roots.append(roots)
    progress(f"{size:,} shards: POST median {statistics.median(timing.route_ms):.1f} ms")

    passes = []
    payload = worker_payload(root, size, run_roots[0][0]["dispatch"]["run_id"])
    passes.append(run_floor(standin, root, size, args.processes, args.threads, payload))
    progress(f"{size:,} shards: floor {passes[-1].wall_s:.1f} s")
    tree = Policy(threads=args.threads)
    passes.append(run_dispatch("tree", standin, root, run_roots[0], args.processes, tree))
    progress(f"{size:,} shards: tree {passes[-1].wall_s:.1f} s, {passes[-1].jobs} jobs")
    flat = Policy(leaf_shards=size, threads=args.threads)
    passes.append(run_dispatch("width-1", standin, root, run_roots[1], 1, flat))
    progress(f"{size:,} shards: width-1 {passes[-1].wall_s:.1f} s")
    if sequential:
        one = Policy(leaf_shards=size, threads=1)
        passes.append(run_dispatch("sequential", standin, root, run_roots[2], 1, one))
        progress(f"{size:,} shards: sequential {passes[-1].wall_s:.1f} s")
    return timing, passes


def extrapolate(sequential: Pass, size: int) -> Pass:
    scale = size / sequential.shards
    return Pass(
        "sequential",
        size,
        1,
        1,
        sequential.wall_s * scale,
        sequential.cpu_s * scale,
        0.0,
        1,
        sequential.standin_cpu_s * scale,
        {k: round(v * scale) for k, v in sequential.requests.items()},
        extrapolated=True,
    )


def report_rows(passes: list[Pass]) -> list[dict[str, Any]]:
    rows = []
    floors = {p.shards: p for p in passes if p.mode == "floor"}
    for p in passes:
        row = asdict(p)
        row["cpu_ms_per_shard"] = round(p.cpu_ms_per_shard, 3)
        row["ratio_to_floor"] = round(p.cpu_ms_per_shard / floors[p.shards].cpu_ms_per_shard, 2)
        row["shards_per_s"] = round(p.shards / p.wall_s)
        row["standin_cpu_ms_per_request"] = round(
            p.standin_cpu_s / max(1, sum(p.requests.values())) * 1000, 3
        )
        for key in ("wall_s", "cpu_s", "setup_cpu_s", "standin_cpu_s"):
            row[key] = round(row[key], 3)
        rows.append(row)
    return rows


def print_table(env: dict[str, Any], posts: list[PostTiming], rows: list[dict[str, Any]]) -> None:
    print(
        f"python {env['python']}, botocore {env['botocore']}, {env['cpus']} CPUs; "
        f"stand-in latency {env['latency_ms']} ms; {env['processes']} processes x "
        f"{env['threads']} threads"
    )
    print()
    print(f"{'shards':>8} {'submit ms (med/max)':>20} {'POST /sweeps ms (med/max)':>26}")
    for t in posts:
        d = t.to_dict()
        print(
            f"{t.shards:>8,} {d['submit_ms_median']:>10.1f} / {d['submit_ms_max']:<7.1f} "
            f"{d['route_ms_median']:>14.1f} / {d['route_ms_max']:<7.1f}"
        )
    print()
    header = (
        f"{'shards':>8} {'mode':<12} {'procs x thr':>11} {'wall s':>9} {'shards/s':>9} "
        f"{'CPU ms/shard':>12} {'x floor':>8} {'setup CPU s':>11} {'jobs':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        mode = r["mode"] + (" (extrap.)" if r["extrapolated"] else "")
        print(
            f"{r['shards']:>8,} {mode:<12} {r['processes']:>5} x {r['threads']:<3} "
            f"{r['wall_s']:>9.2f} {r['shards_per_s']:>9,} {r['cpu_ms_per_shard']:>12.3f} "
            f"{r['ratio_to_floor']:>8.2f} {r['setup_cpu_s']:>11.2f} {r['jobs']:>5}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="shard counts, comma-separated"
    )
    parser.add_argument("--latency-ms", type=float, default=30.0, help="the stand-in's latency")
    parser.add_argument("--processes", type=int, default=2, help="dispatcher instances (tree)")
    parser.add_argument("--threads", type=int, default=32, help="invoke threads per process")
    parser.add_argument("--posts", type=int, default=5, help="POST /sweeps timings per size")
    parser.add_argument(
        "--sequential-max", type=int, default=1000, help="run the 1-thread loop up to this size"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--save", type=Path, help="also write the JSON report to this file")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    logger.setLevel("WARNING")

    env = {
        "python": platform.python_version(),
        "botocore": botocore.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "latency_ms": args.latency_ms,
        "processes": args.processes,
        "threads": args.threads,
    }
    posts: list[PostTiming] = []
    passes: list[Pass] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp,
        RemoteStandIn(args.latency_ms, max_kept=max(sizes) + 1000) as standin,
    ):
        root = Path(tmp) / "data"
        api = Api(standin.url, root, max(sizes), args.threads)
        api.submit(request_body(10))  # build the client and warm the path, as a warm handler
        api.post(request_body(10))
        standin.take_dispatcher_payloads()
        measured_sequential: Pass | None = None
        for size in sizes:
            sequential = size <= args.sequential_max
            timing, size_passes = bench_size(api, standin, root, size, args, sequential)
            posts.append(timing)
            passes.extend(size_passes)
            if sequential:
                measured_sequential = size_passes[-1]
            elif measured_sequential is not None:
                passes.append(extrapolate(measured_sequential, size))
        env["standin_cpu_s_total"] = round(standin.cpu_s(), 2)

    rows = report_rows(passes)
    report = {"env": env, "post": [t.to_dict() for t in posts], "passes": rows}
    if args.save:
        args.save.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(env, posts, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
