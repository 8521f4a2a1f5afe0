"""Make one group of bench runs: settings of one optimizer on one problem that share a loop."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from optreg.bench.loop import STATUSES, LoopOutcome, RowOptions, StackedLoop, row_options
from optreg.bench.runner import BenchPlan, RunResult, split_setting, timed
from optreg.entries import OptimizerEntry
from optreg.problems import Problem
from optreg.spec import resolve_hyperparameters, slot_deciding_hyperparameters

#: Loops built in this process, by everything that shapes their trace.
_LOOPS: dict[tuple, StackedLoop] = {}
_MAX_CACHED_LOOPS = 64


def clear_loop_cache() -> None:
    """Forget every loop built in this process (the next bench traces and compiles afresh).

    Example:
        >>> clear_loop_cache()
    """
    _LOOPS.clear()


def make_group(
    entry: OptimizerEntry, problem: Problem, settings: Sequence[dict], plan: BenchPlan, jit_compile: bool
) -> list[RunResult]:
    """Make runs that share options and fixed hyperparameters: stacked side by side in one loop
    when the optimizer's updates are elementwise, else one loop call per setting.

    Args:
        entry: the optimizer.
        problem: the problem.
        settings: the runs' settings.
        plan: the plan (iteration limit, tolerance stopping, history).
        jit_compile: compile the loop with XLA.

    Returns:
        One :class:`RunResult` per setting, in order.
    """
    values = [resolve_hyperparameters(entry.hyperparameters, split_setting(s)[0], entry.name) for s in settings]
    options = split_setting(settings[0])[1]
    # options, fixed hyperparameters and which slots exist are the same for the whole group:
    # they shape the build (the first run's value of a slot-deciding hyperparameter stands for all)
    options.update({h.name: values[0][h.name] for h in entry.hyperparameters if getattr(h, "fixed", False)})
    options.update({name: values[0][name] for name in slot_deciding_hyperparameters(entry.spec.slots if entry.spec else ())})
    stacked = _loop(entry, problem, options, len(settings), plan, jit_compile, stacked=True)
    if stacked is not None:
        columns = {name: [v[name] for v in values] for name in values[0]}
        stacked.optimizer.stack_runs(columns, variable_rank=2)
        outcome, seconds = timed(stacked.run)
        return [_result(entry, problem, s, v, outcome, row, seconds) for row, (s, v) in enumerate(zip(settings, values))]
    single = _loop(entry, problem, options, 1, plan, jit_compile, stacked=False)
    results = []
    for setting, value in zip(settings, values):
        for name, number in value.items():
            single.optimizer.set_hyperparameter(name, number)
        outcome, seconds = timed(single.run)
        results.append(_result(entry, problem, setting, value, outcome, 0, seconds))
    return results


def _loop(entry, problem, options, runs, plan, jit_compile, stacked) -> StackedLoop | None:
    """The cached loop for this shape of group, built on first use; None when ``stacked`` is
    asked of an optimizer whose updates are not elementwise."""
    key = (entry.qualified_name, problem.name, repr(sorted(problem.options.items())), repr(sorted(options.items())),
           runs, plan.max_iters, plan.stop_at_tolerance, plan.history_every, jit_compile, stacked)
    if key in _LOOPS:
        return _LOOPS[key]
    if stacked:
        per_row, optimizer_options = row_options(options)
    else:
        per_row = RowOptions(skip_nonfinite=bool(options.get("skip_nonfinite", False)))
        optimizer_options = {k: v for k, v in options.items() if k != "skip_nonfinite"}
    optimizer = entry.build(**optimizer_options)
    if stacked and not optimizer.supports_stacked_runs:
        return None
    loop = StackedLoop(optimizer, problem, runs, plan.max_iters, jit_compile, plan.stop_at_tolerance,
                       plan.history_every, per_row)
    if len(_LOOPS) >= _MAX_CACHED_LOOPS:
        _LOOPS.clear()
    _LOOPS[key] = loop
    return loop


def _result(
    entry: OptimizerEntry,
    problem: Problem,
    setting: Mapping[str, Any],
    values: Mapping[str, Any],
    outcome: LoopOutcome,
    row: int,
    seconds: float,
) -> RunResult:
    """One run's record from its row of a loop's outcome."""
    metrics = problem.metrics(outcome.final_params[row : row + 1]) if problem.metrics else {}
    reached = int(outcome.reached_at[row])
    history = _history(outcome, row) if len(outcome.history_iterations) else None
    return RunResult(
        optimizer=entry.name,
        problem=problem.name,
        hyperparameters=dict(values),
        settings=dict(setting),
        status=STATUSES[int(outcome.status[row])],
        iterations=int(outcome.iterations[row]),
        final_loss=float(outcome.final_loss[row]),
        final_params=tuple(float(v) for v in outcome.final_params[row]),
        seconds=seconds,
        reached_at=reached if reached >= 0 else None,
        metrics={name: float(np.asarray(column)[0]) for name, column in metrics.items()},
        history=history,
        problem_options=dict(problem.options),
        has_minimum=problem.minimum_loss is not None,
    )


def _history(outcome: LoopOutcome, row: int) -> dict[str, list]:
    """One run's recorded points, ending with its final state (the loop records each point
    before that iteration's step, so a run's last step shows only in its final values)."""
    end = int(outcome.iterations[row])
    kept = outcome.history_iterations < end
    iterations = outcome.history_iterations[kept].tolist()
    loss = outcome.history_loss[kept, row].tolist()
    params = outcome.history_params[kept, row].tolist()
    if not iterations or iterations[-1] < end:
        iterations.append(end)
        loss.append(float(outcome.final_loss[row]))
        params.append(outcome.final_params[row].tolist())
    return {"iterations": iterations, "loss": loss, "params": params}
