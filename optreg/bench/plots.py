"""Bench figures with matplotlib (headless): paths, contours, loss curves and sweeps.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure` built without pyplot,
so nothing needs a display and tests can inspect the artists before saving. Paths and curves
need the runs' history (``history_every``). Artists carry a ``gid`` saying what they are:
``path`` (a run's line), ``end`` (where a run stopped), ``exploded`` (an exploded run's last
finite point, or in a sweep a mark on the frame's top edge), ``zero`` (a sweep's run at or
below zero on its axis, a mark on the bottom edge), ``start`` and ``minimum`` (the problem's),
``baseline``, ``tolerance`` and ``floor`` (reference lines), and ``profile`` (a performance
profile's curve, :mod:`optreg.bench.profile_figure`). Colours, panels and keys come from
:mod:`optreg.bench.plot_style`, windows and log ranges from :mod:`optreg.bench.plot_limits`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from optreg.bench import plot_limits as limits
from optreg.bench import plot_style as style
from optreg.bench.ranking import settings_text
from optreg.bench.runner import RunResult
from optreg.problems import Problem

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: A figure's window: ``((x_low, x_high), (y_low, y_high))``.
Window = tuple[tuple[float, float], tuple[float, float]]


def with_history(results: Sequence[RunResult]) -> list[RunResult]:
    """The runs that recorded a history (paths and loss curves need one).

    Example:
        >>> with_history([])
        []
    """
    return [r for r in results if r.history and r.history["iterations"]]


def _log_loss(problem: Problem, points: np.ndarray) -> np.ma.MaskedArray:
    """log10 of the loss above the problem's minimum (or above the lowest loss on the grid),
    masked where it is not above it: no floor is made up."""
    import tensorflow as tf

    loss = problem.loss(tf.constant(points, tf.float32)).numpy().astype(np.float64)
    above = loss - (problem.minimum_loss if problem.minimum_loss is not None else np.nanmin(loss))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.ma.masked_invalid(np.log10(np.where(above > 0, above, np.nan)))


def _landscape_label(problem: Problem) -> str:
    """The colorbar label of a problem's log-loss landscape."""
    reference = "known minimum" if problem.minimum_loss is not None else "lowest loss shown"
    return f"log10(loss − {reference})"


def _title(what: str, problem: Problem, runs: Sequence[RunResult]) -> str:
    """``PROBLEM: WHAT``, with the settings every run shares."""
    shared = style.common_settings(runs)
    return f"{problem.name}: {what}" + (f" ({shared})" if shared else "")


def _layout(
    runs: Sequence[RunResult], panel_size: tuple[float, float], small_size: tuple[float, float] = (4.5, 3.6)
) -> tuple[Figure, list[tuple[Axes, list[RunResult]]], style.ColourKey]:
    """The figure, its panels paired with their runs, and the colour key of ``runs``."""
    key = style.colour_key(runs)
    groups = style.panels(runs)
    figure, axes = style.new_figure(len(groups), panel_size if len(groups) == 1 else small_size)
    for panel, (title, _) in zip(axes, groups):
        panel.set_title(title or "")
    return figure, list(zip(axes, [mine for _, mine in groups])), key


def _mark_stop(
    panel: Axes, run: RunResult, xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray, colour: Any,
    window: Window, over_map: bool,
) -> None:
    """Where a run stopped: a dot at its end, or for an exploded run an × at its last finite
    point, put on the frame when it lies beyond ``window`` (``((x_low, x_high), (y_low, y_high))``)."""
    last = limits.last_finite(np.column_stack([np.asarray(xs, np.float64), np.asarray(ys, np.float64)]))
    if last is None:
        return
    if run.status == "exploded":
        x, y = (np.clip(value, *side) for value, side in zip(last, window))
        panel.plot(x, y, "X", color=colour, markersize=10, markeredgecolor="black", clip_on=False, gid="exploded",
                   zorder=4)
    else:
        panel.plot(*last, "o", color=colour, markeredgecolor="black", gid="end", zorder=4,
                   path_effects=style.outline() if over_map else None)


def _stop_markers(runs: Sequence[RunResult], ends: bool = True) -> list[str]:
    """The marker kinds a figure's key explains."""
    return (["end"] if ends else []) + (["exploded"] if any(r.status == "exploded" for r in runs) else [])


