"""Compare optimizers across problems: a ranking per problem and performance profiles.

Runs are judged by where they **end**. A run *solves* a problem when its final loss is within
the problem's tolerance of the known minimum, and its time to target is ``settled_at``: the
iteration from which it stayed within tolerance to its end (a run that touches the tolerance and
leaves again has not solved it). A problem with held-out data (``judged_by``) is judged by that
loss, the one its sweep figure draws, never by the training loss.

For each problem, an optimizer is represented by its best setting: the one that solved the
problem on the most seeds, then in the fewest iterations (the mean over its seeds), then with
the lowest judged loss (the mean of the finite ones). With no seeds each setting is one run.
Problems with no known minimum are ranked by judged loss and left out of the profiles.

The performance profile (Dolan & Moré 2002, the scoring behind the AlgoPerf benchmark) gives,
for each optimizer and factor τ, the fraction of problems its best setting solved (on every seed)
within τ times the fewest iterations any compared optimizer's best setting needed there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from optreg.bench.runner import RunResult, outcome
from optreg.bench.seed_stats import Spread, spread
from optreg.text import aligned

__all__ = [
    "NO_TARGET",
    "TAUS",
    "SettingRuns",
    "Standing",
    "by_setting",
    "full_settings_text",
    "profile",
    "ranking_text",
    "settings_text",
    "standings",
]

#: What "within tolerance from" says for a problem with no known minimum.
NO_TARGET = "no known minimum"
#: The factors τ the profile summary reports.
TAUS = (1.0, 1.5, 2.0, 4.0, 10.0)


@attrs.frozen
class SettingRuns:
    """One optimizer's setting on one problem: its runs, one per seed.

    Attributes:
        runs: the runs, in seed order (one run when the bench had no seeds).
    """

    runs: tuple[RunResult, ...]

    @property
    def first(self) -> RunResult:
        """The first seed's run (what every run shares: optimizer, problem, settings)."""
        return self.runs[0]

    @property
    def solved(self) -> int:
        """On how many seeds the setting ended within tolerance."""
        return sum(run.solved for run in self.runs)

    @property
    def time_to_target(self) -> float | None:
        """The mean ``settled_at`` when every seed solved the problem, else None."""
        if self.solved < len(self.runs):
            return None
        return math.fsum(run.settled_at or 0 for run in self.runs) / len(self.runs)

    @property
    def settled(self) -> Spread:
        """The spread of ``settled_at`` over the seeds that solved the problem."""
        return spread([float(run.settled_at) for run in self.runs if run.settled_at is not None])

    @property
    def settled_seconds(self) -> Spread:
        """The spread of the wall-clock time to target (``seconds_to_target``) over the seeds
        that solved the problem."""
        return spread([run.seconds_to_target for run in self.runs if run.seconds_to_target is not None])

    @property
    def judged(self) -> Spread:
        """The spread of the judged loss (final or held-out) over the seeds."""
        return spread([run.judged_loss for run in self.runs])

    def order(self) -> tuple[float, float, float]:
        """Sort key: more seeds solved, then fewer iterations to target, then lower judged loss."""
        settled, judged = self.settled, self.judged
        return (
            -self.solved / len(self.runs),
            settled.mean if settled.count else 0.0,
            judged.mean if judged.count else math.inf,
        )


@attrs.frozen
class Standing:
    """One optimizer's best setting on one problem and its place.

    Attributes:
        rank: 1 for the best optimizer on the problem.
        setting: the optimizer's best setting there, with its runs.
    """

    rank: int
    setting: SettingRuns

    @property
    def result(self) -> RunResult:
        """The best setting's (first) run."""
        return self.setting.first

    @property
    def solved_in(self) -> float | None:
        """Iterations to reach the problem's tolerance and stay (the mean over seeds), or None."""
        return self.setting.time_to_target


def by_setting(results: Sequence[RunResult]) -> list[SettingRuns]:
    """The runs grouped by (problem, optimizer, setting), seeds together, in first-run order.

    Example:
        >>> by_setting([])
        []
    """
    grouped: dict[tuple[str, str, str, int | None], list[RunResult]] = {}
    for index, result in enumerate(results):
        # a run without a seed is a setting of its own (an optimizer named twice is two settings)
        key = (result.problem, result.optimizer, repr(sorted(result.settings.items())),
               index if result.seed is None else None)
        grouped.setdefault(key, []).append(result)
    return [SettingRuns(tuple(runs)) for runs in grouped.values()]


def standings(results: Sequence[RunResult]) -> dict[str, list[Standing]]:
    """Problem → the optimizers' standings, best first.

    Example:
        >>> standings([])
        {}
    """
    best: dict[str, dict[str, SettingRuns]] = {}
    for setting in by_setting(results):
        mine = best.setdefault(setting.first.problem, {})
        current = mine.get(setting.first.optimizer)
        if current is None or setting.order() < current.order():
            mine[setting.first.optimizer] = setting
    table = {}
    for problem, by_optimizer in best.items():
        ordered = sorted(by_optimizer.values(), key=SettingRuns.order)
        table[problem] = [Standing(rank, setting) for rank, setting in enumerate(ordered, start=1)]
    return table


