"""Compare optimizers across problems: a ranking per problem and performance profiles.

For each problem, an optimizer is represented by its best run: the one that reached the
problem's tolerance in the fewest iterations, else the one with the lowest final loss. A
problem is *solved* by a run that came within its tolerance of the known minimum (problems
with no known minimum are ranked by final loss and left out of the profiles).

The performance profile (Dolan & Moré 2002, the scoring behind the AlgoPerf benchmark) gives,
for each optimizer and factor τ, the fraction of problems it solved within τ times the fewest
iterations any compared optimizer needed on that problem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from optreg.bench.runner import RunResult, outcome
from optreg.text import aligned

#: The factors τ the profile summary reports.
TAUS = (1.0, 1.5, 2.0, 4.0, 10.0)


@attrs.frozen
class Standing:
    """One optimizer's best run on one problem and its place.

    Attributes:
        rank: 1 for the best optimizer on the problem.
        result: the optimizer's best run there.
    """

    rank: int
    result: RunResult

    @property
    def solved_in(self) -> int | None:
        """Iterations to reach the problem's tolerance, or None."""
        return self.result.reached_at


def _order(result: RunResult) -> tuple:
    """Sort key of runs: solved first, then fewer iterations, then lower final loss."""
    loss = result.final_loss if math.isfinite(result.final_loss) else math.inf
    solved = result.reached_at is not None
    return (not solved, result.reached_at if solved else 0, loss)


def standings(results: Sequence[RunResult]) -> dict[str, list[Standing]]:
    """Problem → the optimizers' standings, best first.

    Example:
        >>> standings([])
        {}
    """
    best: dict[str, dict[str, RunResult]] = {}
    for result in results:
        mine = best.setdefault(result.problem, {})
        current = mine.get(result.optimizer)
        if current is None or _order(result) < _order(current):
            mine[result.optimizer] = result
    table = {}
    for problem, by_optimizer in best.items():
        ordered = sorted(by_optimizer.values(), key=_order)
        table[problem] = [Standing(rank, result) for rank, result in enumerate(ordered, start=1)]
    return table


def profile(results: Sequence[RunResult], taus: Sequence[float] = TAUS) -> dict[str, list[float]]:
    """Optimizer → for each τ, the fraction of problems solved within τ× the best iterations.

    Only problems with a known minimum count (none: an empty profile). A problem solved at
    iteration 0 by its start point counts as needing 1 iteration.

    Example:
        >>> profile([])
        {}
    """
    table = standings(results)
    optimizers = sorted({r.optimizer for r in results})
    judged = {p: rows for p, rows in table.items() if rows[0].result.has_minimum}
    if not judged:
        return {}
    fractions: dict[str, list[float]] = {name: [0.0] * len(taus) for name in optimizers}
    for rows in judged.values():
        solved = {s.result.optimizer: max(s.solved_in, 1) for s in rows if s.solved_in is not None}
        if not solved:
            continue
        fewest = min(solved.values())
        for name, iterations in solved.items():
            for k, tau in enumerate(taus):
                if iterations <= tau * fewest:
                    fractions[name][k] += 1 / len(judged)
    return fractions


def ranking_text(results: Sequence[RunResult], taus: Sequence[float] = TAUS) -> str:
    """The ranking per problem and the profile summary, as aligned text.

    Example:
        >>> print(ranking_text([]), end="")
        ranking: no runs
    """
    table = standings(results)
    if not table:
        return "ranking: no runs\n"
    rows = [("problem", "rank", "optimizer", "best settings", "result", "within tolerance at", "final loss")]
    for problem, places in table.items():
        for place in places:
            r = place.result
            within = f"iteration {r.reached_at}" if r.reached_at is not None else "never"
            rows.append(
                (problem, str(place.rank), r.optimizer, settings_text(r), outcome(r), within, f"{r.final_loss:.6g}")
            )
    fractions = profile(results, taus)
    if not fractions:
        return aligned(rows) + "\nperformance profile: no problem here has a known minimum to solve\n"
    header = ("optimizer", *[f"τ={tau:g}" for tau in taus])
    summary = [header, *[(name, *[f"{f:.2f}" for f in values]) for name, values in fractions.items()]]
    return (
        aligned(rows)
        + "\nperformance profile: the fraction of problems each optimizer brought within tolerance"
        " in at most τ × the fewest iterations\n"
        + aligned(summary)
    )


def settings_text(result: RunResult) -> str:
    """A run's explicit settings as ``name=value`` words, or ``defaults``.

    Example:
        >>> from optreg.bench.runner import RunResult
        >>> settings_text(RunResult("m", "q", {}, {"learning_rate": 0.01}, "converged", 1, 0.0, (0.0,), 0.0))
        'learning_rate=0.01'
    """
    words = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.settings.items()]
    return " ".join(words) or "defaults"
