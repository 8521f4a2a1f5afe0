"""Bench figure files: the format a file's suffix names, the size asked in pixels, the atomic write.

A figure is written as PNG, SVG or PDF, chosen by its file's suffix. Without a size, it keeps
the size it was laid out at (PNG at :data:`DPI`, so a 9 × 6 inch figure is 1800 × 1200
pixels). With ``--plot-size WIDTHxHEIGHT`` the figure keeps its width in inches (so its text
keeps its proportions) and takes the asked aspect; a PNG is then exactly WIDTH × HEIGHT
pixels, an SVG's ``width`` and ``height`` are WIDTH and HEIGHT pixels (its drawing scaled to
them through its ``viewBox``), and a PDF's page has the asked aspect (a PDF has no pixels).
Every file goes through a hidden sibling renamed into place (see
:func:`optreg.bench.output_files.replace_file`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from optreg.bench.output_files import replace_file
from optreg.errors import OptionError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DPI", "FORMATS", "MAX_SIDE", "MIN_SIDE", "FigureSize", "check_figure_options", "check_figure_path",
           "parse_figure_size",
           "save_figure"]

#: Resolution of PNGs written at their laid-out size (a 9 × 6 inch figure is 1800 × 1200 pixels).
DPI = 200
#: The file suffixes a figure may be written with, and matplotlib's name of each format.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: The smallest and largest side of ``--plot-size``, in pixels.
MIN_SIDE, MAX_SIDE = 200, 8000


@attrs.frozen
class FigureSize:
    """A figure's size in pixels.

    Attributes:
        width: pixels across.
        height: pixels down.
    """

    width: int
    height: int


def parse_figure_size(text: str, option: str = "--plot-size") -> FigureSize:
    """Read ``WIDTHxHEIGHT`` in pixels, each side between :data:`MIN_SIDE` and :data:`MAX_SIDE`.

    Raises:
        OptionError: the text is not two whole numbers joined by ``x``, or a side is out of bounds.

    Example:
        >>> parse_figure_size("1200x800")
        FigureSize(width=1200, height=800)
    """
    match = re.fullmatch(r"\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*", text)
    if match is None:
        raise OptionError(f"{option} takes WIDTHxHEIGHT in pixels, e.g. 1200x800; got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    for side, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise OptionError(f"{option} {text!r}: the {side} must be {MIN_SIDE} to {MAX_SIDE} pixels, got {value}")
    return FigureSize(width, height)


def check_figure_path(path: Path, option: str = "--plot") -> str:
    """The format a figure file's suffix names.

    Raises:
        OptionError: the suffix is none of :data:`FORMATS`.

    Example:
        >>> check_figure_path(Path("paths.SVG"))
        'svg'
    """
    chosen = FORMATS.get(path.suffix.lower())
    if chosen is None:
        suffixes = ", ".join(FORMATS)
        raise OptionError(f"{option} writes a figure as {suffixes}, chosen by the file's suffix; "
                          f"{str(path)!r} ends in none of them")
    return chosen


def check_figure_options(
    plot: Path | None, profile: Path | None, size: FigureSize | None, out: Path | None
) -> None:
    """Check the figure options before anything runs: each file's suffix names a format, and a
    size has a figure to size.

    Args:
        plot: ``--plot``'s file, or None.
        profile: ``--plot-profile``'s file, or None.
        size: ``--plot-size``, or None.
        out: ``--out``'s folder (whose figures the size applies to), or None.

    Raises:
        OptionError: a suffix is not .png, .svg or .pdf, or ``--plot-size`` came without a figure.

    Example:
        >>> check_figure_options(Path("paths.svg"), None, FigureSize(1200, 800), None)
    """
    for option, path in (("--plot", plot), ("--plot-profile", profile)):
        if path is not None:
            check_figure_path(path, option)
    if size is not None and plot is None and profile is None and out is None:
        raise OptionError("--plot-size sizes the figures of --plot, --plot-profile and --out; none was asked for")


def save_figure(figure: Figure, path: str | Path, size: FigureSize | None = None) -> None:
    """Write a figure in the format its suffix names, at ``size`` when given, atomically.

    Args:
        figure: the figure (resized in place when ``size`` is given).
        path: the file; its suffix chooses PNG, SVG or PDF.
        size: the size in pixels, or None for the size it was laid out at.

    Raises:
        OptionError: the suffix names no format :data:`FORMATS` lists.

    Example:
        >>> save_figure(figure, "paths.svg", FigureSize(1200, 800))  # doctest: +SKIP
    """
    path = Path(path)
    chosen = check_figure_path(path, "a figure")
    dpi: float = DPI
    if size is not None:
        width_inches = figure.get_figwidth()
        dpi = size.width / width_inches
        figure.set_size_inches(width_inches, size.height / dpi)
    metadata = {"Date": None} if chosen == "svg" else ({"CreationDate": None} if chosen == "pdf" else None)

    def write(staging: Path) -> None:
        figure.savefig(staging, format=chosen, dpi=dpi, metadata=metadata)
        if chosen == "svg" and size is not None:
            _set_svg_pixels(staging, size)

    replace_file(path, write)


def _set_svg_pixels(path: Path, size: FigureSize) -> None:
    """Give an SVG's root element a ``width`` and ``height`` in pixels (its viewBox scales the drawing)."""
    text = path.read_text(encoding="utf-8")
    start = text.index("<svg")
    end = text.index(">", start)
    root = re.sub(r'\swidth="[^"]*"', f' width="{size.width}px"', text[start:end], count=1)
    root = re.sub(r'\sheight="[^"]*"', f' height="{size.height}px"', root, count=1)
    path.write_text(text[:start] + root + text[end:], encoding="utf-8")