def path_figure(results: Sequence[RunResult], problem: Problem) -> Figure:
    """The tutorial's figure for a 1-D problem: log loss as a colour map over (iteration,
    parameter value), with each run's parameter path, where it stopped and the known
    minimum; one panel per optimizer when several made several runs each.

    Example:
        >>> figure = path_figure(results, problem)  # doctest: +SKIP
        >>> len([line for line in figure.axes[0].lines if line.get_gid() == "path"])  # doctest: +SKIP
        3
    """
    runs = with_history(results)
    figure, panels, key = _layout(runs, (9, 6))
    low, high = limits.path_window(problem, runs)
    last = max([r.iterations for r in runs] + [1])
    grid_values = np.linspace(low, high, 300)
    shade = np.ma.repeat(_log_loss(problem, grid_values[:, None])[:, None], 2, axis=1)
    window = ((0, last * 1.02), (low, high))
    for panel, mine in panels:
        mesh = panel.pcolormesh([0, last], grid_values, shade, shading="nearest", cmap=style.LANDSCAPE_MAP)
        if problem.minimum is not None:
            panel.axhline(problem.minimum[0], color="white", linestyle="--", gid="minimum",
                          path_effects=style.outline())
        for run in mine:
            recorded = limits.history(run)
            iterations, path = np.asarray(recorded["iterations"]), np.asarray(recorded["params"])[:, 0]
            panel.plot(iterations, path, color=key.colour(run), linestyle=key.linestyle(run), gid="path",
                       path_effects=style.outline())
            _mark_stop(panel, run, iterations, path, key.colour(run), window, over_map=True)
        panel.set(xlim=window[0], ylim=window[1])
    style.label_panels([p for p, _ in panels], "iteration", "parameter value x")
    figure.colorbar(mesh, ax=[p for p, _ in panels], label=_landscape_label(problem))
    markers = style.marker_handles((["minimum_level"] if problem.minimum else []) + _stop_markers(runs))
    style.add_key(figure, [p for p, _ in panels], key.handles() + markers, key.colorbar)
    figure.suptitle(_title("parameter paths", problem, runs))
    return figure


