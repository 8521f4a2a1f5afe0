"""Make every run of a bench plan: each problem's runs in as few compiled loops as it can
(:mod:`optreg.bench.groups`), the runs of every optimizer whose updates are elementwise side by
side in one loop, one loop call per setting for the rest. Loops are cached per process, so a
repeated bench only assigns new values.
"""

from __future__ import annotations

from typing import Callable

from optreg.bench.groups import run_problem
from optreg.bench.runner import BenchPlan, RunResult


def run_bench(
    plan: BenchPlan, jit_compile: bool = True, progress: Callable[[int], None] | None = None
) -> list[RunResult]:
    """Make every run of a plan.

    Args:
        plan: from :func:`plan_bench`.
        jit_compile: compile each loop with XLA.
        progress: called with the number of runs finished after each loop.

    Returns:
        One :class:`RunResult` per (problem, optimizer, setting), in plan order.

    Example:
        >>> results = run_bench(plan_bench(registry, ["adam"], "quartic", [{}]))  # doctest: +SKIP
    """
    results = []
    for problem in plan.problems:
        results.extend(run_problem(problem, plan, jit_compile, progress))
    return results
