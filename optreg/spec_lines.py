"""Where a key or a rule line sits in a spec's TOML text: the line numbers errors carry.

Pure text search, no TOML parsing (the text may not even parse), used by the reader for its
errors and by the rule compiler for errors found when a rule is specialised or traced.
"""

from __future__ import annotations

import json
import re
from typing import Any


def rule_line_needle(line: Any) -> str | None:
    """A rule line's text to find it in the file (None for a line that is not text).

    Example:
        >>> rule_line_needle("  var = var - grad "), rule_line_needle(3)
        ('var = var - grad', None)
    """
    return line.strip() if isinstance(line, str) and line.strip() else None


def find_line(text: str, key: str, needle: str | None, occurrence: int = 0) -> int | None:
    """The 1-based line where a key (or the ``occurrence``-th copy of a piece of text) appears.

    Example:
        >>> find_line('[update]\\nrule = [\\n  "var = var - grad",\\n]', "update.rule[0]", "var = var - grad")
        3
    """
    target = needle if needle is not None else key.split(".")[-1].split("[")[0]
    if not target:
        return None
    lines = text.splitlines()
    header = "[" + key.rsplit(".", 1)[0] + "]" if "." in key else None
    start = next((i for i, line in enumerate(lines) if header and line.strip() == header), 0)
    pattern = re.compile(r"^\s*\[?\s*" + re.escape(target) + r"\s*[\]=]") if needle is None else None
    spellings = {target, json.dumps(target)[1:-1]}  # as written, or escaped in a basic string
    matches = [
        number
        for number, line in enumerate(lines[start:], start=start + 1)
        if (pattern.search(line) if pattern else any(spelling in line for spelling in spellings))
    ]
    return matches[min(occurrence, len(matches) - 1)] if matches else None

