"""Successive halving (``optreg bench --halving ETA``): a search that spends the iteration budget
on the settings that look best.

Every candidate — an (optimizer, setting) pair of the plan, on every seed — first runs for a
short budget; the best ``1/ETA`` of them by the loss they end at run again for ``ETA`` times as
many iterations, and so on, until the last rung runs the survivors for the full ``--max-iters``
(Jamieson & Talwalkar 2016; Li et al. 2018, the inner loop of Hyperband). With N candidates
there are ``s + 1`` rungs, ``s = floor(log_ETA N)``; rung ``i`` runs ``floor(N / ETA**i)``
candidates for ``max_iters // ETA**(s - i)`` iterations. Each rung starts its runs afresh from
the start point (the runs of a rung are one stacked loop, as any bench's), so a rung's losses
are those of a run of that length, and the search costs about ``s + 1`` full benches of
``N / ETA**s`` runs.

A candidate is judged by its judged loss (the held-out loss where the problem has one, see
:attr:`~optreg.bench.runner.RunResult.judged_loss`), averaged over its seeds; a run that
exploded, or ended at a NaN, is the worst. Ties keep the plan's order. The search needs one
problem: losses of different problems are not on one scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from optreg.bench.runner import BenchPlan, RunResult
from optreg.catalog.entries import OptimizerEntry
from optreg.errors import OptionError

__all__ = ["HalvingSearch", "Rung", "halving_text", "rung_budgets", "successive_halving"]

#: A candidate: an optimizer entry and one of its settings.
Candidate = tuple[OptimizerEntry, dict[str, Any]]


@attrs.frozen
class Rung:
    """One rung of the search.

    Attributes:
        iterations: every run's iteration limit in this rung.
        candidates: how many candidates ran.
        runs: how many runs that made (candidates × seeds).
        kept: how many go on to the next rung (0 in the last).
        best: the best candidate's optimizer and settings, as the table shows them.
        best_loss: its judged loss, averaged over its seeds.
    """

    iterations: int
    candidates: int
    runs: int
    kept: int
    best: str
    best_loss: float


def rung_budgets(candidates: int, max_iters: int, eta: int) -> list[tuple[int, int]]:
    """(candidates, iterations) of each rung.

    Args:
        candidates: how many candidates the search starts with.
        max_iters: the last rung's iteration limit.
        eta: the factor each rung divides the candidates by and multiplies the iterations by.

    Raises:
        OptionError: eta below 2.

    Example:
        >>> rung_budgets(27, 2700, 3)
        [(27, 100), (9, 300), (3, 900), (1, 2700)]
    """
    if eta < 2:
        raise OptionError(f"--halving takes a factor of at least 2, got {eta}")
    last = int(math.floor(math.log(candidates, eta) + 1e-9)) if candidates > 1 else 0
    return [(max(1, candidates // eta**i), max(1, max_iters // eta ** (last - i))) for i in range(last + 1)]


def successive_halving(
    plan: BenchPlan, run: Callable[[BenchPlan], Sequence[RunResult]], eta: int
) -> tuple[Sequence[RunResult], list[Rung]]:
    """Run the search.

    Args:
        plan: the planned bench (one problem); its ``max_iters`` is the last rung's budget.
        run: makes a plan's runs (:func:`~optreg.bench.execute.run_bench` with its options).
        eta: the halving factor.

    Returns:
        The last rung's results (the survivors at the full budget) and every rung's summary.

    Raises:
        OptionError: the plan has several problems, or eta is below 2.

    Example:
        >>> results, rungs = successive_halving(plan, run_bench, 3)  # doctest: +SKIP
    """
    _check_one_problem(plan)
    candidates: list[Candidate] = [(entry, setting) for entry, settings in plan.runs for setting in settings]
    budgets = rung_budgets(len(candidates), plan.max_iters, eta)
    rungs: list[Rung] = []
    results: Sequence[RunResult] = []
    for index, (count, iterations) in enumerate(budgets):
        candidates = candidates[:count]
        results = run(attrs.evolve(plan, runs=_grouped(candidates), max_iters=iterations))
        scores = _scores(candidates, results, max(1, len(plan.seeds)))
        order = sorted(range(len(candidates)), key=lambda k: scores[k])  # stable: ties keep the plan's order
        kept = budgets[index + 1][0] if index + 1 < len(budgets) else 0
        best = candidates[order[0]]
        rungs.append(Rung(iterations, len(candidates), len(results), kept, _label(best), scores[order[0]]))
        candidates = [candidates[k] for k in sorted(order[: max(kept, 1)])]
    return results, rungs


def _check_one_problem(plan: BenchPlan) -> None:
    """Refuse a plan of several problems, whose losses are not on one scale."""
    if len(plan.problems) != 1:
        raise OptionError(
            f"--halving compares losses, which needs one problem; given {len(plan.problems)} "
            f"({', '.join(p.name for p in plan.problems)})"
        )


def _grouped(candidates: Sequence[Candidate]) -> tuple[tuple[OptimizerEntry, tuple[dict[str, Any], ...]], ...]:
    """Candidates as a plan's runs: each entry with its settings, in first-appearance order."""
    by_entry: dict[int, tuple[OptimizerEntry, list[dict[str, Any]]]] = {}
    for entry, setting in candidates:
        by_entry.setdefault(id(entry), (entry, []))[1].append(setting)
    return tuple((entry, tuple(settings)) for entry, settings in by_entry.values())


