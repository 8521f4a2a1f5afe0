"""Render bench results as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

from optreg.bench.ranking import settings_text
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
    if result.status == "reached":
        return f"Reached tolerance in {result.iterations} iterations"
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


def as_table(results: Sequence[RunResult]) -> str:
    """One aligned line per run, in the tutorial's words, with the problems' extra figures."""
    metric_names = sorted({name for r in results for name in r.metrics})
    header = ("optimizer", "settings", "problem", "result", "final loss", *metric_names, "final params")
    rows = [
        (
            r.optimizer,
            settings_text(r),
            r.problem,
            outcome(r),
            f"{r.final_loss:.6g}",
            *[f"{r.metrics[name]:.6g}" if name in r.metrics else "" for name in metric_names],
            _params_text(r.final_params),
        )
        for r in results
    ]
    return aligned([header, *rows])


def _params_text(params: Sequence[float]) -> str:
    """The final parameters, or their count when there are too many to read."""
    if len(params) > 4:
        return f"({len(params)} values)"
    return " ".join(f"{p:.7g}" for p in params)


def as_csv(results: Sequence[RunResult]) -> str:
    """CSV: one row per run, one column per hyperparameter of any run."""
    hyper_names = sorted({name for r in results for name in r.hyperparameters})
    metric_names = sorted({name for r in results for name in r.metrics})
    fields = ["optimizer", "problem", "status", "iterations", "reached_at", "final_loss", "final_params", "seconds",
              *metric_names, *hyper_names]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in results:
        row = r.as_record()
        row["final_params"] = " ".join(repr(p) for p in r.final_params)
        row.update({name: r.hyperparameters.get(name, "") for name in hyper_names})
        for extra in ("hyperparameters", "history", "problem_options"):
            row.pop(extra, None)
        writer.writerow(row)
    return out.getvalue()