def contour_figure(results: Sequence[RunResult], problem: Problem) -> Figure:
    """For a 2-D problem: log-loss contours over a window framing the start, the known
    minimum and the paths, with each run's trajectory and where it stopped; one panel per
    optimizer when several made several runs each.

    Example:
        >>> contour_figure(results, problem).savefig("contours.png")  # doctest: +SKIP
    """
    runs = with_history(results)
    figure, panels, key = _layout(runs, (8, 7), small_size=(4.2, 4.0))
    window = limits.landscape_window(problem, runs)
    xs, ys = np.meshgrid(*(np.linspace(low, high, 200) for low, high in window))
    levels = _log_loss(problem, np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(xs.shape)
    for panel, mine in panels:
        filled = panel.contourf(xs, ys, levels, levels=30, cmap=style.LANDSCAPE_MAP)
        for run in mine:
            path = np.asarray(limits.history(run)["params"], np.float64)
            panel.plot(path[:, 0], path[:, 1], color=key.colour(run), linestyle=key.linestyle(run), gid="path",
                       path_effects=style.outline())
            _mark_stop(panel, run, path[:, 0], path[:, 1], key.colour(run), window, over_map=True)
        panel.plot(*problem.start[:2], "s", color="white", markeredgecolor="black", gid="start", zorder=5)
        if problem.minimum is not None:
            panel.plot(*problem.minimum[:2], "*", color="white", markeredgecolor="black", markersize=15,
                       gid="minimum", zorder=5)
        panel.set(xlim=window[0], ylim=window[1], aspect="equal")
    style.label_panels([p for p, _ in panels], "x", "y")
    figure.colorbar(filled, ax=[p for p, _ in panels], label=_landscape_label(problem))
    markers = style.marker_handles(["start"] + (["minimum"] if problem.minimum else []) + _stop_markers(runs))
    style.add_key(figure, [p for p, _ in panels], key.handles() + markers, key.colorbar)
    figure.suptitle(_title("trajectories", problem, runs))
    return figure


def _loss_label(problem: Problem, runs: Sequence[RunResult], prefix: str = "") -> str:
    """What a loss axis measures: above the known minimum, or train loss where the problem
    also reports a test loss."""
    if problem.minimum_loss is not None:
        return f"{prefix}loss − known minimum"
    return f"{prefix}train loss" if any("test_loss" in r.metrics for r in runs) else f"{prefix}loss"


def _floor_note(label: str, floor: float | None) -> str:
    """The axis label, saying where values at or below zero are drawn."""
    return label if floor is None else f"{label}  (≤ 0 drawn at 1e{round(np.log10(floor))})"


def _reference_lines(panels: Sequence[Axes], levels: Sequence[tuple[float | None, str, str]]) -> list[tuple[Any, str]]:
    """Horizontal reference lines ``(value, kind, label)`` on every panel (see
    :data:`~optreg.bench.plot_style.REFERENCE_STYLES`), skipping unknown values.

    Returns:
        ``(line, label)`` key entries for the labelled ones.
    """
    entries: list[tuple[Any, str]] = []
    for value, kind, label in levels:
        if value is not None:
            lines = [style.reference_line(panel, value, kind) for panel in panels]
            entries += [(lines[0], label)] if label else []
    return entries


def _tolerance_level(problem: Problem) -> np.ndarray:
    """The problem's tolerance, when losses are drawn above its known minimum (else nothing),
    so values at or below the minimum are drawn beneath the tolerance line."""
    known = problem.minimum_loss is not None and problem.tolerance > 0
    return np.asarray([problem.tolerance] if known else [], np.float64)


def _loss_references(
    problem: Problem, runs: Sequence[RunResult], test: bool, floor: float | None
) -> list[tuple[float | None, str, str]]:
    """A loss axis's reference levels ``(value, kind, label)``: the constant prediction's
    loss where the problem reports it, the tolerance of a problem with
    a known minimum, and the floor values at or below zero are drawn at."""
    metric = "baseline_test_loss" if test else "baseline_train_loss"
    baseline = next((r.metrics[metric] for r in runs if metric in r.metrics), None)
    known = problem.minimum_loss is not None and problem.tolerance > 0 and not test
    return [(baseline, "baseline", f"constant prediction ({'test' if test else 'train'} loss)"),
            (problem.tolerance if known else None, "tolerance", "tolerance"),
            (floor, "floor", "")]


def loss_figure(results: Sequence[RunResult], problem: Problem) -> Figure:
    """Loss against iteration on a log scale, one curve per run: above the known minimum when
    there is one, with the problem's tolerance; otherwise the (train) loss, with the constant
    prediction's train loss where the problem reports it. Limits come from the runs that did
    not explode; each exploded run ends in an ×.

    Example:
        >>> loss_figure(results, problem).savefig("loss.png")  # doctest: +SKIP
    """
    runs = with_history(results)
    shown = {id(r): np.asarray(limits.history(r)["loss"], np.float64) - (problem.minimum_loss or 0.0) for r in runs}
    floor = limits.nonpositive_floor(list(shown.values()) + [_tolerance_level(problem)])
    references = _loss_references(problem, runs, test=False, floor=floor)
    framing = [limits.floored(shown[id(r)], floor) for r in limits.framing_runs(runs)]
    starts = [limits.floored(shown[id(r)][:1], floor) for r in runs]
    y_window = limits.log_limits(framing + starts + [np.asarray([v for v, *_ in references if v is not None])])
    last = max([r.iterations for r in runs] + [1])
    figure, panels, key = _layout(runs, (9, 6))
    for panel, mine in panels:
        for run in mine:
            values = limits.floored(shown[id(run)], floor)
            iterations = limits.history(run)["iterations"]
            panel.plot(iterations, values, color=key.colour(run), linestyle=key.linestyle(run), gid="path")
            if run.status == "exploded":
                _mark_stop(panel, run, iterations, values, key.colour(run), ((0, last), y_window), False)
        panel.set(yscale="log", ylim=y_window, xlim=(0, last * 1.02))
    style.label_panels([p for p, _ in panels], "iteration", _floor_note(_loss_label(problem, runs), floor))
    lines = _reference_lines([p for p, _ in panels], references)
    markers = style.marker_handles(_stop_markers(runs, ends=False))
    style.add_key(figure, [p for p, _ in panels], key.handles() + lines + markers, key.colorbar)
    figure.suptitle(_title("loss", problem, runs))
    return figure


def swept(results: Sequence[RunResult]) -> str | None:
    """The swept hyperparameter a sweep figure's x axis shows: ``learning_rate`` when its value
    differs between runs, else the first numeric setting that does; None when none does.

    Example:
        >>> swept([])
    """
    names: list[str] = []
    for run in results:
        names += [name for name in run.settings if name not in names]
    varying = [
        name for name in names if len({repr(r.settings.get(name)) for r in results}) > 1 and _numeric(results, name)
    ]
    return "learning_rate" if "learning_rate" in varying else (varying[0] if varying else None)


def _numeric(results: Sequence[RunResult], name: str) -> bool:
    """Whether every run that sets ``name`` sets it to a number (not a bool)."""
    values = [r.settings[name] for r in results if name in r.settings]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _sweep_lines(results: Sequence[RunResult], name: str) -> dict[tuple[str, str], list[RunResult]]:
    """The runs that set ``name``, one line per optimizer and setting of the other
    hyperparameters (``""`` when there are none), each sorted by the swept value."""
    lines: dict[tuple[str, str], list[RunResult]] = {}
    for run in results:
        if name in run.settings:
            rest = {k: v for k, v in run.settings.items() if k != name}
            others = settings_text(attrs.evolve(run, settings=rest)) if rest else ""
            lines.setdefault((run.optimizer, others), []).append(run)
    return {line: sorted(mine, key=lambda r: float(r.settings[name])) for line, mine in lines.items()}


def _line_styles(lines: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, style.LineStyle]]:
    """``(colour, linestyle)`` of each sweep line: one colour per optimizer, one line style
    per setting of the other hyperparameters."""
    optimizers = list(dict.fromkeys(optimizer for optimizer, _ in lines))
    others = list(dict.fromkeys(setting for _, setting in lines))
    colours = dict(zip(optimizers, [colour for colour, _ in style.qualitative(len(optimizers))]))
    return {(o, s): (colours[o], style.LINESTYLES[others.index(s) % len(style.LINESTYLES)]) for o, s in lines}


