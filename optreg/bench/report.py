"""Render bench results as a table, JSON or CSV."""

from __future__ import annotations

from collections.abc import Sequence

from optreg.bench import result_schema
from optreg.bench.loop_timing import optimizer_seconds_text
from optreg.bench.ranking import NO_TARGET, by_setting, settings_text
from optreg.bench.runner import RunResult, outcome
from optreg.text import aligned

FORMATS = ("table", "json", "csv")


def render(results: Sequence[RunResult], fmt: str, with_history: bool = True) -> str:
    """Render results in one of :data:`FORMATS`.

    Args:
        results: the runs.
        fmt: ``table``, ``json`` or ``csv``.
        with_history: JSON holds each run's recorded history (when it has one).

    Returns:
        The text, ending in a newline.
    """
    if fmt == "json":
        return as_json(results, with_history)
    return {"table": as_table, "csv": as_csv}[fmt](results)


def as_json(results: Sequence[RunResult], with_history: bool = True) -> str:
    """A strict JSON list of run records (:mod:`optreg.bench.result_schema`; each with its
    recorded history only ``with_history``)."""
    return result_schema.records_json(results, with_history)


def as_table(results: Sequence[RunResult]) -> str:
    """One aligned line per run, in the tutorial's words, with the problems' extra figures; with
    several seeds, one line per setting over its seeds (:func:`as_seed_table`)."""
    if any(len(setting.runs) > 1 for setting in by_setting(results)):
        return as_seed_table(results)
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


def as_seed_table(results: Sequence[RunResult]) -> str:
    """One aligned line per (optimizer, setting, problem) over its seeds: how the runs ended,
    the judged loss's mean ± standard deviation and 95% interval, the time to target in
    iterations (``settled_at``) and in wall seconds (``seconds_to_target``) over the seeds that
    ended within tolerance, and the setting's wall time (its runs' ``seconds_share``); then each
    optimizer's wall time (:func:`~optreg.bench.loop_timing.optimizer_seconds_text`).

    Example:
        >>> print(as_seed_table([]), end="")  # doctest: +NORMALIZE_WHITESPACE
        optimizer  settings  problem  seeds  results  judged loss  95% interval  within tolerance from
        seconds to target  seconds
    """
    header = ("optimizer", "settings", "problem", "seeds", "results", "judged loss", "95% interval",
              "within tolerance from", "seconds to target", "seconds")
    rows = [header]
    for setting in by_setting(results):
        run, judged, settled = setting.first, setting.judged, setting.settled
        counts: dict[str, int] = {}
        for each in setting.runs:
            counts[each.status] = counts.get(each.status, 0) + 1
        seeds = ",".join(str(each.seed) for each in setting.runs)
        within = f"{settled.text()} ({settled.count}/{len(setting.runs)})" if settled.count else "never"
        within = within if run.has_target else NO_TARGET
        seconds = setting.settled_seconds
        to_target = (seconds.text(3) if seconds.count else "never") if run.has_target else NO_TARGET
        rows.append((run.optimizer, settings_text(run), run.problem, seeds,
                     ", ".join(f"{status} {n}" for status, n in counts.items()),
                     judged.text() + (f" ({judged.left_out} not finite)" if judged.left_out else ""),
                     judged.interval_text(), within, to_target,
                     f"{sum(each.seconds_share for each in setting.runs):.3g}"))
    judged_by = sorted({f"{r.problem}'s {r.judged_by}" for r in results if r.judged_by is not None})
    note = f"judged loss: the final loss; {', '.join(judged_by)}\n" if judged_by else ""
    timing = optimizer_seconds_text(results)
    return aligned(rows) + note + (TIME_NOTE + timing if timing else "")


#: Under the seed table: what its seconds are.
TIME_NOTE = ("seconds to target: settled_at × the loop's seconds per iteration, compilation left out; "
             "seconds: the setting's runs' shares of their loops' running time\n")


def _params_text(params: Sequence[float]) -> str:
    """The final parameters, or their count when there are too many to read."""
    if len(params) > 4:
        return f"({len(params)} values)"
    return " ".join(f"{p:.7g}" for p in params)


def as_csv(results: Sequence[RunResult]) -> str:
    """CSV: one row per run, the fixed columns of :func:`optreg.bench.result_schema.csv_columns`."""
    return result_schema.csv_text(results)
