"""Which figures a bench draws, and writing them: ``--plot``'s one figure for a problem
(:func:`main_figure`), and every figure that fits each problem, with the performance profile,
into an ``--out`` folder (:func:`write_figures`). The figures themselves are
:mod:`optreg.bench.plots`' and :mod:`optreg.bench.profile_figure`'s."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from optreg.bench import plot_style as style
from optreg.bench.figure_files import FigureSize
from optreg.bench.plots import contour_figure, loss_figure, path_figure, sweep_figure, swept, with_history
from optreg.bench.profile_figure import profile_figure
from optreg.bench.ranking import performance_ratios
from optreg.bench.runner import RunResult
from optreg.problems import Problem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["main_figure", "write_figures"]


def main_figure(results: Sequence[RunResult], problem: Problem) -> Figure:
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


def write_figures(
    results: Sequence[RunResult], problems: Sequence[Problem], folder: Path, size: FigureSize | None = None,
    profile: bool = False,
) -> list[Path]:
    """Every figure that fits each problem, as ``PROBLEM-KIND.png`` files in ``folder``, and
    with ``profile`` the performance profile as ``profile.png`` (when a problem has a known
    minimum).

    Args:
        results: the bench's runs.
        problems: its problems.
        folder: where the files go.
        size: every figure's size in pixels, or None for the size each is laid out at.
        profile: whether to draw the performance profile (a bench that compares).

    Returns:
        The files written.

    Example:
        >>> write_figures(results, plan.problems, Path("out"))  # doctest: +SKIP
    """
    written = []
    for problem in problems:
        mine = [r for r in results if r.problem == problem.name]
        figures = {}
        if with_history(mine):
            if problem.dimension == 1:
                figures["paths"] = path_figure(mine, problem)
            elif problem.dimension == 2:
                figures["contours"] = contour_figure(mine, problem)
            figures["loss"] = loss_figure(mine, problem)
        if swept(mine):
            figures["sweep"] = sweep_figure(mine, problem)
        for kind, figure in figures.items():
            path = folder / f"{problem.name}-{kind}.png"
            style.save_figure(figure, path, size)
            written.append(path)
    if profile and performance_ratios(results):
        style.save_figure(profile_figure(results), folder / "profile.png", size)
        written.append(folder / "profile.png")
    return written
