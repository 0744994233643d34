"""``make bench``: every benchmark in turn, then docs/benchmarks.md rewritten as one table.

Each benchmark runs as its own process (``python -m bench.<name> --json``), so none inherits
another's imports or warm caches; its JSON report is reduced here to the figures the table
shows. How each one measures is in its module's docstring. ``--only NAME`` runs a subset and
``--no-write`` leaves the document alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import scratch
from chalicelib.config import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "benchmarks.md"
Report = dict[str, Any]


def _partition_and_decode(r: Report) -> list[str]:
    return [f"{x['case']}: {x['best_ns_per_op']:,.0f} ns/op" for x in r["results"]]


def _worker_throughput(r: Report) -> list[str]:
    return [
        f"{x['case']}: worker/bare {x['ratio']:.3f}x CPU, +{x['overhead_us_per_point']} us/point"
        for x in r["results"]
    ]


def _dispatch(r: Report) -> list[str]:
    out = [
        f"{p['shards']:,} shards: POST /sweeps {p['route_ms_median']} ms median" for p in r["post"]
    ]
    out += [
        f"{p['shards']:,} {p['mode']}{' (extrapolated)' if p['extrapolated'] else ''}: "
        f"{p['shards_per_s']:,} shards/s, "
        f"{p['cpu_ms_per_shard']} CPU ms/shard ({p['ratio_to_floor']}x floor)"
        for p in r["passes"]
    ]
    return out


def _imports(r: Report) -> list[str]:
    return [
        f"import app: {r['import_app_ms']:.0f} ms over a bare interpreter",
        f"-X importtime, app: {r['importtime_app_cumulative_ms']:.0f} ms",
    ]


def _queries(r: Report) -> list[str]:
    return [
        f"{q['query']}: {q['median_s']:.3f} s median ({q['rows']} rows)" for q in r["queries"]
    ] + [f"{r['shards']} shards, {r['files']} files"]


def _end_to_end(r: Report) -> list[str]:
    m, cpu, sp = r["median_s"], r["cpu_s"], r["spread"]
    out = [
        f"{r['points']:,} option_pricing points, {r['shards']} shards, {r['processes']} "
        f"processes, {r['rounds']} rounds (bare pool, local stage and v1 pool back to back, "
        "order rotating), metrics identical",
        f"bare multiprocessing.Pool: {m['bare']:.2f} s median",
        f"local stage, POST to complete: {m['local']:.2f} s median",
        f"**local / bare: {r['local_over_bare']:.3f}x** (the goal's figure: median of per-round "
        f"wall ratios; min {sp['local_over_bare']['min']}, quartiles "
        f"{sp['local_over_bare']['q1']}-{sp['local_over_bare']['q3']}, max "
        f"{sp['local_over_bare']['max']}; per round {r['per_round']['local_over_bare']})",
        f"CPU s (every process): bare {', '.join(f'{x:.1f}' for x in cpu['bare'])}; local "
        f"{', '.join(f'{x:.1f}' for x in cpu['local'])}; **local / bare CPU "
        f"{r['local_over_bare_cpu']:.3f}x** (quartiles {sp['local_over_bare_cpu']['q1']}-"
        f"{sp['local_over_bare_cpu']['q3']})",
        f"hand-written pool, v1 stream: {m['bare_v1']:.2f} s median; **local / v1 pool: "
        f"{r['local_over_bare_v1']:.3f}x** (goal < 1: median of per-round wall ratios; "
        f"min {sp['local_over_bare_v1']['min']}, max {sp['local_over_bare_v1']['max']})",
    ]
    if "lithops" in m:
        out.append(
            f"Lithops localhost (once): {m['lithops']:.2f} s; **Lithops / local: "
            f"{r['lithops_over_local']:.2f}x**"
        )
    out.append(
        "all runs (s): "
        + "; ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in r["all_s"].items())
    )
    out.append(f"load after each round: {r['load_per_round']}")
    return out


def _streams(r: Report) -> list[str]:
    return [f"{x['case']}: {x['us_per_point']} us/point CPU" for x in r["results"]] + [
        f"fast paths bit-identical to point_rng: {r['identical']} (numpy {r['numpy']})"
    ]


def _reuse(r: Report) -> list[str]:
    return [
        f"{r['points']:,} option_pricing points (paths 100), {r['shards']} shards, index from "
        f"{r['sources']} earlier runs; metrics identical",
        f"evaluating: {r['evaluating_s']:.2f} s ({r['evaluating_cpu_s']:.2f} s CPU)",
        f"fully reused: {r['reusing_s']:.2f} s ({r['reusing_cpu_s']:.2f} s CPU)",
        f"**reused / evaluating: {r['reused_over_evaluating']:.2f}x**",
    ]


def _reuse_planning(r: Report) -> list[str]:
    return [
        f"{x['earlier_runs']} earlier runs of the same {r['points']:,} points ({r['shards']} "
        f"shards each): pending runs' results {x['pending']['plan_s']} s "
        f"({x['pending']['s3_requests']} requests, {x['pending']['history_rows']:,}"
        f" rows), **merged index {x['merged']['plan_s']} s** ({x['merged']['s3_requests']} "
        f"requests, {x['merged']['history_rows']:,} rows); merging a run "
        f"{x['merge_cpu_s_last_run']} s CPU"
        for x in r["results"]
    ]


def _estimate_accuracy(r: Report) -> list[str]:
    out = [
        f"{x['case']}: worker estimates {x['estimated_s_per_shard']} s/shard, billed "
        f"{x['measured_s_per_shard']} s (ratios to the median {x['ratios']}, to its own run "
        f"{x['ratios_own_run']}), CPU {x['measured_cpu_s_per_shard']} s (ratios "
        f"{x['ratios_cpu']}; median over median {x['ratio_of_medians']}); compactor estimates "
        f"{x['estimated_compactor_s']} s, billed "
        f"{x['measured_compactor_s']} s (ratios {x['compactor_ratios']}); load "
        f"{x['load_average'][0]}; machine ms (before the estimate, before its run, after it) "
        f"{x['machine_ms']}"
        for x in r["results"]
    ]
    within = (
        f"every estimate within +-30 % of the median of {r['runs']} runs: worker billed "
        f"{r['within_30_percent']}, worker CPU {r['cpu_within_30_percent']}, each case's "
        f"median estimate {r['medians_within_30_percent']}, compactor "
        f"{r['compactor_within_30_percent']} (priority raised: {r['priority_raised']}; load "
        f"average at start and end {r['load_average']})"
    )
    return [*out, within]


def _package_sizes(r: Report) -> list[str]:
    return [
        f"path A function (stage {r['stage']}, pyarrow + numpy inside): "
        f"{r['path_a_zip_mb']} MB zipped, {r['path_a_unzipped_mb']} MB unzipped (limit 250)",
        f"path B layer, trimmed by {r['layer_trimmed_mb']} MB: {r['layer_zip_mb']} MB zipped, "
        f"{r['layer_unzipped_mb']} MB unzipped",
        f"path B function: {r['path_b_function_zip_mb']} MB zipped (limit 50), "
        f"{r['path_b_function_unzipped_mb']} MB unzipped",
        f"**path B function + layer: {r['path_b_total_unzipped_mb']} MB unzipped** (goal 200)",
    ]


def _worker_memory(r: Report) -> list[str]:
    out = [
        f"{x['points']:,} points: peak RSS {x['peak_rss_mb']} MB ({x['results_mb']} MB of results)"
        for x in r["sizes"]
    ]
    out.append(f"**peak(largest) - peak(smallest): {r['growth_mb']} MB** (goal <= 64)")
    out += [
        f"{x['points']:,} points all reused: peak RSS {x['peak_rss_mb']} MB"
        for x in r.get("reuse_sizes", [])
    ]
    if "reuse_growth_mb" in r:
        out.append(
            f"**peak(largest, reused) - peak(smallest): {r['reuse_growth_mb']} MB** (goal <= 64)"
        )
    return out


def _scale(r: Report) -> list[str]:
    out = [
        "shards: POST ms / done s (runs) / complete s / per-shard ms from done, from complete / "
        "status local complete, running ms / status S3 model complete, running ms / "
        "run_summary s / files / a new file on the data root, CPU us"
    ]
    for x in r["rows"]:
        runs = ", ".join(map(str, x.get("done_s_runs", [])))
        out.append(
            f"{x['shards']:,}: {x['post_ms']} / {x.get('done_s', '-')} ({runs}) / "
            f"{x['complete_s']} / {x.get('per_shard_ms', '-')}, {x.get('per_shard_seen_ms', '-')} "
            f"/ {x['status_local_complete_ms']}, {x['status_local_running_ms']} / "
            f"{x['status_s3_complete_ms']}, {x['status_s3_running_ms']} / "
            f"{x['query_run_summary_s']} / {x['files']:,} / {x.get('new_file_us', '-')}"
        )
    out.append(
        "compaction (issue 16): shards: compaction s / pool processes' peak RSS MB / files after "
        "per partition (<= ceil(bytes / target)) / per baseline query s before -> after (after "
        "/ first size's after, in wall and in CPU seconds); before is a median of 3 except "
        "where marked 'once' (a first run over 5 s), after a median of 15"
    )
    for x in r["rows"]:
        files = ", ".join(
            f"{p} {f['files']} (<= {f['bound']})" for p, f in x["files_after"].items()
        )
        ratios = x.get("query_ratio_vs_first", {})
        cpu = x.get("query_cpu_ratio_vs_first", {})
        once = set(x.get("query_before_timed_once", ()))
        queries = ", ".join(
            f"{q} {x['query_before_s'][q]}{' once' if q in once else ''} -> {t}"
            + (f" ({ratios[q]}x wall" if q in ratios else "")
            + (f", {cpu[q]}x CPU)" if q in cpu else ")" if q in ratios else "")
            for q, t in x["query_after_s"].items()
        )
        peak = x.get("pool_peak_rss_mb", "-")
        out.append(f"{x['shards']:,}: {x['compaction_s']} / {peak} / {files} / {queries}")
    return out + _scale_goals(r["rows"])


def _scale_goals(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 16's goals, each with its verdict on this run's figures."""
    per_shard = {x["shards"]: x["per_shard_ms"] for x in rows if x.get("per_shard_ms")}
    biggest = max(rows, key=lambda x: x["shards"])
    ten_k = next((x for x in rows if x["shards"] == 10_000), None)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [
        "**goals**: per-shard overhead <= 1 ms: "
        + ", ".join(f"{n:,}: {v} ms" for n, v in per_shard.items())
        + f" ({verdict(all(v <= 1 for v in per_shard.values()))})",
        f"status of the complete {biggest['shards']:,}-shard run <= 100 ms: "
        f"{biggest['status_local_complete_ms']} ms local, {biggest['status_s3_complete_ms']} ms "
        "S3 model ("
        + verdict(max(biggest["status_local_complete_ms"], biggest["status_s3_complete_ms"]) <= 100)
        + f"); running <= 1 s: {biggest['status_local_running_ms']} ms, "
        f"{biggest['status_s3_running_ms']} ms ("
        + verdict(max(biggest["status_local_running_ms"], biggest["status_s3_running_ms"]) <= 1000)
        + ")",
        "files per compacted partition <= ceil(bytes / target): "
        + verdict(all(f["files"] <= f["bound"] for x in rows for f in x["files_after"].values())),
    ]
    if ten_k is not None and ten_k.get("query_ratio_vs_first"):
        worst = max(ten_k["query_ratio_vs_first"].values())
        lines.append(
            f"every baseline query over the compacted 10,000-shard run <= 1.3x the first size's: "
            f"worst {worst}x ({verdict(worst <= 1.3)}; each a median of the rounds, one run)"
        )
    return lines


