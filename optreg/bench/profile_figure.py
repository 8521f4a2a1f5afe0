"""The performance-profile figure (Dolan & Moré 2002): how often each optimizer is near the best.

On each problem with a known minimum, every optimizer's best run has a ratio: the iterations it
needed to come within tolerance, divided by the fewest any compared optimizer needed there; a
run that never came within tolerance has an infinite ratio. The ratios are the ranking's
(:func:`optreg.bench.ranking.performance_ratios`, the one definition, which
:func:`optreg.bench.ranking.profile` tabulates). The figure draws, for each optimizer, the fraction
of those problems whose ratio is at most τ, a step curve over τ ≥ 1: its height at τ = 1 is how
often it was the fastest, its height at the right edge how often it solved the problem at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from optreg.bench import plot_style as style
from optreg.bench.ranking import performance_ratios
from optreg.bench.runner import RunResult
from optreg.errors import OptionError
from optreg.problems import Problem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["check_profile_problems", "profile_figure"]


def check_profile_problems(problems: Sequence[Problem]) -> None:
    """Check, before anything runs, that a profile can judge some problem: one with a known minimum.

    Raises:
        OptionError: none of ``problems`` has a known minimum.

    Example:
        >>> from optreg.problems.analytic import BOOTH
        >>> check_profile_problems([BOOTH])
    """
    if all(problem.minimum_loss is None for problem in problems):
        names = ", ".join(problem.name for problem in problems)
        raise OptionError("--plot-profile needs a problem with a known minimum (runs are judged by reaching its "
                          f"tolerance); none of {names} has one")


def profile_figure(results: Sequence[RunResult]) -> Figure:
    """Each optimizer's performance profile: the fraction of problems it solved within τ × the
    fewest iterations, against τ on a log axis; one colour per optimizer, ``gid`` ``profile``.

    Raises:
        ValueError: no problem among the results has a known minimum (nothing is solved).

    Example:
        >>> profile_figure(results).savefig("profile.svg")  # doctest: +SKIP
    """
    ratios = performance_ratios(results)
    if not ratios:
        raise ValueError("a performance profile needs a problem with a known minimum")
    finite = [value for mine in ratios.values() for value in mine if math.isfinite(value)]
    right = max([2.0, *finite]) * 1.25
    figure: Figure
    figure, (panel,) = style.new_figure(1, (9, 6))
    entries = []
    for (name, mine), (colour, linestyle) in zip(ratios.items(), style.qualitative(len(ratios))):
        values = np.asarray(mine, np.float64)
        taus = np.unique(np.concatenate([[1.0], values[np.isfinite(values)], [right]]))
        fractions = [(values <= tau).mean() for tau in taus]
        (line,) = panel.step(taus, fractions, where="post", color=colour, linestyle=linestyle, linewidth=2,
                             gid="profile")
        solved = int(np.isfinite(values).sum())
        entries.append((line, f"{name}: solved {solved} of {len(values)}"))
    count = len(next(iter(ratios.values())))
    panel.set(xscale="log", xlim=(1.0, right), ylim=(-0.02, 1.02),
              xlabel="τ: iterations to tolerance ÷ the fewest any optimizer needed",
              ylabel="fraction of problems solved within τ",
              title=f"performance profile over {count} problem{'s' * (count != 1)} with a known minimum")
    panel.xaxis.set_major_formatter("{x:g}")
    panel.xaxis.set_minor_formatter("{x:g}")
    style.add_key(figure, [panel], entries)
    return figure
