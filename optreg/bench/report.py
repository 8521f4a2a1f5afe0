"""Render bench results as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

from optreg.bench.runner import RunResult
from optreg.show import aligned

FORMATS = ("table", "json", "csv")


def outcome(result: RunResult) -> str:
    """The tutorial's words for how a run ended.

    Example:
        >>> outcome(RunResult("m", "q", {}, {}, "converged", 80, 0.0, (0.0,), 0.0))
        'Converged in 80 iterations'
    """
    if result.status == "converged":
        return f"Converged in {result.iterations} iterations"
    if result.status == "exploded":
        return f"Gradient exploded at iteration {result.iterations}"
    return f"Exceeded maximum of {result.iterations} iterations"


def render(results: Sequence[RunResult], fmt: str) -> str:
    """Render results in one of :data:`FORMATS`.

    Args:
        results: the runs.
        fmt: ``table``, ``json`` or ``csv``.

    Returns:
        The text, ending in a newline.
    """
    return {"table": as_table, "json": as_json, "csv": as_csv}[fmt](results)


def as_json(results: Sequence[RunResult]) -> str:
    """A JSON list of run records."""
    return json.dumps([r.as_record() for r in results], indent=2, allow_nan=True) + "\n"


def _settings_text(result: RunResult) -> str:
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.settings.items()) or "defaults"


def as_table(results: Sequence[RunResult]) -> str:
    """One aligned line per run, in the tutorial's words."""
    header = ("optimizer", "settings", "problem", "result", "final loss", "final params")
    rows = [
        (
            r.optimizer,
            _settings_text(r),
            r.problem,
            outcome(r),
            f"{r.final_loss:.6g}",
            " ".join(f"{p:.7g}" for p in r.final_params),
        )
        for r in results
    ]
    return aligned([header, *rows])


def as_csv(results: Sequence[RunResult]) -> str:
    """CSV: one row per run, one column per hyperparameter of any run."""
    hyper_names = sorted({name for r in results for name in r.hyperparameters})
    fields = ["optimizer", "problem", "status", "iterations", "final_loss", "final_params", "seconds", *hyper_names]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in results:
        row = r.as_record()
        row["final_params"] = " ".join(repr(p) for p in r.final_params)
        row.update({name: r.hyperparameters.get(name, "") for name in hyper_names})
        del row["hyperparameters"]
        writer.writerow(row)
    return out.getvalue()
