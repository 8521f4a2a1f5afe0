"""Describe registered optimizers for ``optreg list`` and ``optreg show`` (no TensorFlow)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from optreg.catalog.entries import OptimizerEntry
from optreg.model.definitions import OptimizerSpec
from optreg.spec.conditions import deciding_values, fixed_values, specialize_spec
from optreg.spec.touched_rows import rule_sparse_support
from optreg.text import GAP, aligned

if TYPE_CHECKING:
    from optreg.catalog.discovery import PluginReport
    from optreg.problems import Problem


def entry_record(entry: OptimizerEntry, detailed: bool = False) -> dict[str, Any]:
    """A JSON-ready description of an optimizer.

    Args:
        entry: the registry entry.
        detailed: add hyperparameter bounds and docs, slots, the rule and the source file.

    Returns:
        At least ``name``, ``source``, ``summary`` and ``hyperparameters`` (name → default).
    """
    record: dict[str, Any] = {
        "name": entry.name,
        "qualified_name": entry.qualified_name,
        "source": entry.source,
        "summary": entry.summary,
        "references": list(entry.references),
        "hyperparameters": entry.defaults(),
    }
    if detailed:
        spec = entry.spec
        record.update(
            hyperparameter_details=[attrs.asdict(h) for h in entry.hyperparameters],
            slots=[attrs.asdict(s) for s in spec.slots] if spec else None,
            rule=[a.text for a in spec.rule.assignments] if spec else None,
            measuring_steps=spec.measuring_steps if spec else None,
            sparse_gradients=sparse_gradients(spec) if spec else None,
            notes=list(spec.notes) if spec else [],
            file=spec.source if spec else None,
            factory=entry.factory,
        )
    return record


def list_json(entries: Iterable[OptimizerEntry]) -> str:
    """``optreg list --format json``."""
    return json.dumps([entry_record(e) for e in entries], indent=2) + "\n"


def list_table(entries: Iterable[OptimizerEntry], width: int | None = None) -> str:
    """``optreg list``: name, source, summary and first reference (its authors and year), aligned.

    Args:
        entries: the optimizers.
        width: the terminal's width; summaries are shortened (ending in "…") so that every line
            fits, and the references left out when they would leave summaries too little room.
            None: no limit.

    Example:
        >>> from optreg import registry
        >>> all(len(line) <= 80 for line in list_table(registry, width=80).splitlines())
        True
    """
    rows: list[tuple[str, ...]] = [(e.name, e.source, e.summary, short_reference(e.references)) for e in entries]
    header: tuple[str, ...] = ("name", "source", "summary", "reference")
    if width is None or not rows:
        return aligned([header, *rows])
    if _room_for_summaries([header, *rows], width) < _NARROWEST_SUMMARY:  # drop the references
        header, rows = header[:3], [row[:3] for row in rows]
    room = max(_SHORTEST_SUMMARY, _room_for_summaries([header, *rows], width))
    return aligned([header, *[(*row[:2], _shortened(row[2], room), *row[3:]) for row in rows]])


#: Below this many characters for summaries, ``optreg list`` leaves the references out.
_NARROWEST_SUMMARY = 30
#: Summaries are never cut shorter than this.
_SHORTEST_SUMMARY = 10


def _room_for_summaries(rows: list[tuple[str, ...]], width: int) -> int:
    """The characters left for the summary column (the third) when every other column is whole."""
    others = sum(max(len(row[i]) for row in rows) for i in range(len(rows[0])) if i != 2)
    return width - others - (len(rows[0]) - 1) * len(GAP)




def _shortened(text: str, room: int) -> str:
    """``text`` cut to at most ``room`` characters, ending in "…" when cut.

    Example:
        >>> _shortened("momentum on the sign of the gradient", 12)
        'momentum on…'
    """
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


def short_reference(references: Sequence[str]) -> str:
    """The first reference's authors and year: its text up to the first year, else up to the
    first comma; three authors or more are shortened to the first "et al.".

    Example:
        >>> short_reference(["Duchi, Hazan & Singer 2011, Adaptive Subgradient Methods"])
        'Duchi, Hazan & Singer 2011'
        >>> short_reference(["Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, signSGD"])
        'Bernstein et al. 2018'
        >>> short_reference([])
        '-'
    """
    if not references:
        return "-"
    dated = re.match(r"^(.*?)\s*\b((?:1[5-9]|20)\d\d)\b", references[0])
    if not dated:
        return references[0].split(",")[0].strip()
    authors, year = dated.group(1).strip(), dated.group(2)
    names = [name for name in re.split(r",\s*|\s+&\s+|\s+and\s+", authors) if name]
    if len(names) > 3:
        authors = f"{names[0]} et al."
    return f"{authors} {year}".strip()


def show_text(entry: OptimizerEntry) -> str:
    """``optreg show NAME``: everything about one optimizer, for reading."""
    spec = entry.spec
    where = f"file: {spec.source}" if spec else f"defined in Python: {entry.factory}"
    lines = [f"{entry.name} ({entry.source})", f"  {entry.summary}", f"  {where}"]
    lines += [f"  reference: {ref}" for ref in entry.references]
    lines += [f"  note: {note}" for note in (spec.notes if spec else ())]
    lines.append("hyperparameters:")
    for h in entry.hyperparameters:
        bounds = _bounds(h.min, h.max)
        fixed = ", fixed" if getattr(h, "fixed", False) else ""
        fixed += ", may be None" if getattr(h, "none", False) else ""
        fixed += ", may be inf" if getattr(h, "infinite", False) else ""
        lines.append(f"  {h.name} = {h.default!r} ({h.type}{bounds}{fixed})" + (f"  {h.doc}" if h.doc else ""))
    if spec is None:
        return "\n".join(lines) + "\n"
    lines.append("slots:" if spec.slots else "slots: none")
    for s in spec.slots:
        dtype = f", {s.dtype}" if s.dtype else ""
        shape = f", shape {s.shape}" if s.shape != "var" else ""
        when = f", when {s.when}" if s.when else ""
        lines.append(f"  {s.name} (init {s.init}{dtype}{shape}{when})" + (f"  {s.doc}" if s.doc else ""))
    if spec.options:
        lines.append("options: " + ", ".join(f"{name} = {value!r}" for name, value in spec.options))
    if spec.measuring_steps:
        lines.append(f"measuring steps: {spec.measuring_steps} (first updates that leave the variable where it is)")
    lines.append(f"sparse gradients: {sparse_gradients(spec)}")
    lines.append("update rule:")
    lines += [f"  {a.text}" for a in spec.rule.assignments]
    return "\n".join(lines) + "\n"


def sparse_gradients(spec: OptimizerSpec) -> str:
    """What a spec's rule, created with its defaults, does with a sparse gradient (see
    :mod:`optreg.lang.sparsity` and :mod:`optreg.spec.touched_rows`): exact, on touched rows,
    lazy only, or dense, and why.

    Example:
        >>> from optreg import registry
        >>> sparse_gradients(registry.get("adagrad").spec)
        'exact (only the touched rows change; the same result as the dense update)'
    """
    rule, slots = specialize_spec(spec, {**fixed_values(spec, {}), **deciding_values(spec, {})})
    return rule_sparse_support(rule, {slot.name: slot.shape for slot in slots}).describe()


def _bounds(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    return f", in [{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"


def plugins_text(reports: Iterable[PluginReport]) -> str:
    """``optreg plugins``: one block per plugin."""
    lines = []
    for report in reports:
        origin = f"{report.distribution} {report.version}" if report.distribution else "unknown distribution"
        lines.append(f"{report.name} ({origin})")
        lines.append(f"  hooks: {', '.join(report.hooks) or 'none'}")
        lines.append(f"  registered: {', '.join(report.registered) or 'nothing'}")
        lines += [f"  error: {error}" for error in report.errors]
    return "\n".join(lines) + "\n"


def problems_json(problems: Iterable[Problem]) -> str:
    """``optreg problems --format json``."""
    records = [
        {"name": p.name, "source": p.source, "summary": p.summary, "start": list(p.start),
         "minimum": list(p.minimum) if p.minimum else None, "minimum_loss": p.minimum_loss,
         "tolerance": p.tolerance, "options": dict(p.options)}
        for p in problems
    ]
    return json.dumps(records, indent=2) + "\n"


def problems_table(problems: Iterable[Problem]) -> str:
    """``optreg problems``: name, source, dimension and summary, aligned."""
    rows = [(p.name, p.source, str(p.dimension), p.summary) for p in problems]
    return aligned([("name", "source", "dim", "summary"), *rows])