def _scores(candidates: Sequence[Candidate], results: Sequence[RunResult], seeds: int) -> list[float]:
    """Each candidate's judged loss averaged over its seeds (inf for an exploded or NaN run).

    The results come in the plan's order, each candidate's seeds next to each other (see
    :func:`~optreg.bench.groups.run_problem`)."""
    if len(results) != len(candidates) * seeds:
        raise AssertionError(f"{len(results)} results for {len(candidates)} candidates × {seeds} seeds")
    losses = [
        r.judged_loss if r.status != "exploded" and math.isfinite(r.judged_loss) else math.inf for r in results
    ]
    return [math.fsum(losses[k * seeds : (k + 1) * seeds]) / seeds for k in range(len(candidates))]


def _label(candidate: Candidate) -> str:
    """An optimizer and its explicit settings, as one line."""
    entry, setting = candidate
    settings = " ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                        for name, value in setting.items())
    return f"{entry.name} {settings}".strip()


def halving_text(rungs: Sequence[Rung], eta: int) -> str:
    """The rungs, one line each, for the table output.

    Example:
        >>> print(halving_text([Rung(10, 9, 9, 3, "adam learning_rate=0.1", 0.5)], 3), end="")
        successive halving, factor 3:
          rung 1: 9 candidates (9 runs) x 10 iterations, kept 3; best adam learning_rate=0.1 (loss 0.5)
    """
    lines = [f"successive halving, factor {eta}:"]
    for number, rung in enumerate(rungs, start=1):
        kept = f"kept {rung.kept}" if rung.kept else "the last rung"
        lines.append(
            f"  rung {number}: {rung.candidates} candidates ({rung.runs} runs) x {rung.iterations} iterations, "
            f"{kept}; best {rung.best} (loss {rung.best_loss:.6g})"
        )
    return "\n".join(lines) + "\n"


class HalvingSearch:
    """One ``--halving`` search of a plan, as the ``bench`` command runs it: how many runs it
    will make (for the progress bar), the search itself, and its rungs as text.

    Args:
        plan: the planned bench (one problem).
        eta: the halving factor.

    Raises:
        OptionError: several problems, or eta below 2 (before anything runs).

    Example:
        >>> search = HalvingSearch(plan, 3)  # doctest: +SKIP
        >>> results = search.run(run_bench)  # doctest: +SKIP
    """

    def __init__(self, plan: BenchPlan, eta: int):
        _check_one_problem(plan)
        self.plan, self.eta = plan, eta
        candidates = sum(len(settings) for _, settings in plan.runs)
        self.budgets = rung_budgets(candidates, plan.max_iters, eta)
        self.rungs: list[Rung] = []
        #: Each rung's results, as its runs finished (what an interrupted search keeps).
        self.finished: list[Sequence[RunResult]] = []

    @property
    def run_count(self) -> int:
        """How many runs every rung makes, in all."""
        return sum(count for count, _ in self.budgets) * max(1, len(self.plan.seeds))

    def run(self, make_runs: Callable[[BenchPlan], Sequence[RunResult]]) -> Sequence[RunResult]:
        """Run the search (:func:`successive_halving`); returns the last rung's results.

        When ``make_runs`` raises (Ctrl-C), :attr:`finished` holds the rungs that finished.
        """
        self.finished = []

        def rung(plan: BenchPlan) -> Sequence[RunResult]:
            results = make_runs(plan)
            self.finished.append(results)
            return results

        results, self.rungs = successive_halving(self.plan, rung, self.eta)
        return results

    @property
    def finished_runs(self) -> int:
        """How many runs the finished rungs made."""
        return sum(len(results) for results in self.finished)

    def text(self) -> str:
        """The rungs, as :func:`halving_text` prints them."""
        return halving_text(self.rungs, self.eta)
