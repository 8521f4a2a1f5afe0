"""How bench figures tell runs apart and lay out: colours, panels, markers, the key, the file.

Runs are coloured from palettes kept apart from the landscape's colour map (viridis): the
qualitative tab10 / tab20 for optimizers or settings, the sequential ``cool`` for a swept
value, keyed by a colorbar once there are many values. Several optimizers with several runs
each get one panel per optimizer (small multiples) sharing one key. Keys and colorbars sit
outside every panel, so they never cover data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from optreg.bench import figure_files
from optreg.bench.ranking import settings_text
from optreg.bench.runner import RunResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patheffects import AbstractPathEffect

#: A line style of a run (the ones :data:`LINESTYLES` lists).
LineStyle = Literal["-", "--", ":", "-."]

#: The colour map of a problem's landscape (log loss), as in the TensorFlow tutorial's figure.
LANDSCAPE_MAP = "viridis"
#: The colour map of a swept hyperparameter's value.
SWEPT_MAP = "cool"
#: Up to this many swept values are keyed by legend entries; more get a colorbar.
FEW_VALUES = 6
#: Resolution of PNGs written at their laid-out size (a 9 × 6 inch figure is 1800 × 1200 pixels).
DPI = figure_files.DPI
#: Line styles that extend a qualitative palette past its colours.
LINESTYLES: tuple[LineStyle, ...] = ("-", "--", ":", "-.")
#: How reference lines look: a baseline, a tolerance, the floor values at or below zero sit on.
REFERENCE_STYLES: dict[str, dict[str, Any]] = {
    "baseline": {"color": "black", "linestyle": "--", "linewidth": 1.2},
    "tolerance": {"color": "dimgrey", "linestyle": ":", "linewidth": 1.2},
    "floor": {"color": "grey", "linestyle": (0, (1, 4)), "linewidth": 0.8},
}


def new_figure(panel_count: int = 1, panel_size: tuple[float, float] = (9.0, 6.0)) -> tuple[Figure, list[Axes]]:
    """A figure of ``panel_count`` panels (at most three a row) sharing their axes, on the Agg
    canvas (no display needed).

    Returns:
        ``(figure, axes)``, the panels in reading order.

    Example:
        >>> figure, axes = new_figure(5, panel_size=(4, 3))
        >>> len(axes), figure.get_size_inches().tolist()
        (5, [12.0, 6.0])
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(panel_count, 3)
    rows = math.ceil(panel_count / columns)
    figure = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
    for spare in grid[panel_count:]:
        figure.delaxes(spare)
    for above_a_gap in grid[max(panel_count - columns, 0) : (rows - 1) * columns]:
        above_a_gap.xaxis.set_tick_params(labelbottom=True)
    return figure, list(grid[:panel_count])


def _grid_place(panel: Axes) -> tuple[int, int]:
    """A panel's ``(row, column)`` in its figure's grid of panels."""
    spec = panel.get_subplotspec()
    if spec is None:
        raise ValueError("the panel is not on a grid of panels (made by new_figure)")
    return spec.rowspan.start, spec.colspan.start


def label_panels(axes: Sequence[Axes], xlabel: str, ylabel: str) -> None:
    """Axis labels on the panels at the outside of a grid: ``xlabel`` on the lowest panel of
    each column, ``ylabel`` on the first column.

    Example:
        >>> figure, axes = new_figure(4, panel_size=(4, 3))
        >>> label_panels(axes, "iteration", "loss")
        >>> [(a.get_xlabel(), a.get_ylabel()) for a in axes]
        [('', 'loss'), ('iteration', ''), ('iteration', ''), ('iteration', 'loss')]
    """
    places = [_grid_place(a) for a in axes]
    for panel, (row, column) in zip(axes, places):
        lowest = all(other_row <= row for other_row, other_column in places if other_column == column)
        panel.set_xlabel(xlabel if lowest else "")
        panel.set_ylabel(ylabel if column == 0 else "")


def panels(runs: Sequence[RunResult]) -> list[tuple[str | None, list[RunResult]]]:
    """The runs split into panels: one per optimizer when several optimizers each made
    several runs (small multiples), otherwise a single panel.

    Returns:
        ``(title, runs)`` pairs; the title is the optimizer's name, or None for a single panel.

    Example:
        >>> panels([])
        [(None, [])]
    """
    optimizers = list(dict.fromkeys(r.optimizer for r in runs))
    if len(optimizers) > 1 and len(runs) > len(optimizers):
        return [(name, [r for r in runs if r.optimizer == name]) for name in optimizers]
    return [(None, list(runs))]


