"""Where bench figures look: windows on a problem's landscape and log ranges of losses.

Every limit is taken from finite values only, and the runs that exploded never set one (their
paths and losses leave any useful window); a figure marks where they stopped instead. Losses
shown on a log axis keep every positive value as it is; values at or below zero (a run that
reached the known minimum to float precision) are drawn at a floor the figure names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optreg.bench.runner import RunResult
from optreg.problems import Problem

#: The largest parameter magnitude a window frames, so one runaway path cannot flatten the rest.
_WINDOW_CAP = 1e6


def framing_runs(runs: Sequence[RunResult]) -> list[RunResult]:
    """The runs whose values set a figure's range: all but those that exploded, or all when
    every run exploded.

    Example:
        >>> framing_runs([])
        []
    """
    kept = [r for r in runs if r.status != "exploded"]
    return kept or list(runs)


def anchors(problem: Problem) -> np.ndarray:
    """The points every window on a problem shows, shape ``[points, dimension]``: its start
    and, where known, its minimum.

    Example:
        >>> from optreg.problems.analytic import ROSENBROCK
        >>> anchors(ROSENBROCK).tolist()
        [[-1.2, 1.0], [1.0, 1.0]]
    """
    points = [problem.start] + ([problem.minimum] if problem.minimum is not None else [])
    return np.asarray(points, np.float64)


def finite_range(values: np.ndarray) -> tuple[float, float]:
    """The smallest and largest finite values, kept within ±1e6.

    Example:
        >>> finite_range(np.array([1.0, np.nan, -2.0, np.inf]))
        (-2.0, 1.0)
    """
    finite = np.clip(values[np.isfinite(values)], -_WINDOW_CAP, _WINDOW_CAP)
    return float(finite.min()), float(finite.max())


def padded(low: float, high: float, fraction: float = 0.1) -> tuple[float, float]:
    """A range around ``[low, high]`` with a margin of ``fraction`` of its span (and some width
    when they coincide).

    Example:
        >>> padded(0.0, 10.0)
        (-1.0, 11.0)
    """
    span = high - low
    margin = fraction * span if span > 0 else max(abs(low) * fraction, 0.5)
    return (low - margin, high + margin) if math.isfinite(margin) else (-1.0, 1.0)


def history(run: RunResult) -> Mapping[str, list[Any]]:
    """A run's recorded history, which a figure's runs have (they are chosen for it).

    Raises:
        ValueError: the run recorded none.

    Example:
        >>> history(RunResult("m", "q", {}, {}, "converged", 1, 0.0, (0.0,), 0.0, history={"loss": [1.0]}))
        {'loss': [1.0]}
    """
    if run.history is None:
        raise ValueError(f"{run.optimizer} on {run.problem} recorded no history")
    return run.history


def recorded_params(runs: Sequence[RunResult]) -> np.ndarray:
    """Every recorded parameter vector of the runs that frame a figure, ``[points, dimension]``."""
    return np.concatenate([np.asarray(history(r)["params"], np.float64) for r in framing_runs(runs)])


def path_window(problem: Problem, runs: Sequence[RunResult]) -> tuple[float, float]:
    """The parameter range of a 1-D problem's path figure: its start, its minimum and the
    recorded paths, with a margin.

    Example:
        >>> from optreg.problems.analytic import QUARTIC
        >>> path_window(QUARTIC, [])
        (-1.4375, 2.3125)
    """
    values = np.concatenate([anchors(problem)[:, 0]] + ([recorded_params(runs)[:, 0]] if runs else []))
    return padded(*finite_range(values))


def landscape_window(problem: Problem, runs: Sequence[RunResult]) -> tuple[tuple[float, float], tuple[float, float]]:
    """The ``(x, y)`` ranges of a 2-D problem's contour figure: the box around its start, its
    minimum and the recorded paths, widened to a square (so a valley keeps its shape rather
    than shrinking to a stripe along the paths), with a margin.

    Example:
        >>> from optreg.problems.analytic import ROSENBROCK
        >>> [tuple(round(v, 2) for v in side) for side in landscape_window(ROSENBROCK, [])]
        [(-1.42, 1.22), (-0.32, 2.32)]
    """
    points = np.concatenate([anchors(problem)] + ([recorded_params(runs)] if runs else []))
    sides = [finite_range(points[:, k]) for k in (0, 1)]
    half = max(high - low for low, high in sides) / 2
    x_side, y_side = (padded((low + high) / 2 - half, (low + high) / 2 + half) for low, high in sides)
    return x_side, y_side


def nonpositive_floor(values: Sequence[np.ndarray]) -> float | None:
    """Where values at or below zero go on a log axis: a decade below the smallest positive
    finite value (1e-12 when there is none), or None when every finite value is positive.

    Example:
        >>> nonpositive_floor([np.array([1e-3, 0.0, 2.0])])
        0.0001
        >>> nonpositive_floor([np.array([1e-3, np.nan])]) is None
        True
    """
    finite = np.concatenate([np.ravel(v) for v in values] + [np.zeros(0)])
    finite = finite[np.isfinite(finite)]
    if not (finite <= 0).any():
        return None
    positive = finite[finite > 0]
    return float(10 ** (np.floor(np.log10(positive.min())) - 1)) if positive.size else 1e-12


def floored(values: np.ndarray, floor: float | None) -> np.ndarray:
    """Values for a log axis: positive ones unchanged, those at or below zero at ``floor``,
    non-finite ones as NaN (a gap in the line).

    Example:
        >>> floored(np.array([2.0, 0.0, np.inf]), 0.1).tolist()
        [2.0, 0.1, nan]
    """
    values = np.asarray(values, np.float64)
    shown = np.where(values > 0, values, floor if floor is not None else np.nan)
    return np.where(np.isfinite(values), shown, np.nan)


def log_limits(values: Sequence[np.ndarray]) -> tuple[float, float]:
    """A log axis's limits around the positive finite values, with a margin of 5% of their
    span in decades (at least a fifth of a decade).

    Example:
        >>> [round(v, 3) for v in log_limits([np.array([1.0, 100.0, 0.0, np.nan])])]
        [0.631, 158.489]
    """
    pooled = np.concatenate([np.ravel(v) for v in values] + [np.zeros(0)])
    positive = pooled[np.isfinite(pooled) & (pooled > 0)]
    if not positive.size:
        return 0.1, 10.0
    low, high = np.log10(positive.min()), np.log10(positive.max())
    margin = max(0.05 * (high - low), 0.2)
    return float(10 ** (low - margin)), float(10 ** (high + margin))


def last_finite(points: np.ndarray) -> np.ndarray | None:
    """The last of ``[recorded, coordinates]`` points whose coordinates are all finite, or
    None when there is none.

    Example:
        >>> last_finite(np.array([[0, 3.0], [1, 5.0], [2, np.inf]]))
        array([1., 5.])
    """
    finite = np.isfinite(points).all(axis=1)
    return points[np.flatnonzero(finite)[-1]] if finite.any() else None
