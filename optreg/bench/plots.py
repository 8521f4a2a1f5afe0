"""Bench figures with matplotlib (headless): paths, contours, loss curves and sweeps.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure` built without pyplot,
so nothing needs a display and tests can inspect the artists before saving. Paths and curves
need the runs' history (``history_every``); a path line carries ``gid="path"`` and an end
point ``gid="end"``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from optreg.bench.ranking import settings_text
from optreg.bench.runner import RunResult
from optreg.problems import Problem


def _figure(width: float = 9, height: float = 6):
    """A figure with one axes, on the Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _label(result: RunResult, results: Sequence[RunResult]) -> str:
    """A run's legend label: its optimizer when several are plotted, and its settings."""
    several = len({r.optimizer for r in results}) > 1
    words = settings_text(result)
    return f"{result.optimizer} {words}" if several else words


def _colours(count: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "viridis"]
    return [cmap(i if count <= 10 else i / max(count - 1, 1)) for i in range(count)]


def _log_loss(problem: Problem, points: np.ndarray) -> np.ndarray:
    """log10 of the loss above the problem's minimum (or above the smallest loss seen)."""
    import tensorflow as tf

    loss = problem.loss(tf.constant(points, tf.float32)).numpy().astype(np.float64)
    floor = problem.minimum_loss if problem.minimum_loss is not None else np.nanmin(loss)
    return np.log10(np.maximum(loss - floor, 1e-12))


def _with_history(results: Sequence[RunResult]) -> list[RunResult]:
    return [r for r in results if r.history and r.history["iterations"]]


def path_figure(results: Sequence[RunResult], problem: Problem):
    """The tutorial's figure for a 1-D problem: log loss as a colour map over (iteration,
    parameter value), with each run's parameter path and its end point.

    Example:
        >>> figure = path_figure(results, problem)  # doctest: +SKIP
        >>> len([line for line in figure.axes[0].lines if line.get_gid() == "path"])  # doctest: +SKIP
        3
    """
    runs = _with_history(results)
    figure, axes = _figure()
    values = np.concatenate([np.asarray(r.history["params"])[:, 0] for r in _framing(runs)] + [_anchors(problem)[:, 0]])
    low, high = _padded(*_finite_range(values))
    last = max([r.iterations for r in runs] + [1])
    grid_values = np.linspace(low, high, 300)
    colour = _log_loss(problem, grid_values[:, None])
    mesh = axes.pcolormesh([0, last], grid_values, np.repeat(colour[:, None], 2, axis=1), shading="nearest")
    figure.colorbar(mesh, ax=axes, label="log10 loss above the minimum")
    for run, colour_of_run in zip(runs, _colours(len(runs))):
        iterations, path = np.asarray(run.history["iterations"]), np.asarray(run.history["params"])[:, 0]
        axes.plot(iterations, path, color=colour_of_run, gid="path")
        axes.plot(run.iterations, run.final_params[0], "o", color=colour_of_run, gid="end",
                  label=f"{_label(run, runs)}: {run.status} at {run.iterations}")
    axes.set(xlabel="iteration", ylabel="parameter value", title=f"{problem.name}: parameter paths",
             xlim=(0, last * 1.02), ylim=(low, high))
    axes.legend(loc="upper right")
    return figure


