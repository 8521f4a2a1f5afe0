"""Plain-text tables: rows of cells as aligned columns, for every command that prints one."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["GAP", "aligned"]

#: The space between two columns.
GAP = "  "


def aligned(rows: Sequence[tuple[str, ...]]) -> str:
    """Rows of cells as text columns two spaces apart, one line each.

    Args:
        rows: the rows, the first usually a header; every row has the same number of cells.

    Returns:
        One line per row, each ending in a newline, trailing spaces removed.

    Example:
        >>> print(aligned([("name", "source"), ("adam", "builtin")]), end="")
        name  source
        adam  builtin
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(GAP.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n" for row in rows)
