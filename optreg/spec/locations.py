"""Where a key or a rule line sits in a spec's TOML text: the line numbers errors carry.

Pure text search, no TOML parsing (the text may not even parse), used by the reader for its
errors and by the rule compiler for errors found when a rule is specialised or traced.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import attrs

from optreg.errors import ExpressionError, RuleError, SpecError

if TYPE_CHECKING:
    from optreg.model.definitions import OptimizerSpec


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


@attrs.frozen
class RuleLocation:
    """Where one line of a spec's rule is, to name it in errors raised when it is traced.

    Attributes:
        source: the spec file (or ``"<string>"``).
        rule_line: the line's 1-based position in the rule.
        file_line: its 1-based line in the file, where it can be found.
        text: the line as written.

    Example:
        >>> where = RuleLocation("x.toml", 2, 12, "var = var - matmul(grad, grad)")
        >>> str(where.error("grad has rank 1"))
        'x.toml:12: [update] rule line 2 "var = var - matmul(grad, grad)": grad has rank 1'
    """

    source: str
    rule_line: int
    file_line: int | None
    text: str

    def error(self, problem: str) -> RuleError:
        """The :class:`~optreg.errors.RuleError` for a problem of this line."""
        return RuleError(self.source, self.file_line, self.rule_line, self.text, problem)


def rule_locations(spec: OptimizerSpec) -> tuple[RuleLocation, ...]:
    """Where each line of a spec's rule is, in rule order.

    Example:
        >>> [(w.rule_line, w.file_line) for w in rule_locations(load_spec("specs/momentum.toml"))]  # doctest: +SKIP
        [(1, 15), (2, 16)]
    """
    texts = [assignment.text for assignment in spec.rule.assignments]
    return tuple(
        RuleLocation(
            spec.source, index + 1, find_line(spec.text, f"update.rule[{index}]", text, texts[:index].count(text)), text
        )
        for index, text in enumerate(texts)
    )


def rule_line_error(spec: OptimizerSpec, error: ExpressionError, message: str) -> SpecError:
    """A SpecError naming the spec's file and the line of the rule an ExpressionError is about.

    Example:
        >>> rule_line_error(spec, error, "reads slot 'm', which does not exist")  # doctest: +SKIP
    """
    lines = [assignment.text for assignment in spec.rule.assignments]
    index = error.line_index
    if index is None:
        return SpecError(spec.source, "update.rule", message, line=find_line(spec.text, "update.rule", None))
    key = f"update.rule[{index}]"
    line = find_line(spec.text, key, rule_line_needle(lines[index]), lines[:index].count(lines[index]))
    return SpecError(spec.source, key, message, line=line)
