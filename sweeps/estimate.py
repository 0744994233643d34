"""``sweep estimate``: what a sweep will cost, from a small local sample, before submitting it.

How it measures (CPU time of this process, or for the compactor its time on a core of its own,
so neighbours on a shared machine matter less):

1. **Per point**: a random sample of the request's points (200, or fewer once a third of 5 s
   of CPU is spent; seeded so two estimates agree) evaluated through the worker's own
   evaluator (``Simulation.evaluator``: the same simulation code and stream fast path), in up
   to three passes; a point's time is the median of its passes, the simulation's cost per
   point the mean over the sample.
2. **Worker overhead, measured now, never a constant** (the worker's own cost per shard
   changes with its code and its store): ``run_task``, the worker function's code path
   (task validation, decoding, results Parquet, outcome and usage records, every
   write the current code makes), delivered a 1-point shard of the request and, when points
   are cheap (< 2 ms), a 200-point shard of its first points, on a ``LocalStore`` (the local
   stage's store kind) in a temp folder inside the data root (a ``.tmp-`` name, which no
   listing reads). Each shard is delivered ten times to one store: the first delivery is a
   warm-up and not counted (a warm Lambda invocation has paid its first-call costs; a cold
   start is not modelled), and between deliveries the store's objects are removed but its
   folders kept, as a warm worker's later shards of a run find them. Each delivery less the
   bare evaluation of its points, timed right after it, is the worker's own cost; the medians
   give the fixed cost per shard and the worker's cost per point (negligible next to points of
   2 ms or more). The same deliveries give the S3 requests a shard makes, reads and writes
   (their usage records), each priced as its kind.
3. **Scaling to Lambda**: Lambda gives a function CPU in proportion to its memory, one full vCPU
   at 1,769 MB (``pricing.FULL_VCPU_MB``). Single-threaded work runs ``1769 / memory`` times
   longer below that and no faster above it, so local CPU seconds are multiplied by
   ``max(1, 1769 / worker memory)`` (the stage's, from .chalice/config.json). A local core is
   taken to be as fast as a Lambda vCPU: compare ``sweep status``'s measured cost after a run.
4. **Billing**: each invocation is billed its duration rounded up to 1 ms, which adds half a
   ms a shard on average.
5. **The compactor**, charged to the run like the workers (``runs.cost``): two invocations, the
   compaction once status finds the run complete (its files rewritten, its reuse index merged
   into its family's, ``reuse.merge_run``) and the clean-up once the grace period is over.
   Measured, never a constant: ``compact_event`` (the function's handler body) on copies of
   small complete runs of the request's own points made by ``run_task`` (2 and 8 shards of 1
   point, and 2 shards of up to 1,000 points), each invocation timed over five runs after a
   warm-up, medians, as the time it takes on a core of its own (wall-clock less the time it
   waited for a core: the compactor waits on its own parallel reads and its file writes, a
   quarter of a small compaction's time here, which CPU time leaves out); that gives a fixed
   cost, a cost per shard and one per row, scaled to the run's shards and points, at the
   compactor's memory from the stage config (a single-threaded job runs no faster above
   1,769 MB). Its S3 requests come from the same
   invocations' usage records, linear in the shards. Its GB-s, its two requests and its S3
   requests join the totals.

Not modelled: cold starts (an environment's first invocation imports numpy and pyarrow: a few
hundred ms, paid once per environment, not per shard); S3's latency on a deployed stage (the
worker's and the compactor's requests are timed against a local folder, so their seconds there
are a lower bound: the requests are counted and priced, their round trips not timed; for the
compactor, which reads a run's files one by one, that can be most of its time on S3); the
points a family's earlier runs left in its merged reuse index, which each compaction reads and
rewrites with the run's own (the estimate merges into an empty family); a paced run's root
dispatcher (a deployed stage whose concurrency would be exceeded paces the hand-out: that
dispatcher waits and lists every few seconds for the run's whole dispatch, charged here
``DISPATCHER_S`` like any other); Lambda's free tier (list prices only); a loaded machine's
waits, which the local stage's wall-clock durations include and CPU time does not
(bench.estimate_accuracy reports both); a local disk whose cost of creating a file depends on
what was deleted there minutes before (ext4 without a journal: ``bench/scratch.py``), which a
local stage's run of many cheap shards can pay and the estimate's few deliveries do not.
What a process freed before does not matter: glibc's malloc thresholds are pinned here as in
the workers (``simulations.allocator``), so a point's arrays come from the heap in both.

Shards' seconds are the per-point cost times their size plus the fixed cost; GB-s, requests and
price follow with ``pricing``. With ``"reuse": true``, points already in the stage's reuse index
are counted and only the others charged: on the local stage through the plan's own reading of
the index (``reuse.history``, exactly what the run's plan will copy), on a deployed one by a
query over the table ``reuse`` on Athena (``sweeps.reuse_count``: runs merged by their
compaction). The largest shard's seconds, and the warning and suggested ``shards.size`` when it
nears the worker's timeout, charge every point as evaluated: which shard copies what is not
known here, and reused points are usually one block, so a shard may copy none of them.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chalicelib.simulations.math_threads  # noqa: F401  (first: time points as workers run)
from chalicelib import pricing
from chalicelib.analytics.catalog import NoCatalog
from chalicelib.config import Settings
from chalicelib.execution import reuse
from chalicelib.execution.compaction import compact_event
from chalicelib.execution.worker import run_task
from chalicelib.logs import logger
from chalicelib.model.events import INITIAL, run_task_payload, task_payload
from chalicelib.model.manifest import Manifest
from chalicelib.model.request import Limits, SweepRequest
from chalicelib.model.sharding import shard_bounds, tree_size
from chalicelib.model.validation import validate_request
from chalicelib.runs import cost
from chalicelib.simulations import allocator  # noqa: F401  (the workers' malloc thresholds)
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import manifests, summary
from chalicelib.storage.stores import LocalStore

if TYPE_CHECKING:
    from sweeps.engines.base import QueryEngine

RUN_ID = "20000101T000000000Z-estimate0000"
DISPATCHER_S = 0.25
# The S3 (reads, writes) of a run's root dispatcher that is also its leaf on S3, as its usage
# record counts them (a test runs one on moto): the summary's GET, the manifest's, the cancel
# marker's HEAD; the redrive lists' listing, the registered and pending marks, the dispatch
# record and the usage record itself. Inner dispatchers of a tree make fewer; each is charged
# these.
DISPATCHER_REQUESTS = (3, 5)
CHEAP_POINT_S = 0.002
# The share of the warning's limit a suggested shards.size is meant to take.
SUGGESTED_SHARE = 0.9
ROUND_UP_S = 0.0005
# Each worker timing is a median of this many runs: one run of a few ms varies by 2x or more
# (a collection, a neighbour's burst), and the fixed cost is most of a cheap shard's seconds.
REPEATS = 9
# A sampled point's time is the median of this many passes over it (budget allowing).
PASSES = 3
# The compactor's timings (``_compactor_timing``): counted runs of each invocation (after a
# warm-up), the most points a shard of its per-row run has, the fewest it is measured with,
# and the evaluation it may spend producing them.
COMPACTOR_REPEATS = 5
COMPACTOR_ROWS = 1000
COMPACTOR_MIN_ROWS = 50
COMPACTOR_ROW_BUDGET_S = 1.0


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
    compactor_seconds: float
    compactor_memory_mb: int
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


SCHEDSTAT = Path("/proc/thread-self/schedstat")


def _own_core(fn: Any) -> float:
    """Seconds ``fn`` takes on a core of its own: its wall-clock time less the time this thread
    waited for a core (Linux's schedstat, its second field), so the waits it makes itself
    (the compactor's reads issued at once, its files written) count and a neighbour's turn
    does not. Where there is no schedstat, its CPU time."""
    try:
        waited = int(SCHEDSTAT.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return _cpu(fn)
    started = time.perf_counter()
    fn()
    took = time.perf_counter() - started
    waited = int(SCHEDSTAT.read_text().split()[1]) - waited
    return max(0.0, took - waited / 1e9)


def _sample_cost(request: SweepRequest, sample: int, budget_s: float) -> float:
    """CPU seconds per point, over a random sample of the request's points: ``sample`` of
    them, or fewer (at least 3) once a third of ``budget_s`` is spent, each evaluated in up to
    ``PASSES`` passes (within the budget) and timed by the median of its passes: one pass of
    200 points varied by 1.8x from one estimate to the next on a loaded machine, and the
    fastest pass was as far below what a run then measured. The first sampled point is
    evaluated once untimed before (and its time counted in the budget): a process's first
    evaluation pays NumPy's and the allocator's first-call costs, which a warm worker has
    paid."""
    sim = REGISTRY[request.simulation]
    total = request.total_points
    picked = random.Random(0).sample(range(total), min(sample, total))
    evaluate = sim.evaluator(request.seed)
    points: list[dict[str, Any]] = []
    times: list[list[float]] = []
    spent = _cpu(lambda: evaluate(request.space.point(picked[0])))
    for i in picked:
        point = request.space.point(i)
        took = _cpu(lambda point=point: evaluate(point))
        points.append(point)
        times.append([took])
        spent += took
        if spent > budget_s / PASSES and len(points) >= min(3, len(picked)):
            break
    first = spent
    for _ in range(PASSES - 1):
        if spent + first > budget_s:
            break
        for k, point in enumerate(points):
            took = _cpu(lambda point=point: evaluate(point))
            times[k].append(took)
            spent += took
    return sum(statistics.median(t) for t in times) / len(times)


def _reset(root: Path) -> None:
    """Remove every object of a store folder, keeping its folders: the next delivery of the
    shard finds the store as a warm worker's later shard of the run does (the run's folders
    exist; its own keys do not)."""
    for folder, _, files in os.walk(root):
        for name in files:
            os.unlink(os.path.join(folder, name))


@dataclass(frozen=True)
class ShardTiming:
    """The worker's own CPU seconds on one shard (its ``run_task`` less the bare evaluation of
    its points), median of ``REPEATS`` deliveries, and the S3 (reads, writes) one makes."""

    worker_s: float
    requests: tuple[int, int]


def _shard_timing(request: SweepRequest, size: int, scratch: Path | None) -> ShardTiming:
    """Shard 0 of the request resharded to ``size`` points, delivered ``1 + REPEATS`` times to
    ``run_task`` (the worker function's code path) on a ``LocalStore`` (the local stage's
    store kind, in a temp folder inside the data root when there is one: the same file
    system). The first delivery is a warm-up and not counted, as a warm Lambda invocation does
    not pay its environment's first-call costs; between deliveries the store's objects are
    removed but its folders kept (``_reset``). Each counted delivery's bare evaluation of the
    same points, through the same evaluator, is timed right after it and subtracted."""
    body = request.to_dict() | {"shards": {"size": size}}
    body.pop("fail_shards", None)
    body.pop("crash_shards", None)
    body.pop("reuse", None)
    resharded = validate_request(body, limits=None)
    bounds = shard_bounds(resharded.total_points, resharded.shards, 0)
    sim = REGISTRY[request.simulation]
    # As a dispatcher sends it: with the run's simulation version, so no manifest is read.
    payload = task_payload(RUN_ID, 0, bounds, "2000-01-01", resharded.to_dict(), sim.version)
    evaluate = sim.values_evaluator(request.seed)
    base, floats = sim.defaults, sim.float_names
    points = [(p, r) for _, p, r in resharded.space.iter_points(*bounds, base, floats)]
    own: list[float] = []
    with tempfile.TemporaryDirectory(prefix=".tmp-estimate-", dir=scratch) as tmp:
        store = LocalStore(Path(tmp))
        for delivery in range(1 + REPEATS):
            _reset(Path(tmp))
            cpu = _cpu(lambda: run_task(payload, None, store, 0))
            bare = _cpu(lambda: [evaluate(p, r) for p, r in points])
            if delivery:
                own.append(max(0.0, cpu - bare))
        worker = cost.usage_by_function(store, RUN_ID)["worker"]  # the last delivery's
        requests = (worker.s3_reads, worker.s3_writes)
    return ShardTiming(statistics.median(own), requests)


@dataclass(frozen=True)
class CompactorTiming:
    """The compactor's two invocations a run causes, as CPU seconds and S3 requests that are
    linear in the run's shards and rows (``fit``): the compaction (its files rewritten, its
    reuse index merged into its family's, the catalog pointed) and, once the grace period is
    over, the clean-up that deletes what the compaction replaced (a later invocation, the
    reconciler's)."""

    compact: tuple[float, float, float]  # s on a core of its own: fixed, per shard, per row
    cleanup: tuple[float, float, float]
    reads: tuple[float, float]  # both invocations' S3 reads: fixed, per shard
    writes: tuple[float, float]

    def seconds(self, shards: int, rows: int) -> tuple[float, float]:
        """Seconds of (the compaction, the clean-up) for a run of that size."""
        return tuple(  # type: ignore[return-value]
            fixed + per_shard * shards + per_row * rows
            for fixed, per_shard, per_row in (self.compact, self.cleanup)
        )

    def billed(self, stage: str, shards: int, rows: int) -> CompactorBill:
        """Both invocations billed on ``stage`` for a run of that size: each its seconds at the
        compactor's memory (a single-threaded job runs no faster above 1,769 MB, slower below)
        plus the 1 ms round-up's half on average; S3 requests linear in the shards."""
        size = pricing.function_sizes(stage)["compactor"]
        scale = max(1.0, pricing.FULL_VCPU_MB / size.memory_mb)
        seconds = tuple(t * scale + ROUND_UP_S for t in self.seconds(shards, rows))
        return CompactorBill(
            seconds,
            sum(seconds) * size.memory_mb / 1024,
            round(self.reads[0] + self.reads[1] * shards),
            round(self.writes[0] + self.writes[1] * shards),
            size.memory_mb,
        )


@dataclass(frozen=True)
class CompactorBill:
    """What ``CompactorTiming.billed`` gives: each invocation's seconds (the compaction's
    first), their GB-s, their S3 reads and writes, and the compactor's memory."""

    seconds: tuple[float, ...]
    gb_s: float
    s3_reads: int
    s3_writes: int
    memory_mb: int


@dataclass(frozen=True)
class _Compacted:
    """Median seconds of each invocation on a core of its own (``_own_core``) over
    ``COMPACTOR_REPEATS`` runs, and the S3 (reads, writes) both made, on one small complete
    run."""

    compact_s: float
    cleanup_s: float
    requests: tuple[int, int]


def _complete_run(request: SweepRequest, shards: int, size: int, root: Path) -> None:
    """A complete run of ``shards`` shards of ``size`` of the request's points under ``root``,
    as the stage leaves it for its compactor: the manifest, the run marked pending in its
    reuse family (the root dispatcher's mark, which the compaction's merge reads), each shard
    delivered to ``run_task`` (the worker's code path: results, outcome, usage record), and
    the summary that status writes on finding it complete."""
    body = request.to_dict() | {"shards": {"size": size}}
    for fault in ("fail_shards", "crash_shards", "reuse"):
        body.pop(fault, None)
    resharded = validate_request(body, limits=None)
    store = LocalStore(root)
    own = Limits(resharded.total_points, resharded.shard_count, False)  # a throw-away run's
    run = Manifest.new(RUN_ID, datetime(2000, 1, 1, tzinfo=UTC), "estimate", resharded, own)
    manifests.save(store, run)
    reuse.mark_pending(store, run, INITIAL)  # as its root dispatcher does
    for shard in range(shards):
        run_task(run_task_payload(run, shard), None, store, 0)
    summary.write(store, RUN_ID, summary.RunProgress(shards, [], []))


def _compacted(request: SweepRequest, shards: int, size: int, scratch: Path | None) -> _Compacted:
    """The compactor's two invocations (``compact_event``, the function's handler body) on a
    copy of one small complete run (``_complete_run``), ``1 + COMPACTOR_REPEATS`` times, the
    first a warm-up not counted: the compaction as status's trigger asks for it, then the
    clean-up as the reconciler asks for it once the grace period is over (here 0 s)."""
    compacting = Settings()
    cleaning = replace(compacting, compaction_grace_s=0)
    event = {"run_id": RUN_ID}
    compact_s: list[float] = []
    cleanup_s: list[float] = []
    requests = (0, 0)
    with tempfile.TemporaryDirectory(prefix=".tmp-estimate-", dir=scratch) as tmp:
        template = Path(tmp) / "run"
        _complete_run(request, shards, size, template)
        for repeat in range(1 + COMPACTOR_REPEATS):
            work = Path(tmp) / f"copy-{repeat}"
            shutil.copytree(template, work)
            store = LocalStore(work)
            compacted = _own_core(lambda s=store: compact_event(event, s, compacting, NoCatalog()))
            cleaned = _own_core(lambda s=store: compact_event(event, s, cleaning, NoCatalog()))
            if repeat:
                compact_s.append(compacted)
                cleanup_s.append(cleaned)
            used = cost.usage_by_function(store, RUN_ID)["compactor"]
            requests = (used.s3_reads, used.s3_writes)
            shutil.rmtree(work)
    return _Compacted(statistics.median(compact_s), statistics.median(cleanup_s), requests)


def _compactor_timing(
    request: SweepRequest, per_point_s: float, scratch: Path | None
) -> CompactorTiming:
    """The compactor's cost for this request's run, measured on three small complete runs of
    its own points (never a constant): 2 and 8 shards of 1 point give the fixed cost and the
    cost per shard (the files it lists, reads, rewrites and deletes), 2 shards of ``m`` points
    the cost per row (rewriting results, merging the reuse index). ``m`` is
    ``COMPACTOR_ROWS``, fewer where the request has fewer points or producing them would take
    more than ``COMPACTOR_ROW_BUDGET_S`` of evaluation; below ``COMPACTOR_MIN_ROWS`` the cost
    per row is not measured (a difference of a few rows is noise) and taken as 0: such a run
    has few rows, or rows so dear (over 10 ms a point) that compacting them (microseconds
    each) is lost next to evaluating them."""
    total = request.total_points
    small, big = min(2, total), min(8, total)
    m = min(COMPACTOR_ROWS, total // 2, int(COMPACTOR_ROW_BUDGET_S / max(per_point_s, 1e-9) / 2))
    a = _compacted(request, small, 1, scratch)
    b = _compacted(request, big, 1, scratch) if big > small else a
    c = _compacted(request, small, m, scratch) if m >= COMPACTOR_MIN_ROWS else a

    def fit(pick: Callable[[_Compacted], float]) -> tuple[float, float, float]:
        per_row = max(0.0, (pick(c) - pick(a)) / (small * (m - 1))) if c is not a else 0.0
        extra = big - small
        per_shard = max(0.0, (pick(b) - pick(a)) / extra - per_row) if extra else 0.0
        fixed = max(0.0, pick(a) - small * (per_shard + per_row))
        return fixed, per_shard, per_row

    def linear(k: int) -> tuple[float, float]:
        extra = big - small
        per_shard = (b.requests[k] - a.requests[k]) / extra if extra else 0.0
        return a.requests[k] - small * per_shard, per_shard

    return CompactorTiming(
        fit(lambda t: t.compact_s), fit(lambda t: t.cleanup_s), linear(0), linear(1)
    )


def reusable(request: SweepRequest, data_root: Path) -> int:
    """Points of ``request`` a run would copy now from the local stage's reuse index: the
    plan's own reading of the history (``reuse.history``) and matching (``reuse.reusable``),
    so the count is what the run's status then reports as ``points_reused``."""
    sim = REGISTRY[request.simulation]
    store = LocalStore(data_root)
    past = reuse.history(store, reuse.family(sim.name, sim.version, request.seed), RUN_ID)
    return reuse.reusable(past, sim, request) if len(past) else 0


@dataclass(frozen=True)
class _Measured:
    per_point: float  # CPU s of a sampled point
    shard: ShardTiming  # the worker's own cost on a 1-point shard
    overhead: float  # the worker's own CPU s per point beyond the first
    compactor: CompactorTiming


def _measure(
    request: SweepRequest,
    sample: int,
    overhead_points: int,
    budget_s: float,
    scratch: Path | None,
) -> _Measured:
    """Every local measurement the estimate scales (module docstring, steps 1 and 2)."""
    total = request.total_points
    level = logger.log_level
    logger.setLevel("WARNING")  # the worker's per-shard log lines are not the estimate's output
    try:
        per_point = _sample_cost(request, sample, budget_s)
        one = _shard_timing(request, 1, scratch)
        overhead = 0.0
        if per_point < CHEAP_POINT_S and total > 1:  # else the worker's own cost per point
            m = min(overhead_points, total)  # is negligible next to the point's
            if m > 1:
                many = _shard_timing(request, m, scratch)
                overhead = max(0.0, (many.worker_s - one.worker_s) / (m - 1))
        compactor = _compactor_timing(request, per_point, scratch)
    finally:
        logger.setLevel(level)
    return _Measured(per_point, one, overhead, compactor)


def estimate(
    body: Any,
    stage: str = "local",
    sample: int = 200,
    overhead_points: int = 200,
    data_root: Path | None = None,
    budget_s: float = 5.0,
    engine: QueryEngine | None = None,
) -> Estimate:
    """Estimate a request's cost on ``stage`` (see the module docstring). Reusable points are
    counted by a query on ``engine`` when given (``reuse_count``: Athena for a deployed
    stage), else from the local stage's index under ``data_root``."""
    request = validate_request(body, limits=None)
    total, shards = request.total_points, request.shard_count
    scratch = data_root if data_root is not None and data_root.is_dir() else None
    measured = _measure(request, sample, overhead_points, budget_s, scratch)
    per_point, overhead, compactor = measured.per_point, measured.overhead, measured.compactor
    reads_per_shard, writes_per_shard = measured.shard.requests
    fixed_cpu = measured.shard.worker_s
    reused = 0
    if request.reuse and engine is not None:
        from sweeps import reuse_count

        reused = reuse_count.count(engine, request)
    elif request.reuse and data_root is not None:
        reused = reusable(request, data_root)

    size = pricing.function_sizes(stage)["worker"]
    scale = max(1.0, pricing.FULL_VCPU_MB / size.memory_mb)
    evaluated_share = (total - reused) / total
    per_point_s = (per_point * evaluated_share + overhead) * scale
    # A shard's longest case evaluates every point: reused points are usually contiguous (a
    # widened axis adds a block of new ones), so one shard may copy nothing while the run's
    # share is high. The totals keep the share; the largest shard and its warning do not.
    per_point_full_s = (per_point + overhead) * scale
    fixed_s = fixed_cpu * scale
    biggest = shard_bounds(total, request.shards, 0)
    # Billed per invocation: its duration rounded up to 1 ms, half a ms more on average.
    seconds = per_point_s * (total / shards) + fixed_s + ROUND_UP_S
    seconds_max = per_point_full_s * (biggest[1] - biggest[0]) + fixed_s + ROUND_UP_S
    worker_gb_s = shards * seconds * size.memory_mb / 1024
    # The dispatcher tree at the stage's shape (its defaults: no stage config sets them).
    shape = Settings()
    dispatchers = tree_size(shards, shape.dispatch_leaf_shards, shape.dispatch_width)
    dispatcher = pricing.function_sizes(stage)["dispatcher"]
    # A dispatcher's own time is small next to the workers' (docs/benchmarks.md: ms per shard
    # handed over); charged DISPATCHER_S each, a guess on the high side.
    dispatcher_ms = round(DISPATCHER_S * 1000)
    gb_s = worker_gb_s + dispatchers * pricing.gb_seconds(dispatcher_ms, dispatcher.memory_mb)
    compacting = compactor.billed(stage, shards, total)
    gb_s += compacting.gb_s
    invocations = shards + dispatchers + len(compacting.seconds)
    # Every request priced by kind, as the usage records count them.
    s3_reads = shards * reads_per_shard + dispatchers * DISPATCHER_REQUESTS[0] + compacting.s3_reads
    s3_writes = (
        shards * writes_per_shard + dispatchers * DISPATCHER_REQUESTS[1] + compacting.s3_writes
    )
    s3 = s3_reads + s3_writes
    usd = pricing.usd(gb_s, invocations, s3_reads, s3_writes)
    warning = None
    limit_s = size.timeout_s * 0.8  # room for the deadline margin and a slow neighbour
    if seconds_max > limit_s:
        # The size suggested lands a tenth below the limit, its round-up included: one that
        # landed on it exactly warned again when estimated, the machine a little slower.
        room = limit_s * SUGGESTED_SHARE - fixed_s - ROUND_UP_S
        fitting = max(1, int(room / per_point_full_s)) if per_point_full_s else 1
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
        worker_seconds_per_shard=round(seconds, 4),
        worker_seconds_max_shard=round(seconds_max, 4),
        compactor_seconds=round(compacting.seconds[0], 4),
        compactor_memory_mb=compacting.memory_mb,
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
        f"(largest {e.worker_seconds_max_shard:,.3f}); compactor ~{e.compactor_seconds:,.3f} s "
        f"at {e.compactor_memory_mb} MB, and its clean-up",
        f"Lambda {e.lambda_gb_s:,.3f} GB-s, {e.invocations:,} requests; {e.s3_requests:,} S3 "
        "requests",
        f"estimated price ${e.usd:.6f} (prices {e.prices})",
    ]
    if e.warning:
        out.append(f"warning: {e.warning}")
    return out