def qualitative(count: int) -> list[tuple[tuple[float, ...], LineStyle]]:
    """``count`` distinct ``(colour, linestyle)`` pairs: tab10's colours, then tab20's (its
    dark shades first, then its light ones), then tab20 again with other line styles.

    Example:
        >>> [style for _, style in qualitative(21)][-2:]
        ['-', '--']
    """
    from matplotlib import colormaps

    if count <= 10:
        colours = [colormaps["tab10"](i) for i in range(10)]
    else:
        colours = [colormaps["tab20"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)]]
    return [(colours[i % len(colours)], LINESTYLES[(i // len(colours)) % len(LINESTYLES)]) for i in range(count)]


@attrs.frozen
class ColourKey:
    """How a figure tells its runs apart, and the key that says so.

    Attributes:
        styles: ``id(run)`` → ``(colour, linestyle)`` of each run (by identity: results
            hold dicts, so they do not hash).
        entries: ``(label, colour, linestyle)`` legend entries, or none when a colorbar keys
            the runs.
        colorbar: ``(mappable, label)`` for a swept value keyed by a colorbar, or None.
    """

    styles: dict[int, tuple[Any, LineStyle]]
    entries: tuple[tuple[str, Any, LineStyle], ...] = ()
    colorbar: tuple[Any, str] | None = None

    def colour(self, run: RunResult) -> Any:
        """The run's colour."""
        return self.styles[id(run)][0]

    def linestyle(self, run: RunResult) -> LineStyle:
        """The run's line style."""
        return self.styles[id(run)][1]

    def handles(self) -> list[tuple[Any, str]]:
        """``(handle, label)`` legend pairs for the entries."""
        from matplotlib.lines import Line2D

        return [
            (Line2D([], [], color=colour, linestyle=style, linewidth=2), label) for label, colour, style in self.entries
        ]


def colour_key(runs: Sequence[RunResult]) -> ColourKey:
    """Colours for runs: by optimizer when each ran once; by the swept value (``cool``,
    a colorbar past :data:`FEW_VALUES` values) when runs differ in one numeric setting;
    otherwise by their settings. A label that stands for a single run ends with its status.

    Example:
        >>> colour_key([]).entries
        ()
    """
    optimizers = {r.optimizer for r in runs}
    name = swept_numeric(runs)
    if len(optimizers) > 1 and len(runs) == len(optimizers):
        labels = [_optimizer_label(r, runs) for r in runs]
    elif name is not None:
        return _swept_key(runs, name)
    else:
        labels = [settings_text(r) for r in runs]
    order = list(dict.fromkeys(labels))
    palette = dict(zip(order, qualitative(len(order))))
    return ColourKey(
        styles={id(r): palette[label] for r, label in zip(runs, labels)},
        entries=tuple((_with_status(label, labels, runs), *palette[label]) for label in order),
    )


def swept_numeric(runs: Sequence[RunResult]) -> str | None:
    """The one setting the runs differ in, when it is numeric; None when they differ in
    none, in several, or in one that is not a number.

    Example:
        >>> swept_numeric([]) is None
        True
    """
    varying = {name for r in runs for name in r.settings if len({repr(o.settings.get(name)) for o in runs}) > 1}
    if len(varying) != 1:
        return None
    (name,) = varying
    values = [r.settings.get(name) for r in runs]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return name if numeric else None


def _swept_key(runs: Sequence[RunResult], name: str) -> ColourKey:
    """Runs coloured by their value of ``name`` on :data:`SWEPT_MAP`."""
    from matplotlib import cm, colormaps, colors

    values = sorted({float(r.settings[name]) for r in runs})
    logarithmic = values[0] > 0 and values[-1] / values[0] > 20
    norm = (colors.LogNorm if logarithmic else colors.Normalize)(values[0], values[-1])
    mappable = cm.ScalarMappable(norm, colormaps[SWEPT_MAP])
    # matplotlib's stubs type to_rgba's value as an array; it takes a scalar too (and returns one colour)
    styles: dict[int, tuple[Any, LineStyle]] = {
        id(r): (mappable.to_rgba(float(r.settings[name])), "-")  # type: ignore[arg-type]
        for r in runs
    }
    if len(values) > FEW_VALUES:
        return ColourKey(styles, colorbar=(mappable, name))
    labels = [f"{name}={float(r.settings[name]):g}" for r in runs]
    entries: tuple[tuple[str, Any, LineStyle], ...] = tuple(
        (_with_status(f"{name}={v:g}", labels, runs), mappable.to_rgba(v), "-")  # type: ignore[arg-type]  # as above
        for v in values
    )
    return ColourKey(styles, entries)


def _optimizer_label(run: RunResult, runs: Sequence[RunResult]) -> str:
    """An optimizer's label, with its settings when the runs' settings differ."""
    same = len({settings_text(r) for r in runs}) == 1
    return run.optimizer if same else f"{run.optimizer} {settings_text(run)}"


def _with_status(label: str, labels: Sequence[str], runs: Sequence[RunResult]) -> str:
    """The label, ending with ``: STATUS at ITERATION`` when it stands for a single run."""
    mine = [r for r, other in zip(runs, labels) if other == label]
    return f"{label}: {mine[0].status} at {mine[0].iterations}" if len(mine) == 1 else label


def common_settings(runs: Sequence[RunResult]) -> str:
    """The settings every run shares, as ``name=value`` words (empty when none).

    Example:
        >>> common_settings([])
        ''
    """
    if not runs:
        return ""
    shared = {k: v for k, v in runs[0].settings.items() if all(repr(r.settings.get(k)) == repr(v) for r in runs)}
    return settings_text(attrs.evolve(runs[0], settings=shared)) if shared else ""


def outline() -> list[AbstractPathEffect]:
    """A thin dark outline for lines and markers drawn over a colour map, so every colour
    stands out from the landscape beneath."""
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.8, foreground="black"), patheffects.Normal()]


def marker_handles(kinds: Sequence[str]) -> list[tuple[Any, str]]:
    """Legend handles for the markers a figure draws: ``start``, ``minimum`` (a star),
    ``minimum_level`` (a 1-D problem's minimising value, a dashed line), ``end``, ``exploded``,
    and a sweep's ``exploded_edge`` and ``zero_edge`` (marks on the frame's top and bottom edges).

    Returns:
        ``(handle, label)`` pairs in the order asked.

    Example:
        >>> [label for _, label in marker_handles(["end"])]
        ['end of run']
    """
    from matplotlib.lines import Line2D

    def marker(symbol: str, size: float = 7) -> Line2D:
        return Line2D([], [], marker=symbol, markersize=size, color="white", markeredgecolor="black", linestyle="")

    made = {
        "start": (marker("s"), "start"),
        "minimum": (marker("*", 13), "known minimum"),
        "minimum_level": (Line2D([], [], color="white", linestyle="--", path_effects=outline()), "known minimum"),
        "end": (marker("o"), "end of run"),
        "exploded": (marker("X", 9), "exploded: last finite point"),
        "exploded_edge": (marker("X", 9), "exploded or not finite (top edge)"),
        "zero_edge": (marker("v", 9), "at or below zero on this axis (bottom edge)"),
    }
    return [made[kind] for kind in kinds]


def add_key(
    figure: Figure, axes: Sequence[Axes], entries: Sequence[tuple[Any, str]], colorbar: tuple[Any, str] | None = None
) -> None:
    """The figure's key, outside every panel: the ``(handle, label)`` entries as a legend
    below the panels, and a colorbar ``(mappable, label)`` beneath them; the figure grows
    by the legend's rows so the panels keep their size.

    Example:
        >>> key = colour_key(runs)  # doctest: +SKIP
        >>> add_key(figure, axes, key.handles() + marker_handles(["end"]), key.colorbar)  # doctest: +SKIP
    """
    labels = [label for _, label in entries]
    if colorbar is not None:
        mappable, name = colorbar
        figure.colorbar(mappable, ax=list(axes), location="bottom", label=name, shrink=0.6, aspect=40)
    if entries:
        columns = key_columns(labels, figure.get_figwidth())
        figure.set_figheight(figure.get_figheight() + 0.3 * math.ceil(len(labels) / columns))
        figure.legend([h for h, _ in entries], labels, loc="outside lower center", ncols=columns, frameon=False)


def reference_line(panel: Axes, value: float, kind: str) -> Line2D:
    """A horizontal reference line of a :data:`REFERENCE_STYLES` kind, its ``gid`` the kind.

    Returns:
        The line.
    """
    return panel.axhline(value, gid=kind, **REFERENCE_STYLES[kind])


def key_columns(labels: Sequence[str], width: float = 9.0) -> int:
    """How many columns a key of these labels takes below a figure ``width`` inches wide.

    Example:
        >>> key_columns(["adam", "sgd"]), key_columns(["x" * 60] * 4)
        (2, 1)
    """
    widest = max([len(label) for label in labels] + [1]) + 8
    return max(1, min(len(labels), int(12 * width) // widest))


def save_figure(figure: Figure, path: str | Path, size: figure_files.FigureSize | None = None) -> None:
    """Write a figure as PNG, SVG or PDF (by ``path``'s suffix), at ``size`` pixels when given,
    through a hidden sibling file renamed over ``path``: a kill mid-write leaves the earlier
    file or the new one, never half of one (see :func:`optreg.bench.figure_files.save_figure`).

    Example:
        >>> save_figure(figure, "paths.png")  # doctest: +SKIP
    """
    figure_files.save_figure(figure, Path(path), size)
