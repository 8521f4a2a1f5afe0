"""The one schema of a bench's run records, written as strict JSON and as CSV of fixed columns.

Every record holds the same fields, in the order of :data:`FIELDS`, whichever optimizers and
problems ran; ``schema_version`` (:data:`SCHEMA_VERSION`) says which schema that is. A number
that is not finite (an exploded run's loss or parameters) is written as ``null`` and its place
is named in the record's ``nonfinite`` field; the run's ``status`` says why (``exploded``).
No file holds a bare ``NaN`` or ``Infinity``, which strict JSON parsers refuse.

A new per-run field is one row of :data:`FIELDS` (and one row of the table in
docs/benchmarking.md, which a test keeps equal to it).

In CSV, every field but ``history`` is a column, in the same order: text and numbers as they
are, ``null`` as an empty cell, objects and lists as compact JSON text.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from optreg.bench.runner import RunResult

__all__ = ["FIELDS", "SCHEMA_VERSION", "Field", "csv_columns", "csv_text", "json_text", "records_json", "run_record",
           "strict"]

#: The version of the record schema; raised whenever a field changes meaning or goes away.
SCHEMA_VERSION = 2


@attrs.frozen
class Field:
    """One field of a run record.

    Attributes:
        name: the key in JSON and the column in CSV.
        kind: its JSON type, as the documentation states it.
        meaning: what it holds, in one line.
        value: reads it from a run (``with_history`` says whether the history is wanted).
        in_csv: whether CSV has a column for it.
    """

    name: str
    kind: str
    meaning: str
    value: Callable[[RunResult, bool], Any]
    in_csv: bool = True


def _history(run: RunResult, with_history: bool) -> Any:
    return dict(run.history) if run.history is not None and with_history else None


def _loop(name: str) -> Callable[[RunResult, bool], Any]:
    """Reads one figure of the run's loop call (None for a record made without one)."""
    return lambda r, h: getattr(r.loop, name) if r.loop is not None else None


#: Every field of a run record, in the order written. ``nonfinite`` is filled in last, from the
#: others (its ``value`` is a placeholder).
FIELDS: tuple[Field, ...] = (
    Field("schema_version", "integer", "the version of this schema", lambda r, h: SCHEMA_VERSION),
    Field("optimizer", "string", "the optimizer's name", lambda r, h: r.optimizer),
    Field("problem", "string", "the problem's name", lambda r, h: r.problem),
    Field("settings", "object", "the hyperparameters and options set explicitly, name → value",
          lambda r, h: dict(r.settings)),
    Field("hyperparameters", "object", "every hyperparameter's value in the run, defaults included",
          lambda r, h: dict(r.hyperparameters)),
    Field("problem_options", "object", "the options the problem was made with (empty when none)",
          lambda r, h: dict(r.problem_options)),
    Field("status", "string", "converged, exceeded, exploded, reached, stalled or stuck", lambda r, h: r.status),
    Field("iterations", "integer", "the iteration the run ended at", lambda r, h: r.iterations),
    Field("reached_at", "integer or null", "the first iteration within the problem's tolerance",
          lambda r, h: r.reached_at),
    Field("stalled_at", "integer or null", "for a stalled run, the iteration its parameters stood still from",
          lambda r, h: r.stalled_at),
    Field("settled_at", "integer or null", "the iteration from which the loss stayed within the tolerance to the end",
          lambda r, h: r.settled_at),
    Field("target", "string or null", "the target judging settled_at for a problem without a known minimum",
          lambda r, h: r.target),
    Field("seed", "integer or null", "the run's seed; null without seeds", lambda r, h: r.seed),
    Field("final_loss", "number or null", "the loss at the final parameters", lambda r, h: r.final_loss),
    Field("final_params", "list of numbers or nulls", "the final parameters", lambda r, h: list(r.final_params)),
    Field("loop_id", "integer or null", "the loop call the run was made in; runs with one loop_id were stepped "
          "together", _loop("loop_id")),
    Field("loop_runs", "integer or null", "how many runs that loop call made", _loop("runs")),
    Field("loop_iterations", "integer or null", "how many iterations that loop call ran", _loop("iterations")),
    Field("compile_seconds", "number or null", "tracing and compiling the loop before that call, once per call; 0 if "
          "compiled before", _loop("compile_seconds")),
    Field("loop_seconds", "number or null", "wall time of that call's iterations, once per call (not per run)",
          _loop("run_seconds")),
    Field("seconds_share", "number", "loop_seconds / loop_runs: summed over runs, each call counts once",
          lambda r, h: r.seconds_share),
    Field("seconds_to_target", "number or null", "estimated wall time to settled_at: settled_at × loop_seconds / "
          "loop_iterations", lambda r, h: r.seconds_to_target),
    Field("judged_by", "string or null", "the metric the run is judged by instead of its training loss",
          lambda r, h: r.judged_by),
    Field("judged_loss", "number or null", "the judged_by metric's value; null when judged by final_loss",
          lambda r, h: r.judged_loss if r.judged_by is not None else None),
    Field("baseline", "number or null", "the judged loss of the problem's baseline, which a run must beat",
          lambda r, h: r.baseline),
    Field("metrics", "object", "the problem's extra figures, name → number or null (e.g. test_loss)",
          lambda r, h: dict(r.metrics)),
    Field("history", "object or null", "iterations, loss and params lists, with --history-every; else null",
          _history, in_csv=False),
    Field("nonfinite", "list of strings", "where a value was not finite and is written as null "
          "(e.g. final_loss, final_params[1], history.loss)", lambda r, h: []),
)