def sweep_figure(results: Sequence[RunResult], problem: Problem) -> Figure:
    """The chapter's learning-rate experiment: the final loss (above the known minimum) or
    the test loss against the swept hyperparameter (:func:`swept`), one colour per optimizer
    and one line per optimizer and setting of the other hyperparameters (told apart by line
    style). A run without a finite value (exploded) is an × on the top edge of the frame at its
    value (``gid`` ``exploded``); a run at or below zero on the axis (at the known minimum to
    float precision) is drawn at the named floor and marked by a ▼ on the bottom edge (``gid``
    ``zero``); both markers have a key entry.

    Example:
        >>> sweep_figure(results, problem).savefig("sweep.png")  # doctest: +SKIP
    """
    name = swept(results) or "learning_rate"
    test = any("test_loss" in r.metrics for r in results)
    lines = _sweep_lines(results, name)
    offset = 0.0 if test else (problem.minimum_loss or 0.0)
    value = {
        id(r): (r.metrics.get("test_loss", math.nan) if test else r.final_loss) - offset
        for mine in lines.values() for r in mine
    }
    shown = {k: v for k, v in value.items() if np.isfinite(v)}
    floor = limits.nonpositive_floor([np.asarray(list(shown.values()))] + ([] if test else [_tolerance_level(problem)]))
    references = _loss_references(problem, results, test=test, floor=floor)
    figure, (panel,) = style.new_figure(1, (9, 6))
    styles = _line_styles(lines)
    for (optimizer, others), mine in lines.items():
        colour, linestyle = styles[optimizer, others]
        kept = [r for r in mine if r.status != "exploded" and id(r) in shown]
        kept_values = limits.floored(np.asarray([value[id(r)] for r in kept]), floor)
        panel.plot([float(r.settings[name]) for r in kept], kept_values, marker="o", color=colour,
                   linestyle=linestyle, gid="path", label=f"{optimizer} {others}".strip())
        for run in mine:
            if run.status == "exploded" or id(run) not in shown:
                _edge_mark(panel, float(run.settings[name]), 1.0, "X", colour, "exploded")
            elif value[id(run)] <= 0:
                _edge_mark(panel, float(run.settings[name]), 0.0, "v", colour, "zero")
    values = [float(r.settings[name]) for mine in lines.values() for r in mine]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        panel.set_xscale("log")
    known = [np.asarray(list(shown.values())), np.asarray([v for v, *_ in references if v is not None])]
    measured = "test loss (final parameters)" if test else _loss_label(problem, results, prefix="final ")
    panel.set(yscale="log", ylim=limits.log_limits([limits.floored(v, floor) for v in known]), xlabel=name,
              ylabel=_floor_note(measured, floor), title=f"{problem.name}: sweep over {name}")
    curves = [(line, str(line.get_label())) for line in panel.lines if line.get_gid() == "path"]
    drawn = {line.get_gid() for line in panel.lines}
    markers = style.marker_handles([kind for kind in ("exploded_edge", "zero_edge") if kind[:-5] in drawn])
    style.add_key(figure, [panel], curves + _reference_lines([panel], references) + markers)
    return figure


def _edge_mark(panel: Axes, x: float, edge: float, symbol: str, colour: Any, gid: str) -> None:
    """A marker at ``x`` on the top (``edge`` 1) or bottom (0) edge of the panel's frame."""
    panel.plot(x, edge, symbol, color=colour, markeredgecolor="black", markersize=10,
               transform=panel.get_xaxis_transform(), clip_on=False, gid=gid, zorder=4)
