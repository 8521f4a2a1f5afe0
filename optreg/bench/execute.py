"""Make every run of a bench plan: each problem's runs in as few compiled loops as it can
(:mod:`optreg.bench.groups`), the runs of every optimizer whose updates are elementwise side by
side in one loop, one loop call per setting for the rest. The loops are kept in the
:class:`~optreg.bench.loop_cache.LoopCache` given, so a repeated bench given the same cache only
assigns new values. Ctrl-C stops a bench between two chunks of a loop
(:mod:`optreg.bench.loop`); :class:`BenchInterrupted` then holds the problems' runs that finished.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from optreg.bench.groups import ProblemLoops, run_problem
from optreg.bench.loop_cache import LoopCache
from optreg.bench.run_table import RunTable
from optreg.bench.runner import BenchPlan, RunResult


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a bench.

    Args:
        results: the runs of every problem that finished before it, in plan order.
    """

    def __init__(self, results: Sequence[RunResult]):
        super().__init__(f"{len(results)} runs finished")
        self.results = results


def run_bench(
    plan: BenchPlan,
    jit_compile: bool = True,
    progress: Callable[[int], None] | None = None,
    loops: LoopCache[ProblemLoops] | None = None,
) -> RunTable:
    """Make every run of a plan.

    Args:
        plan: from :func:`plan_bench`.
        jit_compile: compile each loop with XLA.
        progress: called with the number of runs finished after each loop.
        loops: the cache the compiled loops are kept in, for a later bench given it to reuse
            (bounded: :class:`~optreg.bench.loop_cache.LoopCache`); None: a cache for this call.

    Returns:
        One :class:`RunResult` per (problem, optimizer, setting), in plan order, as a
        :class:`~optreg.bench.run_table.RunTable`: each record is made when first read, and
        the statuses and the loops' numbers can be read as columns without them.

    Raises:
        BenchInterrupted: on Ctrl-C, with the runs of the problems that finished.

    Example:
        >>> results = run_bench(plan_bench(registry, ["adam"], "quartic", [{}]))  # doctest: +SKIP
    """
    tables: list[RunTable] = []
    cache: LoopCache[ProblemLoops] = LoopCache() if loops is None else loops
    loop_ids = itertools.count()  # each loop call's number in this bench, its records' loop_id
    try:
        for problem in plan.problems:
            tables.append(run_problem(problem, plan, jit_compile, progress, cache, loop_ids))
    except KeyboardInterrupt:
        raise BenchInterrupted(RunTable.joined(tables)) from None
    return RunTable.joined(tables)