def strict(value: Any, where: str, found: list[str]) -> Any:
    """``value`` with every non-finite float replaced by None, each place noted in ``found``.

    Args:
        value: a number, string, None, or a list, tuple or mapping of them.
        where: the name of ``value``'s place (``final_params``, ``metrics.test_loss``).
        found: receives the places of the non-finite numbers; a list's are noted once, by the
            list's place, when it holds many.

    Returns:
        The value as JSON can hold it strictly.

    Example:
        >>> found = []
        >>> strict({"loss": [1.0, float("nan")]}, "history", found), found
        ({'loss': [1.0, None]}, ['history.loss[1]'])
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        if math.isfinite(value):
            return value
        found.append(where)
        return None
    if isinstance(value, Mapping):
        return {key: strict(item, f"{where}.{key}", found) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        mine: list[str] = []
        items = [strict(item, f"{where}[{index}]", mine) for index, item in enumerate(value)]
        found.extend(mine if len(mine) <= 3 else [where])
        return items
    return value


def run_record(run: RunResult, with_history: bool = True) -> dict[str, Any]:
    """A run as a record of every field of :data:`FIELDS`, non-finite numbers as None.

    Args:
        run: the run.
        with_history: whether ``history`` holds the recorded history (None otherwise).

    Returns:
        The record, its keys in :data:`FIELDS`' order.

    Example:
        >>> run = RunResult("sgd", "quartic", {}, {}, "exploded", 3, float("inf"), (float("nan"),), 0.1)
        >>> record = run_record(run)
        >>> record["final_loss"], record["final_params"], record["nonfinite"]
        (None, [None], ['final_loss', 'final_params[0]'])
    """
    found: list[str] = []
    record = {field.name: strict(field.value(run, with_history), field.name, found) for field in FIELDS}
    record["nonfinite"] = found
    return record


def json_text(value: Any) -> str:
    """Strict JSON text of already-checked values, indented, ending in a newline.

    Raises:
        ValueError: ``value`` holds a non-finite float (never written as ``NaN``).

    Example:
        >>> json_text({"a": 1.5})
        '{\\n  "a": 1.5\\n}\\n'
    """
    return json.dumps(value, indent=2, allow_nan=False) + "\n"


def records_json(results: Sequence[RunResult], with_history: bool = True) -> str:
    """The runs as a strict JSON list of records (see :data:`FIELDS`).

    Example:
        >>> records_json([])
        '[]\\n'
    """
    return json_text([run_record(run, with_history) for run in results])


def csv_columns() -> list[str]:
    """The CSV header: every field that has a column, in :data:`FIELDS`' order.

    Example:
        >>> csv_columns()[:3]
        ['schema_version', 'optimizer', 'problem']
    """
    return [field.name for field in FIELDS if field.in_csv]


def _cell(value: Any) -> Any:
    """A CSV cell: None empty, objects and lists as compact JSON, the rest as it is."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    return value


def csv_text(results: Sequence[RunResult]) -> str:
    """The runs as CSV with the fixed columns of :func:`csv_columns`.

    Example:
        >>> csv_text([]).strip() == ",".join(csv_columns())
        True
    """
    columns = csv_columns()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for run in results:
        record = run_record(run, with_history=False)
        writer.writerow([_cell(record[name]) for name in columns])
    return out.getvalue()
