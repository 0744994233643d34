"""``sweep plot`` picks the picture that fits the design: a scatter coloured by the metric for
sampled axes, heatmaps and lines for gridded ones, log axes where the values ask for them."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from chalicelib.config import PROJECT_ROOT
from chalicelib.model import ids
from chalicelib.simulations.registry import REGISTRY
from chalicelib.storage import layout
from scripts.local_runs import run_sweep
from sweeps import cli, plots
from sweeps.engines.local import LocalEngine

LHS_RUN = ids.new_run_id(datetime(2026, 4, 1, 10, 0, tzinfo=UTC))
GRID_RUN = ids.new_run_id(datetime(2026, 4, 1, 11, 0, tzinfo=UTC))


def example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PROJECT_ROOT / "examples" / name).read_text())
    return body


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plots")
    lhs = example("lhs.json")
    lhs["sample"]["points"] = 40
    run_sweep(root, lhs, LHS_RUN, "2026-04-01")
    grid = copy.deepcopy(example("option-pricing.json"))
    grid["fail_shards"] = []
    grid["parameters"]["paths"] = {"values": [200]}
    run_sweep(root, grid, GRID_RUN, "2026-04-01")
    return root


def draw(root: Path, tmp: Path, **spec: Any) -> plots.Written:
    spec.setdefault("y", None)
    written = plots.draw(LocalEngine(root), plots.PlotSpec(**spec), tmp / "plot.png")
    with Image.open(written.path) as image:
        assert (image.format, image.size) == ("PNG", (800, 600))
    return written


def test_sampled_axes_are_a_scatter_with_the_loguniform_axis_on_a_log_scale(
    root: Path, tmp_path: Path
) -> None:
    written = draw(root, tmp_path, run_id=LHS_RUN, x="spot", y="volatility", metric="price")
    assert (written.kind, written.points) == ("scatter", 80)
    assert (written.logx, written.logy) == (False, True)  # volatility is loguniform
    forced = draw(
        root,
        tmp_path,
        run_id=LHS_RUN,
        x="spot",
        y="volatility",
        metric="price",
        logy=False,
        logx=True,
    )
    assert (forced.logx, forced.logy) == (True, False)
    one_axis = draw(
        root, tmp_path, run_id=LHS_RUN, x="rate", metric="price", where={"option": "put"}
    )
    assert (one_axis.kind, one_axis.points) == ("scatter", 40)


def test_without_the_manifest_the_shape_of_the_points_decides(root: Path, tmp_path: Path) -> None:
    manifest = root / layout.manifest(LHS_RUN)
    saved = manifest.read_bytes()
    manifest.unlink()
    try:
        engine = LocalEngine(root)
        assert plots.run_request(engine, LHS_RUN) is None
        written = draw(root, tmp_path, run_id=LHS_RUN, x="spot", y="volatility", metric="price")
        assert written.kind == "scatter"
        assert written.logy is False  # 0.05..0.8 spans barely more than a decade
    finally:
        manifest.write_bytes(saved)


def test_gridded_axes_stay_heatmaps_and_lines(root: Path, tmp_path: Path) -> None:
    heat = draw(root, tmp_path, run_id=GRID_RUN, x="strike", y="volatility", metric="price")
    assert (heat.kind, heat.points) == ("heatmap", 162)
    lines = draw(root, tmp_path, run_id=GRID_RUN, x="strike", metric="price")
    assert lines.kind == "lines" and not lines.logx
    errors = draw(root, tmp_path, run_id=GRID_RUN, x="strike", metric="abs_error", logy=None)
    values = [
        r["value"]
        for r in LocalEngine(root)
        .execute(
            plots.build_sql(
                REGISTRY["option_pricing"],
                plots.PlotSpec(GRID_RUN, "strike", None, "abs_error"),
                "volatility",
            )
        )
        .rows
    ]
    assert errors.logy == (min(values) > 0 and max(values) > 100 * min(values))


def test_log_defaults_follow_the_span_of_positive_values() -> None:
    assert plots.log_axis(None, "x", [1.0, 50.0], None) is False
    assert plots.log_axis(None, "x", [1.0, 101.0], None) is True
    assert plots.log_axis(None, "x", [0.0, 1e6], None) is False  # a log axis cannot show 0
    assert plots.log_axis(False, "x", [1.0, 1e6], None) is False
    loguniform = {"sample": {"axes": {"x": {"loguniform": {"low": 1, "high": 2}}}}}
    assert plots.log_axis(None, "x", [1.0, 2.0], loguniform) is True


def sweep_plot(root: Path, *args: str) -> Result:
    """``sweep plot`` over the data root; the loopback API is never called (the local engine
    reads ``--root``), and nothing answers on it."""
    return CliRunner().invoke(
        cli.main, ["--api", "http://127.0.0.1:9", "plot", *args, "--root", str(root)]
    )


def test_an_output_path_that_cannot_be_written_is_an_error_line(root: Path, tmp_path: Path) -> None:
    """A file where the PNG's folder should be: an ``error:`` line naming the path, exit 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "p.png"
    answer = sweep_plot(root, GRID_RUN, "--x", "strike", "--metric", "price", "-o", str(target))
    assert answer.exit_code == 1 and answer.exception is not None
    assert isinstance(answer.exception, SystemExit), answer.exception
    assert answer.stderr.splitlines() == [f"error: cannot write {target}: File exists"]


def test_where_matches_a_float_as_the_labels_show_it(root: Path, tmp_path: Path) -> None:
    """The run's volatility is a linspace (0.1 to 0.5, 9 values): it stores
    0.15000000000000002, its plots label it 0.15, and ``--where volatility=0.15`` finds it."""
    stored = LocalEngine(root).execute(
        f"SELECT DISTINCT volatility FROM results_option_pricing WHERE run_id = '{GRID_RUN}'"
    )
    assert 0.15000000000000002 in [r["volatility"] for r in stored.rows]
    args = [GRID_RUN, "--x", "strike", "--metric", "price", "-o", str(tmp_path / "p.png")]
    found = sweep_plot(root, *args, "--where", "volatility=0.15")
    assert found.exit_code == 0, found.output
    assert found.stdout.strip() == str(tmp_path / "p.png")
    assert points_drawn(found) * 9 == points_drawn(sweep_plot(root, *args))


def points_drawn(answer: Result) -> int:
    """The points ``sweep plot`` says it drew ("wrote p.png (lines, 18 points, 800x600)")."""
    match = re.search(r"\((?:lines|heatmap|scatter), (\d+) points,", answer.stderr)
    assert match is not None, answer.output
    return int(match.group(1))


def test_a_where_value_no_point_has_is_named_with_the_nearest_stored_ones(
    root: Path, tmp_path: Path
) -> None:
    args = [GRID_RUN, "--x", "strike", "--metric", "price", "-o", str(tmp_path / "p.png")]
    answer = sweep_plot(root, *args, "--where", "volatility=0.16", "--where", "option=cal")
    assert answer.exit_code == 1
    assert answer.stderr.splitlines() == [
        f"error: no points of run {GRID_RUN} with a price to plot; "
        "no point has volatility=0.16 (nearest: 0.15000000000000002, 0.2, 0.1); "
        "no point has option=cal (it has: call, put)"
    ]