def performance_ratios(results: Sequence[RunResult]) -> dict[str, list[float]]:
    """Optimizer → its performance ratio on each problem with a known minimum: the iterations its
    best run (as :func:`standings` chooses it) needed to come within tolerance, to stay, divided
    by the fewest any optimizer needed there (``math.inf`` when it never did). The one
    definition the ranking's :func:`profile` and the profile figure both read.

    A problem solved at iteration 0 by its start point counts as needing 1 iteration; with
    seeds, a setting solves a problem when it solved it on every seed, in the mean of their
    iterations.

    Returns:
        The ratios in the problems' order, the optimizers in the order they first ran; empty
        when no problem has a known minimum.

    Example:
        >>> performance_ratios([])
        {}
    """
    judged = [rows for rows in standings(results).values() if rows[0].result.has_minimum]
    if not judged:
        return {}
    ratios: dict[str, list[float]] = {name: [] for name in dict.fromkeys(r.optimizer for r in results)}
    for rows in judged:
        solved = {s.result.optimizer: max(s.solved_in, 1.0) for s in rows if s.solved_in is not None}
        fewest = min(solved.values(), default=1.0)
        for name, mine in ratios.items():
            mine.append(solved[name] / fewest if name in solved else math.inf)
    return ratios


def profile(results: Sequence[RunResult], taus: Sequence[float] = TAUS) -> dict[str, list[float]]:
    """Optimizer → for each τ, the fraction of problems whose :func:`performance_ratios` ratio
    is at most τ (problems solved within τ× the best iterations).

    Only problems with a known minimum count (none: an empty profile).

    Example:
        >>> profile([])
        {}
    """
    ratios = performance_ratios(results)
    if not ratios:
        return {}
    problems = len(next(iter(ratios.values())))
    fractions: dict[str, list[float]] = {}
    for name in sorted(ratios):
        fractions[name] = [0.0] * len(taus)
        for ratio in ratios[name]:
            for k, tau in enumerate(taus):
                if ratio <= tau:
                    fractions[name][k] += 1 / problems
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
    seeded = any(len(place.setting.runs) > 1 for places in table.values() for place in places)
    rows = [_ranking_header(seeded)]
    for problem, places in table.items():
        rows += [(problem, str(place.rank), place.result.optimizer, *_ranking_cells(place.setting, seeded))
                 for place in places]
    notes = "".join(_judged_note(places[0].result) for places in table.values())
    fractions = profile(results, taus)
    if not fractions:
        return aligned(rows) + notes + "\nperformance profile: no problem here has a known minimum to solve\n"
    header = ("optimizer", *[f"τ={tau:g}" for tau in taus])
    summary = [header, *[(name, *[f"{f:.2f}" for f in values]) for name, values in fractions.items()]]
    return (
        aligned(rows)
        + notes
        + "\nperformance profile: the fraction of problems each optimizer brought within tolerance, to stay,"
        " in at most τ × the fewest iterations\n"
        + aligned(summary)
    )


def _ranking_header(seeded: bool) -> tuple[str, ...]:
    """The ranking's column names: per run, or per setting over seeds."""
    if seeded:
        return ("problem", "rank", "optimizer", "best settings", "solved on", "within tolerance from",
                "final loss", "95% interval")
    return ("problem", "rank", "optimizer", "best settings", "result", "within tolerance from", "final loss")


def _ranking_cells(setting: SettingRuns, seeded: bool) -> tuple[str, ...]:
    """A best setting's cells after its problem, rank and optimizer."""
    run = setting.first
    if seeded:
        settled, judged = setting.settled, setting.judged
        within = "never" if not settled.count else f"iteration {settled.text()}"
        within = within if run.has_target else NO_TARGET
        exploded = f" ({judged.left_out} not finite)" if judged.left_out else ""
        return (full_settings_text(run), f"{setting.solved}/{len(setting.runs)} seeds", within,
                judged.text() + exploded, judged.interval_text())
    if run.settled_at is not None:
        within = f"iteration {run.settled_at}"
    elif run.reached_at is not None:
        within = f"never (left after iteration {run.reached_at})"
    else:
        within = "never" if run.has_target else NO_TARGET
    return (full_settings_text(run), outcome(run), within, f"{run.judged_loss:.6g}")


def _judged_note(run: RunResult) -> str:
    """A line saying which loss judges a problem with held-out data, and its baseline."""
    if run.judged_by is None:
        return ""
    baseline = f"; a run must beat the constant prediction's {run.baseline:.6g}" if run.baseline is not None else ""
    return f"{run.problem}: judged by {run.judged_by} (held out), shown as its final loss{baseline}\n"


def full_settings_text(result: RunResult) -> str:
    """Every hyperparameter's value in the run and every option set, as ``name=value`` words:
    what optimizers are compared with, defaults spelled out.

    Example:
        >>> from optreg.bench.runner import RunResult
        >>> run = RunResult("sgd", "q", {"learning_rate": 0.01, "momentum": 0.0}, {}, "converged", 1, 0.0, (0.0,), 0.0)
        >>> full_settings_text(run)
        'learning_rate=0.01 momentum=0'
    """
    values = {**result.hyperparameters, **result.settings}
    return " ".join(_word(k, v) for k, v in values.items())


def settings_text(result: RunResult) -> str:
    """A run's explicit settings as ``name=value`` words; with none, every value
    (:func:`full_settings_text`), never the bare word "defaults".

    Example:
        >>> from optreg.bench.runner import RunResult
        >>> settings_text(RunResult("m", "q", {}, {"learning_rate": 0.01}, "converged", 1, 0.0, (0.0,), 0.0))
        'learning_rate=0.01'
    """
    words = [_word(k, v) for k, v in result.settings.items()]
    return " ".join(words) or full_settings_text(result) or "no hyperparameters"


def _word(name: str, value: object) -> str:
    """``name=value``, a float in its shortest general form."""
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