def _compaction_s3(r: Report) -> list[str]:
    return [
        f"{x['shards']:,} shards, {x['in_flight']} request(s) in flight: compaction "
        f"{x['compaction_s']} s ({x['compaction_requests']:,} requests), clean-up "
        f"{x['clean_up_s']} s ({x['clean_up_requests']:,} requests); {x['per_shard_ms']} ms a "
        f"shard, **{x['per_100k_s']:,} s at 100,000 shards** (timeout {r['timeout_s']}); peak "
        f"RSS +{x['peak_rss_growth_mb']} MB"
        for x in r["results"]
    ]


def _restart(r: Report) -> list[str]:
    per_round = [x["restart_to_complete_s"] for x in r["rounds"]]
    pending = [x["pending_at_restart"] for x in r["rounds"]]
    return [
        f"killed mid-run (shards pending at restart: {pending}), restarted on its data root",
        f"**restart to complete: {r['median_s']:.1f} s median** (goal <= {r['goal_s']}; "
        f"rounds {per_round}); baseline: the stall timeout, {r['stall_timeout_s']} s",
    ]


def _load(r: Report) -> list[str]:
    """The machine's load while a benchmark ran, when its report measured it."""
    if "load_1min" not in r:
        return []
    before, after = r["load_1min"]
    return [f"machine load (1-min average): {before} at start, {after} at end"]