def contour_figure(results: Sequence[RunResult], problem: Problem):
    """For a 2-D problem: log-loss contours with each run's trajectory and end point.

    Example:
        >>> contour_figure(results, problem).savefig("contours.png")  # doctest: +SKIP
    """
    runs = _with_history(results)
    figure, axes = _figure(8, 7)
    stacked = np.concatenate([np.asarray(r.history["params"]) for r in _framing(runs)] + [_anchors(problem)])
    (x_low, x_high), (y_low, y_high) = (_padded(*_finite_range(stacked[:, k])) for k in (0, 1))
    xs, ys = np.meshgrid(np.linspace(x_low, x_high, 200), np.linspace(y_low, y_high, 200))
    levels = _log_loss(problem, np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(xs.shape)
    filled = axes.contourf(xs, ys, levels, levels=30)
    figure.colorbar(filled, ax=axes, label="log10 loss above the minimum")
    if problem.minimum is not None:
        axes.plot(*problem.minimum, "*", color="white", markersize=14, label="minimum")
    for run, colour in zip(runs, _colours(len(runs))):
        path = np.asarray(run.history["params"])
        axes.plot(path[:, 0], path[:, 1], color=colour, gid="path")
        axes.plot(*run.final_params[:2], "o", color=colour, gid="end", label=f"{_label(run, runs)}: {run.status}")
    axes.set(xlabel="x", ylabel="y", title=f"{problem.name}: trajectories", xlim=(x_low, x_high), ylim=(y_low, y_high))
    axes.legend(loc="upper right")
    return figure


def loss_figure(results: Sequence[RunResult], problem: Problem):
    """Loss against iteration on a log scale, one curve per run.

    Example:
        >>> loss_figure(results, problem).savefig("loss.png")  # doctest: +SKIP
    """
    runs = _with_history(results)
    figure, axes = _figure()
    floor = problem.minimum_loss
    for run, colour in zip(runs, _colours(len(runs))):
        loss = np.asarray(run.history["loss"], np.float64)
        shown = loss - floor if floor is not None else loss
        axes.plot(run.history["iterations"], np.maximum(shown, 1e-12), color=colour, gid="path", label=_label(run, runs))
    axes.set_yscale("log")
    above = " above the minimum" if floor is not None else ""
    axes.set(xlabel="iteration", ylabel=f"loss{above}", title=f"{problem.name}: loss")
    if len(runs) <= 12:
        axes.legend(loc="upper right")
    return figure


def swept(results: Sequence[RunResult]) -> str | None:
    """The first hyperparameter whose value differs between runs, or None.

    Example:
        >>> swept([])
    """
    names = []
    for run in results:
        names += [name for name in run.settings if name not in names]
    for name in names:
        if len({repr(r.settings.get(name)) for r in results}) > 1:
            return name
    return None


def sweep_figure(results: Sequence[RunResult], problem: Problem):
    """The chapter's learning-rate experiment: final loss (and, where runs solved the problem,
    iterations to its tolerance) against the swept hyperparameter, one line per optimizer.

    Example:
        >>> sweep_figure(results, problem).savefig("sweep.png")  # doctest: +SKIP
    """
    name = swept(results) or "learning_rate"
    figure, axes = _figure()
    metric = "test_loss" if any("test_loss" in r.metrics for r in results) else "final_loss"
    for optimizer, colour in zip(sorted({r.optimizer for r in results}), _colours(len(results))):
        mine = sorted((r for r in results if r.optimizer == optimizer and name in r.settings), key=lambda r: r.settings[name])
        xs = [float(r.settings[name]) for r in mine]
        ys = [r.metrics.get(metric, r.final_loss) for r in mine]
        axes.plot(xs, ys, "o-", color=colour, gid="path", label=f"{optimizer}: {metric.replace('_', ' ')}")
        if "baseline_test_loss" in (mine[0].metrics if mine else {}):
            axes.axhline(mine[0].metrics["baseline_test_loss"], color="grey", linestyle="--", label="constant baseline")
    values = [float(r.settings[name]) for r in results if name in r.settings]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set(xlabel=name, ylabel=metric.replace("_", " "), title=f"{problem.name}: sweep over {name}")
    axes.legend(loc="best")
    return figure


def main_figure(results: Sequence[RunResult], problem: Problem):
    """The one figure ``--plot`` draws: the paths for a 1-D problem, contours for a 2-D one,
    the loss curves otherwise.

    Example:
        >>> main_figure(results, problem).savefig("paths.png")  # doctest: +SKIP
    """
    if problem.dimension == 1:
        return path_figure(results, problem)
    if problem.dimension == 2:
        return contour_figure(results, problem)
    return loss_figure(results, problem)


def write_figures(results: Sequence[RunResult], problems: Sequence[Problem], folder: Path) -> list[Path]:
    """Every figure that fits each problem, as ``PROBLEM-KIND.png`` files in ``folder``.

    Returns:
        The files written.

    Example:
        >>> write_figures(results, plan.problems, Path("out"))  # doctest: +SKIP
    """
    written = []
    for problem in problems:
        mine = [r for r in results if r.problem == problem.name]
        figures = {}
        if _with_history(mine):
            if problem.dimension == 1:
                figures["paths"] = path_figure(mine, problem)
            elif problem.dimension == 2:
                figures["contours"] = contour_figure(mine, problem)
            figures["loss"] = loss_figure(mine, problem)
        if swept(mine):
            figures["sweep"] = sweep_figure(mine, problem)
        for kind, figure in figures.items():
            path = folder / f"{problem.name}-{kind}.png"
            figure.savefig(path, dpi=100)
            written.append(path)
    return written


def _framing(runs: Sequence[RunResult]) -> list[RunResult]:
    """The runs whose paths set a figure's range: all but those that exploded (whose paths
    leave any useful window), or all when every run exploded."""
    kept = [r for r in runs if r.status != "exploded"]
    return kept or list(runs)


def _anchors(problem: Problem) -> np.ndarray:
    """Points every figure of a problem shows: its start and, where known, its minimum."""
    points = [problem.start] + ([problem.minimum] if problem.minimum is not None else [])
    return np.asarray(points, np.float64)


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    """The smallest and largest finite values, kept within ±1e6 so a runaway path cannot make
    the figure unreadable."""
    finite = np.clip(values[np.isfinite(values)], -1e6, 1e6)
    return float(finite.min()), float(finite.max())


def _padded(low: float, high: float) -> tuple[float, float]:
    """A range around [low, high] with a margin (and some width when they coincide)."""
    span = high - low
    margin = 0.1 * span if span > 0 else max(abs(low) * 0.1, 0.5)
    return (low - margin, high + margin) if math.isfinite(margin) else (-1.0, 1.0)
