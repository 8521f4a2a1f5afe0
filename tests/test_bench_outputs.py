"""What a bench shows: the tutorial's figure and the other plots, files, rankings, progress."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner

import optreg
from optreg.bench import figure_sets, output_files, plots
from optreg.bench.ranking import profile, ranking_text, standings
from optreg.bench.runner import RunResult, plan_bench
from optreg.bench.session import progress_reporter
from optreg.cli import main
from tests.helpers import run_bench


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def _paths(figure):
    return [line for line in figure.axes[0].lines if line.get_gid() == "path"]


def _ends(figure):
    return [line for line in figure.axes[0].lines if line.get_gid() == "end"]


@pytest.fixture(scope="module")
def tutorial_momentum():
    plan = plan_bench(optreg.registry, ["momentum"], "quartic", [{"learning_rate": lr} for lr in (1e-3, 1e-2, 1e-1)],
                      history_every=1)
    return run_bench(plan), plan.problems[0]


def test_the_tutorials_figure_has_one_path_and_stop_marker_per_run(tutorial_momentum):
    results, problem = tutorial_momentum
    figure = plots.path_figure(results, problem)
    exploded = [line for line in figure.axes[0].lines if line.get_gid() == "exploded"]
    assert len(_paths(figure)) == 3 and len(_ends(figure)) == 2 and len(exploded) == 1
    converged = _paths(figure)[1]
    assert list(converged.get_xdata())[-1] == 80
    assert converged.get_ydata()[-1] == pytest.approx(-1.125, abs=1e-3)
    assert len(figure.axes[0].collections) == 1  # the log-loss colour map
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels[1] == "learning_rate=0.01: converged at 80" and "exploded at 6" in labels[2]


def test_plot_option_writes_the_png_at_print_resolution(tmp_path):
    target = tmp_path / "paths.png"
    result = invoke("bench", "momentum", "--lr", "0.001", "--lr", "0.01", "--lr", "0.1", "--plot", str(target))
    assert result.exit_code == 0, result.output
    png = target.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 9 * 200  # a 9-inch figure at 200 dpi


def test_plot_must_be_a_png_svg_or_pdf(tmp_path):
    result = invoke("bench", "momentum", "--plot", str(tmp_path / "paths.jpg"))
    assert result.exit_code == 2 and "--plot writes a figure as .png, .svg, .pdf" in result.output


def test_two_dimensional_problems_get_contours_with_each_trajectory():
    plan = plan_bench(
        optreg.registry, ["adam", "sgd"], "rosenbrock", [{"learning_rate": 0.01}], history_every=5, max_iters=200
    )
    results = run_bench(plan)
    figure = figure_sets.main_figure(results, plan.problems[0])
    assert len(_paths(figure)) == 2
    assert figure.axes[0].get_xlabel() == "x" and figure.axes[0].get_ylabel() == "y"
    path = _paths(figure)[0]
    assert (path.get_xdata()[0], path.get_ydata()[0]) == pytest.approx((-1.2, 1.0))


def test_sweep_figure_plots_final_loss_against_the_swept_hyperparameter():
    plan = plan_bench(optreg.registry, ["gradient_descent"], "mlp-regression",
                      [{"learning_rate": lr, "clipnorm": 2.0} for lr in (1e-4, 1e-3, 1e-2)], max_iters=50)
    results = run_bench(plan)
    figure = plots.sweep_figure(results, plan.problems[0])
    (line,) = _paths(figure)
    assert list(line.get_xdata()) == [1e-4, 1e-3, 1e-2]
    assert list(line.get_ydata()) == [r.metrics["test_loss"] for r in results]
    assert figure.axes[0].get_xscale() == "log"
    (baseline,) = [line for line in figure.axes[0].lines if line.get_gid() == "baseline"]
    assert baseline.get_ydata()[0] == results[0].metrics["baseline_test_loss"]


def test_out_writes_results_figures_and_a_ranking(tmp_path):
    result = invoke("bench", "adam", "momentum", "--problem", "quartic", "--problem", "booth",
                    "--lr", "0.01", "--lr", "0.1", "--max-iters", "300", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([
        ".optreg-bench.json", "results.json", "results.csv", "ranking.txt", "ranking.json",
        "quartic-paths.png", "quartic-loss.png", "quartic-sweep.png",
        "booth-contours.png", "booth-loss.png", "booth-sweep.png", "profile.png",
    ])
    records = json.loads((tmp_path / "results.json").read_text())
    assert len(records) == 8 and all(r["history"] is None for r in records)  # recorded for the figures only
    assert "performance profile" in (tmp_path / "ranking.txt").read_text()


QUICK = ("bench", "adam", "--lr", "0.1", "--max-iters", "5")


def test_out_replaces_an_earlier_benchs_folder_whole_and_says_so(tmp_path):
    out = tmp_path / "results"
    both = ("--problem", "quartic", "--problem", "booth")
    first = invoke("bench", "adam", *both, "--lr", "0.1", "--max-iters", "20", "--out", str(out))
    assert first.exit_code == 0 and (out / "booth-loss.png").exists() and first.stderr == ""
    second = invoke(*QUICK, "--out", str(out))
    assert second.exit_code == 0, second.output
    assert second.stderr == f"optreg: replaced the earlier bench's results in {str(out)!r}\n"
    names = sorted(p.name for p in out.iterdir())
    assert names == [".optreg-bench.json", "quartic-loss.png", "quartic-paths.png", "results.csv", "results.json"]
    written = json.loads((out / ".optreg-bench.json").read_text())["files"]
    assert sorted(written) == names[1:]  # booth's figures are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no partial sibling left


def test_out_refuses_a_folder_of_other_files_before_computing(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke(*QUICK, "--out", str(tmp_path))
    assert result.exit_code == 2 and result.stdout == ""  # no table: nothing was computed
    assert result.stderr == (
        f"optreg: error: --out {str(tmp_path)!r} holds files optreg bench did not write (notes.txt); "
        "name a new or empty folder, or one an earlier bench wrote\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_unwritable_out_or_plot_fails_in_one_line_before_computing(tmp_path):
    (tmp_path / "file").write_text("")
    for option, target in (("--out", tmp_path / "file" / "results"), ("--plot", tmp_path / "file" / "paths.png")):
        result = invoke(*QUICK, option, str(target))
        assert result.exit_code == 2 and result.stdout == "", result.output
        assert result.stderr.startswith("optreg: error: cannot write ") and result.stderr.count("\n") == 1


def test_a_write_interrupted_leaves_the_earlier_folder_as_it_was(tmp_path):
    out = tmp_path / "results"
    output_files.write_folder(out, lambda folder: [folder / "a.txt"] if (folder / "a.txt").write_text("old") else [])

    def interrupted(folder):
        (folder / "a.txt").write_text("new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        output_files.write_folder(out, interrupted)
    assert (out / "a.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_plot_interrupted_leaves_the_earlier_file_as_it_was(tmp_path):
    target = tmp_path / "paths.png"
    target.write_bytes(b"old")

    def interrupted(staging):
        staging.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        output_files.replace_file(target, interrupted)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["paths.png"]


def test_comparisons_print_a_ranking_and_a_profile():
    result = invoke("bench", "adam", "momentum", "--problem", "booth", "--problem", "himmelblau", "--lr", "0.01",
                    "--max-iters", "500")
    assert result.exit_code == 0, result.output
    ranking = result.output.split("\n\n", 1)[1]
    assert ranking.splitlines()[0].split()[:4] == ["problem", "rank", "optimizer", "best"]
    assert "performance profile" in ranking


def _result(optimizer, problem, settled_at, loss=1.0, settings=None, has_minimum=True):
    """A run that reached the tolerance at ``settled_at`` and stayed (None: never reached it)."""
    status = "reached" if settled_at is not None else "exceeded"
    return RunResult(optimizer, problem, {}, settings or {}, status, settled_at or 100, loss, (0.0,), 0.0,
                     reached_at=settled_at, has_minimum=has_minimum, settled_at=settled_at)


def test_standings_take_each_optimizers_best_run():
    results = [
        _result("a", "p", 50, settings={"learning_rate": 0.1}),
        _result("a", "p", 20, settings={"learning_rate": 0.2}),
        _result("b", "p", None, loss=0.5),
        _result("b", "p", 30),
    ]
    places = standings(results)["p"]
    assert [(s.rank, s.result.optimizer, s.solved_in) for s in places] == [(1, "a", 20), (2, "b", 30)]


def test_performance_profile_counts_problems_solved_within_tau_of_the_best():
    results = [
        _result("a", "p1", 10), _result("b", "p1", 15),
        _result("a", "p2", 40), _result("b", "p2", 10),
        _result("a", "p3", None), _result("b", "p3", None),
        _result("a", "mlp", None, loss=1.0, has_minimum=False), _result("b", "mlp", None, loss=2.0, has_minimum=False),
    ]
    fractions = profile(results, taus=(1.0, 2.0, 4.0))
    assert fractions["a"] == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    assert fractions["b"] == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    rows = [line.split()[:3] for line in ranking_text(results, taus=(1.0, 2.0, 4.0)).splitlines()]
    assert ["mlp", "1", "a"] in rows and ["p2", "1", "b"] in rows


def test_without_known_minima_there_is_no_profile():
    results = [_result("a", "mlp", None, has_minimum=False), _result("b", "mlp", None, has_minimum=False)]
    assert profile(results) == {}
    assert "no problem here has a known minimum" in ranking_text(results)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    quiet = io.StringIO()
    advance, finish = progress_reporter(5, stream=quiet)
    advance(5)
    finish()
    assert quiet.getvalue() == ""
    terminal = _Terminal()
    advance, finish = progress_reporter(5, stream=terminal)
    advance(3)
    advance(2)
    finish()
    assert "5/5" in terminal.getvalue()


def test_bench_prints_nothing_on_stderr_when_not_a_terminal():
    result = CliRunner().invoke(main, ["bench", "adam", "--lr", "0.1", "--lr", "0.01", "--max-iters", "5"])
    assert result.exit_code == 0 and result.stderr == ""


def test_ctrl_c_prints_the_problems_that_finished_and_writes_nothing(monkeypatch, tmp_path):
    from optreg.bench import execute

    finished = execute.run_problem

    def interrupted_on_booth(problem, *args):
        if problem.name == "booth":
            raise KeyboardInterrupt
        return finished(problem, *args)

    monkeypatch.setattr(execute, "run_problem", interrupted_on_booth)
    result = invoke(
        *QUICK, "--problem", "quartic", "--problem", "booth", "--format", "csv", "--out", str(tmp_path / "out")
    )
    assert result.exit_code == 130
    assert [row.split(",")[2] for row in result.stdout.splitlines()[1:]] == ["quartic"]
    assert result.stderr == "optreg: interrupted: 1 of 2 runs finished; no outputs written\n"
    assert not (tmp_path / "out").exists()


def test_ctrl_c_while_the_records_are_made_exits_as_an_interruption_and_writes_nothing(monkeypatch, tmp_path):
    """The loops have finished; the report makes the records, and Ctrl-C there is an
    interruption too (status 130, one line on stderr, nothing written), not Click's "Aborted!"."""
    from optreg.bench import run_table

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_table, "run_result", interrupted)
    result = invoke(*QUICK, "--problem", "quartic", "--out", str(tmp_path / "out"))
    assert (result.exit_code, result.stdout) == (130, "")
    assert result.stderr == "optreg: interrupted while making the report; no outputs written\n"
    assert not (tmp_path / "out").exists()


def test_ctrl_c_while_the_outputs_are_written_exits_as_an_interruption_and_keeps_the_earlier_folder(
    monkeypatch, tmp_path
):
    out = tmp_path / "out"
    assert invoke(*QUICK, "--problem", "quartic", "--out", str(out)).exit_code == 0
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir())

    def interrupted(folder):
        (folder / "results.csv").write_text("half")
        raise KeyboardInterrupt

    real = output_files.write_folder
    monkeypatch.setattr(output_files, "write_folder", lambda target, write: real(target, interrupted))
    result = invoke(*QUICK, "--problem", "quartic", "--lr", "0.01", "--out", str(out))
    assert result.exit_code == 130 and "quartic" in result.stdout  # the table was printed first
    assert result.stderr == "optreg: interrupted while writing the outputs; each is written whole or left as it was\n"
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before
