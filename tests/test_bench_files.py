"""The bench's files: strict JSON of one versioned schema, CSV of fixed columns, figures in the
format and size asked, the sweep figure's colours and marks, and the performance profile.

Most runs are made by hand (no optimizer runs); three cheap benches go through the command.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re

import attrs
import numpy as np
import pytest
from click.testing import CliRunner

from optreg.bench import figure_files, plots, result_schema
from optreg.bench.figure_files import FigureSize, parse_figure_size
from optreg.bench.profile_figure import profile_figure
from optreg.bench.ranking import TAUS, performance_ratios, profile
from optreg.bench.runner import RunResult
from optreg.cli import main
from optreg.errors import OptionError
from optreg.problems.analytic import BOOTH
from tests.test_doc_tables import page, table_headed, without_row

NAN, INF = float("nan"), float("inf")


def _refuse(constant):
    raise ValueError(f"not strict JSON: {constant}")


def strict_loads(text):
    """json.loads that refuses NaN, Infinity and -Infinity, as strict parsers do."""
    return json.loads(text, parse_constant=_refuse)


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def _run(optimizer="adam", problem="booth", status="exceeded", loss=1.0, params=(0.5, 0.5), reached_at=None,
         metrics=None, history=None, iterations=10, settled_at=None, **settings):
    return RunResult(optimizer, problem, dict(settings), dict(settings), status, iterations, loss, tuple(params), 0.25,
                     reached_at=reached_at, metrics=metrics or {}, history=history, settled_at=settled_at)


MIXED = [
    _run("adam", learning_rate=0.01, beta_1=0.9),
    _run("sgd", status="exploded", loss=NAN, params=(INF, NAN), momentum=0.5,
         history={"iterations": [0, 5], "loss": [74.0, NAN], "params": [[0.0, 0.0], [INF, NAN]]}),
    _run("adam", "mlp-regression", metrics={"test_loss": 3400.0, "baseline_test_loss": NAN}, params=tuple(range(49))),
]


# --- JSON --------------------------------------------------------------------------------


def test_the_strict_parser_refuses_what_json_dumps_writes_by_default():
    with pytest.raises(ValueError, match="NaN"):
        strict_loads(json.dumps([NAN]))


def test_json_is_strict_and_every_record_has_every_field_in_order():
    records = strict_loads(result_schema.records_json(MIXED))
    names = [field.name for field in result_schema.FIELDS]
    assert [list(record) for record in records] == [names] * 3
    assert {record["schema_version"] for record in records} == {result_schema.SCHEMA_VERSION}
    adam, sgd, mlp = records
    assert adam["nonfinite"] == [] and adam["history"] is None and adam["final_loss"] == 1.0
    assert (sgd["status"], sgd["final_loss"], sgd["final_params"]) == ("exploded", None, [None, None])
    assert sgd["history"]["loss"] == [74.0, None] and sgd["history"]["params"] == [[0.0, 0.0], [None, None]]
    assert sgd["nonfinite"] == ["final_loss", "final_params[0]", "final_params[1]", "history.loss[1]",
                                "history.params[1][0]", "history.params[1][1]"]
    assert mlp["metrics"] == {"test_loss": 3400.0, "baseline_test_loss": None}
    assert mlp["nonfinite"] == ["metrics.baseline_test_loss"]


def test_history_is_held_only_when_asked_and_many_nonfinite_entries_are_named_once():
    long = _run(status="exploded", loss=NAN, params=(NAN,) * 5)
    record = strict_loads(result_schema.records_json([long]))[0]
    assert record["nonfinite"] == ["final_loss", "final_params"] and record["final_params"] == [None] * 5
    assert strict_loads(result_schema.records_json(MIXED[1:2], with_history=False))[0]["history"] is None


def test_a_bench_that_explodes_writes_strict_json_to_stdout_and_out(tmp_path):
    result = invoke("bench", "sgd", "momentum", "--lr", "0.01,10", "--max-iters", "20", "--no-jit", "--format", "json",
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    printed = strict_loads(result.stdout)
    assert any(r["status"] == "exploded" and r["final_loss"] is None and "final_loss" in r["nonfinite"]
               for r in printed)
    assert strict_loads((tmp_path / "out" / "results.json").read_text()) == printed
    # sgd and momentum stack: their 4 runs are one loop call, whose time the shares add up to once
    assert {(r["loop_id"], r["loop_runs"], r["loop_iterations"]) for r in printed} == {(0, 4, 20)}
    assert math.fsum(r["seconds_share"] for r in printed) == pytest.approx(printed[0]["loop_seconds"], rel=1e-12)
    assert all(r["seconds_to_target"] is None for r in printed if r["settled_at"] is None)
    ranking = strict_loads((tmp_path / "out" / "ranking.json").read_text())
    assert set(ranking) == {"standings", "profile"}
    rows = list(csv.reader(io.StringIO((tmp_path / "out" / "results.csv").read_text())))
    assert rows[0] == result_schema.csv_columns() and len(rows) == 5


# --- CSV ---------------------------------------------------------------------------------


def test_csv_columns_are_the_same_whatever_ran():
    alone = [_run("sgd", momentum=0.5)]
    for runs in (MIXED, alone, []):
        header = next(csv.reader(io.StringIO(result_schema.csv_text(runs))))
        assert header == [f.name for f in result_schema.FIELDS if f.name != "history"]


def test_csv_cells_are_json_for_objects_and_empty_for_null():
    rows = list(csv.DictReader(io.StringIO(result_schema.csv_text(MIXED))))
    adam, sgd, mlp = rows
    assert json.loads(adam["settings"]) == {"learning_rate": 0.01, "beta_1": 0.9}
    assert json.loads(sgd["hyperparameters"]) == {"momentum": 0.5}
    assert (sgd["final_loss"], sgd["reached_at"], json.loads(sgd["final_params"])) == ("", "", [None, None])
    assert json.loads(sgd["nonfinite"]) == ["final_loss", "final_params[0]", "final_params[1]"]
    assert json.loads(mlp["metrics"]) == {"test_loss": 3400.0, "baseline_test_loss": None}
    assert float(adam["final_loss"]) == 1.0 and int(adam["iterations"]) == 10


# --- the documented schema ---------------------------------------------------------------


def schema_table_problems(text: str) -> list[str]:
    """How the field table of docs/benchmarking.md differs from result_schema.FIELDS."""
    documented = [(name.strip("`"), kind, csv_cell) for name, kind, csv_cell, _ in
                  table_headed(text, "field", "type", "in CSV", "meaning")]
    actual = [(f.name, f.kind, "yes" if f.in_csv else "no") for f in result_schema.FIELDS]
    return [f"page {d}, code {a}" for d, a in zip(documented, actual) if d != a] + (
        [f"the page has {len(documented)} fields, the code {len(actual)}"] if len(documented) != len(actual) else [])


def test_the_documented_schema_is_the_schema_written():
    assert schema_table_problems(page("docs/benchmarking.md")) == []


def test_a_field_missing_from_the_documented_schema_is_caught():
    count = len(result_schema.FIELDS)
    assert schema_table_problems(without_row(page("docs/benchmarking.md"), "`nonfinite`")) == [
        f"the page has {count - 1} fields, the code {count}"]
    changed = page("docs/benchmarking.md").replace("| `seconds_share` | number |", "| `seconds_share` | integer |")
    assert schema_table_problems(changed) == [
        "page ('seconds_share', 'integer', 'yes'), code ('seconds_share', 'number', 'yes')"]


# --- figure files ------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _svg_size(text: str) -> tuple[str, str]:
    root = re.search(r"<svg[^>]*>", text).group(0)
    return re.search(r'\swidth="([^"]*)"', root).group(1), re.search(r'\sheight="([^"]*)"', root).group(1)


def _pdf_page(data: bytes) -> tuple[float, float]:
    assert data[:5] == b"%PDF-"
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    return float(box.group(1)), float(box.group(2))


@pytest.fixture(scope="module")
def sweep():
    return plots.sweep_figure(SWEEP, BOOTH)


@pytest.mark.parametrize("size", [FigureSize(1200, 800), FigureSize(400, 600)])
def test_figures_are_written_in_the_format_and_size_asked(tmp_path, sweep, size):
    figure_files.save_figure(sweep, tmp_path / "s.png", size)
    figure_files.save_figure(sweep, tmp_path / "s.svg", size)
    figure_files.save_figure(sweep, tmp_path / "s.pdf", size)
    assert _png_size((tmp_path / "s.png").read_bytes()) == (size.width, size.height)
    svg = (tmp_path / "s.svg").read_text()
    assert _svg_size(svg) == (f"{size.width}px", f"{size.height}px") and "<path" in svg
    width, height = _pdf_page((tmp_path / "s.pdf").read_bytes())
    assert width / height == pytest.approx(size.width / size.height, rel=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pdf", "s.png", "s.svg"]  # no staging file left


def test_a_figure_without_a_size_keeps_its_laid_out_size(tmp_path):
    figure = profile_figure(PROFILED)
    inches = figure.get_size_inches()
    figure_files.save_figure(figure, tmp_path / "p.png")
    assert _png_size((tmp_path / "p.png").read_bytes()) == tuple(round(v * figure_files.DPI) for v in inches)


@pytest.mark.parametrize("text, message", [
    ("1200", "takes WIDTHxHEIGHT in pixels"), ("12.5x800", "takes WIDTHxHEIGHT"), ("1200x-8", "takes WIDTHxHEIGHT"),
    ("100x800", "the width must be 200 to 8000 pixels, got 100"),
    ("1200x9000", "the height must be 200 to 8000 pixels, got 9000"),
])
def test_a_bad_size_is_one_clear_error(text, message):
    with pytest.raises(OptionError, match=re.escape(message)):
        parse_figure_size(text)
    assert parse_figure_size(" 1200X800 ") == FigureSize(1200, 800)


def test_bad_figure_options_fail_before_anything_runs(tmp_path):
    cases = [
        (["--plot", str(tmp_path / "a.png"), "--plot-size", "50x50"], "--plot-size '50x50': the width must be"),
        (["--plot-size", "800x600"], "--plot-size sizes the figures of --plot, --plot-profile and --out"),
        (["--plot-profile", str(tmp_path / "p.gif")], "--plot-profile writes a figure as .png, .svg, .pdf"),
        (["--plot-profile", str(tmp_path / "p.svg"), "--problem", "mlp-regression"],
         "--plot-profile needs a problem with a known minimum"),
    ]
    for extra, message in cases:
        result = invoke("bench", "adam", "--max-iters", "5", *extra)
        assert result.exit_code == 2 and message in result.stderr, (extra, result.output)
    assert list(tmp_path.iterdir()) == []


def test_plot_and_profile_through_the_command(tmp_path):
    plot, profile = tmp_path / "paths.svg", tmp_path / "profile.pdf"
    result = invoke("bench", "adam", "momentum", "--problem", "booth", "--lr", "0.05",
                    "--max-iters", "50", "--no-jit", "--plot", str(plot), "--plot-profile", str(profile),
                    "--plot-size", "1000x500", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert _svg_size(plot.read_text()) == ("1000px", "500px")
    width, height = _pdf_page(profile.read_bytes())
    assert width / height == pytest.approx(2.0, rel=1e-3)
    assert _png_size((tmp_path / "out" / "profile.png").read_bytes()) == (1000, 500)
    assert _png_size((tmp_path / "out" / "booth-loss.png").read_bytes()) == (1000, 500)


# --- the sweep figure --------------------------------------------------------------------


def _booth(optimizer, lr, loss, status="exceeded", **settings):
    return _run(optimizer, "booth", status, loss, learning_rate=lr, **settings)


RATES = (1e-3, 1e-2, 1e-1, 1.0)
SWEEP = [
    *[_booth("adam", lr, 10 ** -(k + 1), beta_1=beta) for beta in (0.8, 0.9) for k, lr in enumerate(RATES)],
    *[_booth("sgd", lr, 1.0 / (k + 1)) for k, lr in enumerate(RATES[:2])],
    _booth("sgd", 0.1, NAN, "exploded"), _booth("sgd", 1.0, INF, "exceeded"),  # neither has a finite loss
    _booth("momentum", 0.01, 0.0), _booth("momentum", 0.1, 0.5),  # 0.0: at the known minimum
]


def _by_gid(figure, gid):
    return [line for line in figure.axes[0].lines if line.get_gid() == gid]


def test_the_sweep_gives_each_optimizer_one_colour_and_each_other_setting_its_own_line(sweep):
    lines = _by_gid(sweep, "path")
    assert [line.get_label() for line in lines] == ["adam beta_1=0.8", "adam beta_1=0.9", "sgd", "momentum"]
    colours = {line.get_label().split()[0]: set() for line in lines}
    for line in lines:
        colours[line.get_label().split()[0]].add(tuple(np.round(line.get_color(), 6)))
    assert all(len(mine) == 1 for mine in colours.values()) and len(set.union(*colours.values())) == 3
    adam_08, adam_09 = lines[:2]
    assert adam_08.get_linestyle() != adam_09.get_linestyle()
    for line in lines:  # each line runs left to right: no zig-zag between two swept settings
        assert np.all(np.diff(line.get_xdata()) > 0)
    assert list(adam_08.get_xdata()) == list(RATES)
    assert sweep.axes[0].get_xlabel() == "learning_rate"


def test_the_sweep_marks_nonfinite_and_zero_runs_on_the_frame_with_key_entries(sweep):
    sgd_colour = _by_gid(sweep, "path")[2].get_color()
    exploded, zero = _by_gid(sweep, "exploded"), _by_gid(sweep, "zero")
    assert sorted(m.get_xdata()[0] for m in exploded) == [0.1, 1.0]
    assert all(m.get_ydata()[0] == 1.0 and m.get_color() == sgd_colour for m in exploded)  # the top edge
    assert [(m.get_xdata()[0], m.get_ydata()[0]) for m in zero] == [(0.01, 0.0)]  # the bottom edge
    assert all(m.get_transform() == sweep.axes[0].get_xaxis_transform() for m in exploded + zero)
    labels = [text.get_text() for legend in sweep.legends for text in legend.get_texts()]
    assert "exploded or not finite (top edge)" in labels and "at or below zero on this axis (bottom edge)" in labels
    momentum = _by_gid(sweep, "path")[3]
    floor = momentum.get_ydata()[0]
    assert floor < BOOTH.tolerance and "≤ 0 drawn at" in sweep.axes[0].get_ylabel()  # drawn beneath the tolerance


def test_the_sweep_axis_prefers_the_learning_rate_and_skips_non_numeric_settings():
    runs = [_booth("adam", 0.1, 1.0, use_ema=flag, beta_1=beta) for flag in (True, False) for beta in (0.8, 0.9)]
    assert plots.swept(runs) == "beta_1"
    assert plots.swept(SWEEP) == "learning_rate"
    assert plots.swept([_booth("adam", 0.1, 1.0, use_ema=flag) for flag in (True, False)]) is None


# --- the performance profile -------------------------------------------------------------


def _solved(optimizer, problem, at):
    return _run(optimizer, problem, "converged" if at else "exceeded", 1e-9, reached_at=at, settled_at=at)


PROFILED = [
    _solved("adam", "booth", 10), _solved("sgd", "booth", 20), _solved("momentum", "booth", None),
    _solved("adam", "beale", 40), _solved("sgd", "beale", 10), _solved("momentum", "beale", 30),
    _solved("adam", "himmelblau", 5), _solved("sgd", "himmelblau", None), _solved("momentum", "himmelblau", None),
    RunResult("adam", "mlp-regression", {}, {}, "exceeded", 10, 1.0, (0.0,), 0.0, has_minimum=False),  # not judged
]


def test_performance_ratios_divide_by_the_fewest_iterations_on_each_problem():
    assert performance_ratios(PROFILED) == {
        "adam": [1.0, 4.0, 1.0], "sgd": [2.0, 1.0, math.inf], "momentum": [math.inf, 3.0, math.inf],
    }


def test_the_profile_figure_draws_one_step_curve_per_optimizer_in_its_own_colour():
    figure = profile_figure(PROFILED)
    curves = [line for line in figure.axes[0].lines if line.get_gid() == "profile"]
    assert len(curves) == 3 and len({tuple(np.round(c.get_color(), 6)) for c in curves}) == 3
    adam, sgd, momentum = curves
    assert list(adam.get_xdata()) == [1.0, 4.0, 5.0] and list(adam.get_ydata()) == pytest.approx([2 / 3, 1.0, 1.0])
    assert sgd.get_ydata()[0] == pytest.approx(1 / 3) and sgd.get_ydata()[-1] == pytest.approx(2 / 3)
    assert momentum.get_ydata()[0] == 0.0 and momentum.get_ydata()[-1] == pytest.approx(1 / 3)
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert labels == ["adam: solved 3 of 3", "sgd: solved 2 of 3", "momentum: solved 1 of 3"]
    assert figure.axes[0].get_xscale() == "log" and figure.axes[0].get_xlim()[0] == 1.0


def test_the_figures_ratios_are_the_rankings():
    """The figure draws the ranking's ratios, seeds and a start already within tolerance
    included: each curve steps at exactly the finite ratios of
    :func:`~optreg.bench.ranking.performance_ratios`, to the fraction of them at most that τ,
    and the ranking's profile table is the same fractions."""
    seeded = [
        attrs.evolve(_solved(name, problem, at), seed=seed)
        for name, problem, ats in [
            ("adam", "booth", (10, 30)), ("sgd", "booth", (20, 20)), ("adam", "beale", (0, 0)),
            ("sgd", "beale", (4, None)), ("momentum", "booth", (0, 8)), ("momentum", "beale", (3, 1)),
        ]
        for seed, at in enumerate(ats)
    ]
    ratios = performance_ratios(seeded)
    assert ratios == {"adam": [5.0, 1.0], "sgd": [5.0, math.inf], "momentum": [1.0, 2.0]}
    lines = [line for line in profile_figure(seeded).axes[0].lines if line.get_gid() == "profile"]
    for (name, mine), curve in zip(ratios.items(), lines):
        xs, ys = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
        finite = sorted({r for r in mine if math.isfinite(r)} | {1.0})
        assert list(xs[:-1]) == finite, name  # the last step is the right edge
        assert list(ys) == pytest.approx([np.mean(np.asarray(mine) <= x) for x in xs]), name
    assert profile(seeded, taus=(1.0, 2.0, 5.0)) == {
        name: pytest.approx([np.mean(np.asarray(ratios[name]) <= tau) for tau in (1.0, 2.0, 5.0)]) for name in ratios
    }


def test_a_profile_without_a_known_minimum_is_refused():
    with pytest.raises(ValueError, match="known minimum"):
        profile_figure(PROFILED[-1:])


def test_the_profile_figure_agrees_with_the_rankings_profile_table():
    table = profile(PROFILED)
    lines = [line for line in profile_figure(PROFILED).axes[0].lines if line.get_gid() == "profile"]
    curves = dict(zip(performance_ratios(PROFILED), lines))
    assert sorted(curves) == sorted(table)
    for name, fractions in table.items():
        curve = curves[name]
        xs, ys = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
        drawn = [ys[np.flatnonzero(xs <= tau)[-1]] for tau in TAUS]  # a post-step curve's height at τ
        assert drawn == pytest.approx(fractions), name