# name → (extra arguments, figures from its JSON report)
BENCHES: dict[str, tuple[list[str], Callable[[Report], list[str]]]] = {
    "end_to_end": ([], _end_to_end),
    "partition_and_decode": ([], _partition_and_decode),
    "worker_throughput": ([], _worker_throughput),
    "streams": ([], _streams),
    "reuse": (["--points-per-axis", "100", "--sources", "10"], _reuse),
    "reuse_planning": ([], _reuse_planning),
    "estimate_accuracy": ([], _estimate_accuracy),
    "dispatch": ([], _dispatch),
    "imports": ([], _imports),
    "queries": ([], _queries),
    "package_sizes": ([], _package_sizes),
    "worker_memory": ([], _worker_memory),
    "scale": ([], _scale),
    "compaction_s3": ([], _compaction_s3),
    "restart": (["--rounds", "2"], _restart),
}


def machine() -> str:
    return (
        f"{os.cpu_count()} CPU {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def described(temp: Path | None) -> str:
    """Where the benchmarks' temporary folders go (``None``: the system's), with its file
    system."""
    where = temp if temp is not None else Path(tempfile.gettempdir())
    return f"{where} ({scratch.file_system(where)})"


def run(name: str, extra: list[str], temp: Path | None) -> tuple[Report, float]:
    started = time.monotonic()
    env = os.environ | ({"TMPDIR": str(temp)} if temp is not None else {})
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *extra, "--json"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    report: Report = json.loads(done.stdout)
    return report, time.monotonic() - started


def kept_rows(rerun: set[str]) -> list[str]:
    """The committed table's rows of benchmarks not run this time (``--only``)."""
    if not DOC.exists():
        return []
    return [
        line
        for line in DOC.read_text().splitlines()
        if line.startswith("| ")
        and not line.startswith(("| benchmark ", "| --- "))
        and line.split(" | ")[0][2:] not in rerun
    ]


# A row: benchmark, command, figures, seconds it took, when it was measured (UTC), where its
# temporary folders were ("" for a report saved from a run of its own, which does not say).
Row = tuple[str, str, list[str], float, datetime, str]


def render(rows: list[Row], kept: list[str] | None = None) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run_all.py`); do not edit by hand. How each benchmark",
        "measures, and what it leaves out, is in the docstring of its module under `bench/`.",
        "Wall-clock figures on a shared machine include the neighbours: compare figures within",
        "one row (measured side by side), not across runs.",
        "",
        "Each row's machine cell says when it was measured: `make bench` reruns every row,",
        "`--only` reruns some and keeps the others as they were (rows without a date were",
        "measured before rows were dated, 2026-12-06).",
        "",
        "Temporary folders (the local stage's data roots among them) are on a tmpfs when the",
        "machine has one with room (`bench/scratch.py` says why: on this VM's disk, creating a",
        "file cost what the last minutes' deletions made it); a row measured so says",
        "`temp: /dev/shm (tmpfs)` in its machine cell.",
        "",
        "| benchmark | command | figures | machine |",
        "| --- | --- | --- | --- |",
    ]
    lines += kept or []  # --only: the rows not rerun, once (main passes them)
    for name, command, figures, seconds, measured, temp in rows:
        cell = "<br>".join(figures) + f"<br>(took {seconds:.0f} s)"
        where = f", temp: {temp}" if temp else ""
        lines.append(
            f"| {name} | `{command}` | {cell} | {measured:%Y-%m-%d %H:%M} UTC, {machine()}{where} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(BENCHES))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="take NAME's JSON report from FILE (saved from `python -m bench.NAME ... --json`, "
        "whose report names its own command) instead of running it",
    )
    args = parser.parse_args(argv)
    reused = dict(item.split("=", 1) for item in args.reuse)
    temp = scratch.folder()
    where = described(temp)
    rows = []
    for name, (extra, figures) in BENCHES.items():
        if args.only and name not in args.only and name not in reused:
            continue
        command = " ".join([".venv/bin/python", "-m", f"bench.{name}", *extra])
        if name in reused:
            # Dated when the report was saved (its file's time), not when it is rendered.
            saved = Path(reused[name])
            report = json.loads(saved.read_text())
            command, seconds = report["command"], float(report["took_s"])
            measured = datetime.fromtimestamp(saved.stat().st_mtime, UTC)
            rows.append((name, command, figures(report) + _load(report), seconds, measured, ""))
            continue
        print(f"\n=== {command}", flush=True)
        report, seconds = run(name, extra, temp)
        now = datetime.now(UTC)
        rows.append((name, command, figures(report) + _load(report), seconds, now, where))
        print("\n".join(rows[-1][2]), flush=True)
    # --only: the other benchmarks' rows stay as they were measured (their own dates apply).
    text = render(rows, kept_rows({r[0] for r in rows}) if args.only else [])
    if not args.no_write:
        DOC.write_text(text)
        print(f"\nwrote {DOC.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
