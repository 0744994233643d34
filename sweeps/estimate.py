"""``sweep estimate``: what a sweep will cost, from a small local sample, before submitting it.

How it measures (all CPU time of this process, so neighbours on a shared machine matter less):

1. **Per point**: a random sample of the request's points (200, or fewer once 5 s of CPU are
   spent; seeded so two estimates agree) evaluated through the worker's own evaluator
   (``Simulation.evaluator``: the same simulation code and stream fast path). The mean is
   the simulation's cost per point.
2. **Worker overhead**: ``run_task`` (the real worker: task validation, decoding, results
   Parquet, outcome and reuse index writes) on a 1-point shard and, when points are cheap
   (< 2 ms), on a 200-point shard of the request's first points, in a throw-away local store.
   Each run less its bare evaluation gives the fixed cost per shard and the worker's own cost
   per point (negligible next to points of 2 ms or more); each is the median of five runs.
   The same runs give the S3 requests a shard makes, reads and writes (their usage records),
   each priced as its kind.
3. **Scaling to Lambda**: Lambda gives a function CPU in proportion to its memory, one full vCPU
   at 1,769 MB (``pricing.FULL_VCPU_MB``). Single-threaded work runs ``1769 / memory`` times
   longer below that and no faster above it, so local CPU seconds are multiplied by
   ``max(1, 1769 / worker memory)`` (the stage's, from .chalice/config.json). A local core is
   taken to be as fast as a Lambda vCPU: compare ``sweep status``'s measured cost after a run.

Shards' seconds are the per-point cost times their size plus the fixed cost; GB-s, requests and
price follow with ``pricing``. With ``"reuse": true``, points already in the stage's reuse index
are counted (DuckDB over the local data root's index; not available against Athena yet) and
only the others are charged.
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import chalicelib.simulations.math_threads  # noqa: F401  (first: time points as workers run)
from chalicelib import pricing
from chalicelib.execution import reuse
from chalicelib.execution.worker import run_task
from chalicelib.logs import logger
from chalicelib.model.events import task_payload
from chalicelib.model.request import SweepRequest
from chalicelib.model.sharding import shard_bounds
from chalicelib.model.validation import validate_request
from chalicelib.simulations.declarations import PointStreams
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout
from chalicelib.storage.stores import LocalStore

RUN_ID = "20000101T000000000Z-estimate0000"
LEAF_SHARDS = 1000  # Settings.dispatch_leaf_shards' default: one dispatcher per 1,000 shards
DISPATCHER_S = 0.25
CHEAP_POINT_S = 0.002
# Each worker timing is a median of this many runs: one run of a few ms varies by 2x or more
# (a collection, a neighbour's burst), and the fixed cost is most of a cheap shard's seconds.
REPEATS = 5


@dataclass(frozen=True)
class Estimate:
    points: int
    shards: int
    points_reused: int
    cpu_us_per_point: float
    worker_fixed_ms: float
    worker_memory_mb: int
    cpu_scale: float
    worker_seconds_per_shard: float
    worker_seconds_max_shard: float
    lambda_gb_s: float
    invocations: int
    s3_requests: int
    usd: float
    prices: str
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu(fn: Any) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _sample_cost(request: SweepRequest, sample: int, budget_s: float) -> float:
    """CPU seconds per point, over a random sample of the request's points: ``sample`` of
    them, or fewer (at least 3) once ``budget_s`` of CPU is spent."""
    sim = REGISTRY[request.simulation]
    total = request.total_points
    picked = random.Random(0).sample(range(total), min(sample, total))
    evaluate = sim.evaluator(request.seed)
    spent, done = 0.0, 0
    for i in picked:
        point = request.space.point(i)
        spent += _cpu(lambda point=point: evaluate(point))
        done += 1
        if spent > budget_s and done >= min(3, len(picked)):
            break
    return spent / done


def _worker_run(request: SweepRequest, size: int) -> tuple[float, tuple[int, int], float]:
    """(CPU s of run_task, its S3 (reads, writes), bare evaluation CPU s) for shard 0 of
    ``size``."""
    body = request.to_dict() | {"shards": {"size": size}}
    body.pop("fail_shards", None)
    body.pop("reuse", None)
    resharded = validate_request(body, limits=None)
    bounds = shard_bounds(resharded.total_points, resharded.shards, 0)
    payload = task_payload(RUN_ID, 0, bounds, "2000-01-01", resharded.to_dict())
    with tempfile.TemporaryDirectory(prefix="sweep-estimate-") as tmp:
        store = LocalStore(Path(tmp))
        cpu = _cpu(lambda: run_task(payload, None, store, 0))
        usage = [layout.parse_usage(o.key) for o in store.list(layout.usage_prefix(RUN_ID))]
        found = [u for u in usage if u is not None]
        requests = (sum(u.s3_reads for u in found), sum(u.s3_writes for u in found))
    sim = REGISTRY[request.simulation]
    evaluate = sim.evaluator(request.seed)
    points = [(p, r) for _, p, r in request.space.iter_points(*bounds)]
    bare = _cpu(lambda: [evaluate(p, r) for p, r in points])
    return cpu, requests, bare


def reusable(request: SweepRequest, data_root: Path) -> int:
    """Points of ``request`` already in the local stage's reuse index (DuckDB over its files)."""
    import duckdb
    import pyarrow as pa

    sim = REGISTRY[request.simulation]
    fam = reuse.family(sim.name, sim.version, request.seed)
    folder = data_root / layout.reuse_family(fam)
    if not folder.is_dir():
        return 0
    streams = PointStreams(sim, request.seed)
    keys = [
        streams.key(sim.effective_params(p), r)
        for _, p, r in request.space.iter_points(0, request.total_points)
    ]
    wanted = pa.table({"key": pa.array(keys, pa.binary(16))})
    con = duckdb.connect()
    con.register("wanted", wanted)
    glob = (folder / "**" / "*.parquet").as_posix()
    sql = (
        f"SELECT count(DISTINCT key) FROM read_parquet('{glob}') "
        "WHERE key IN (SELECT key FROM wanted)"
    )
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def estimate(
    body: Any,
    stage: str = "local",
    sample: int = 200,
    overhead_points: int = 200,
    data_root: Path | None = None,
    budget_s: float = 5.0,
) -> Estimate:
    """Estimate a request's cost on ``stage`` (see the module docstring)."""
    request = validate_request(body, limits=None)
    total, shards = request.total_points, request.shard_count
    level = logger.log_level
    logger.setLevel("WARNING")  # the worker's per-shard log lines are not the estimate's output
    try:
        per_point = _sample_cost(request, sample, budget_s)
        _worker_run(request, 1)  # warm-up: a warm worker has paid its first-call costs
        ones = [_worker_run(request, 1) for _ in range(REPEATS)]
        reads_per_shard, writes_per_shard = ones[0][1]
        fixed_cpu = statistics.median(max(0.0, cpu - bare) for cpu, _, bare in ones)
        overhead = 0.0
        if per_point < CHEAP_POINT_S:  # else the worker's own cost per point is negligible
            m = min(overhead_points, total)
            overhead = statistics.median(
                max(0.0, (cpu_m - fixed_cpu - bare_m) / m)
                for cpu_m, _, bare_m in (_worker_run(request, m) for _ in range(REPEATS))
            )
    finally:
        logger.setLevel(level)
    reused = reusable(request, data_root) if request.reuse and data_root is not None else 0

    size = pricing.function_sizes(stage)["worker"]
    scale = max(1.0, pricing.FULL_VCPU_MB / size.memory_mb)
    evaluated_share = (total - reused) / total
    per_point_s = (per_point * evaluated_share + overhead) * scale
    fixed_s = fixed_cpu * scale
    biggest = shard_bounds(total, request.shards, 0)
    seconds = [per_point_s * (total / shards) + fixed_s]
    seconds_max = per_point_s * (biggest[1] - biggest[0]) + fixed_s
    worker_gb_s = shards * pricing.gb_seconds(math.ceil(seconds[0] * 1000), size.memory_mb)
    dispatchers = 1 + math.ceil(shards / LEAF_SHARDS) if shards > LEAF_SHARDS else 1
    dispatcher = pricing.function_sizes(stage)["dispatcher"]
    # A dispatcher's own time is small next to the workers' (docs/benchmarks.md: ms per shard
    # handed over); charged DISPATCHER_S each, a guess on the high side.
    dispatcher_ms = round(DISPATCHER_S * 1000)
    gb_s = worker_gb_s + dispatchers * pricing.gb_seconds(dispatcher_ms, dispatcher.memory_mb)
    invocations = shards + dispatchers
    # A dispatcher's few requests (manifest, listings, its record) are taken as writes, the
    # dearer kind; a worker's are priced by kind as its usage record counts them.
    s3_reads = shards * reads_per_shard
    s3_writes = shards * writes_per_shard + dispatchers * 4
    s3 = s3_reads + s3_writes
    usd = pricing.usd(gb_s, invocations, s3_reads, s3_writes)
    warning = None
    limit_s = size.timeout_s * 0.8  # room for the deadline margin and a slow neighbour
    if seconds_max > limit_s:
        fitting = max(1, int((limit_s - fixed_s) / per_point_s)) if per_point_s > 0 else 1
        warning = (
            f"shards of {biggest[1] - biggest[0]} points would take ~{seconds_max:.0f} s, over "
            f'80% of the worker timeout ({size.timeout_s} s): use "shards": '
            f'{{"size": {fitting}}} or smaller'
        )
    return Estimate(
        points=total,
        shards=shards,
        points_reused=reused,
        cpu_us_per_point=round(per_point * 1e6, 2),
        worker_fixed_ms=round(fixed_cpu * 1000, 2),
        worker_memory_mb=size.memory_mb,
        cpu_scale=round(scale, 4),
        worker_seconds_per_shard=round(seconds[0], 4),
        worker_seconds_max_shard=round(seconds_max, 4),
        lambda_gb_s=round(gb_s, 4),
        invocations=invocations,
        s3_requests=s3,
        usd=round(usd, 8),
        prices=f"{pricing.PRICES.id} ({pricing.PRICES.region}, {pricing.PRICES.date})",
        warning=warning,
    )


def lines(e: Estimate) -> list[str]:
    reusable_text = (
        f"; {e.points_reused:,} reusable, {e.points - e.points_reused:,} to evaluate"
        if e.points_reused
        else ""
    )
    out = [
        f"points {e.points:,} in {e.shards:,} shards{reusable_text}",
        f"per point {e.cpu_us_per_point:,.1f} us CPU locally; worker fixed {e.worker_fixed_ms:.1f} "
        f"ms per shard; x{e.cpu_scale:g} for {e.worker_memory_mb} MB workers",
        f"worker seconds per shard ~{e.worker_seconds_per_shard:,.3f} "
        f"(largest {e.worker_seconds_max_shard:,.3f})",
        f"Lambda {e.lambda_gb_s:,.3f} GB-s, {e.invocations:,} requests; {e.s3_requests:,} S3 "
        "requests",
        f"estimated price ${e.usd:.6f} (prices {e.prices})",
    ]
    if e.warning:
        out.append(f"warning: {e.warning}")
    return out
