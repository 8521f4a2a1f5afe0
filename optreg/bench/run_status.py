"""A run's status in the bench loop, and its judgments against the problem's tolerance: the
status codes the loop's state holds, when a gradient counts as near zero, and, per run, whether
a loss is within tolerance, the first iteration it reached it and the last it was outside, and
whether the run ended within it (how :mod:`optreg.bench.loop` uses them is described there).
A problem with a target instead of a known minimum (a workload's held-out accuracy,
:attr:`~optreg.problems.Problem.target`) is judged the same way by its target: "within" then
means that the run's parameters meet it."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from optreg.problems import Problem

__all__ = [
    "CONVERGED",
    "EXCEEDED",
    "EXPLODED",
    "GRADIENT_DROP",
    "REACHED",
    "RUNNING",
    "STALLED",
    "STATUSES",
    "check_tolerance",
    "ended_within",
    "meets_target",
    "within",
]

#: The statuses a run of the loop ends with, by their code in the loop's state.
STATUSES = ("converged", "exceeded", "exploded", "reached", "stalled")
CONVERGED, EXCEEDED, EXPLODED, REACHED, STALLED = range(5)
#: The code of a run that has not stopped yet.
RUNNING = -1
#: A gradient is near zero when its largest entry is at most this fraction of the largest entry
#: of the run's first gradient (or at most this, when the first was below 1): only then does a
#: step that leaves the parameters unchanged mean convergence.
GRADIENT_DROP = 1e-3


def check_tolerance(
    problem: Problem,
    stop_at_tolerance: bool,
    i: tf.Tensor,
    params: tf.Tensor,
    losses: tf.Tensor,
    status: tf.Tensor,
    reached_at: tf.Tensor,
    left_at: tf.Tensor,
    was_running: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Note the first iteration each run is within tolerance (or meets the target) and the
    last it is outside; stop it at the first if asked.

    Args:
        problem: the problem (with neither a known minimum nor a target nothing is noted).
        stop_at_tolerance: stop each run at the first iteration it is within tolerance.
        i: the iteration.
        params: ``[runs, dimension]``, each run's parameters before this iteration's step.
        losses: each run's loss there.
        status, reached_at, left_at: the loop's per-run state.
        was_running: which runs were running at the start of the iteration.

    Returns:
        The new status, ``reached_at``, ``left_at`` and which runs count this iteration.
    """
    if not problem.judges_runs:
        return status, reached_at, left_at, was_running
    inside = meets_target(problem, params, losses)
    reached_at = tf.where((reached_at < 0) & inside & was_running, i, reached_at)
    left_at = tf.where(~inside & was_running, i, left_at)
    if not stop_at_tolerance:
        return status, reached_at, left_at, was_running
    stops = tf.equal(status, RUNNING) & inside
    return tf.where(stops, REACHED, status), reached_at, left_at, was_running & ~stops


def ended_within(
    problem: Problem,
    status: np.ndarray,
    iterations: np.ndarray,
    left_at: np.ndarray,
    final_loss: tf.Tensor,
    final_params: tf.Tensor | None = None,
) -> np.ndarray:
    """Per run: whether its final parameters are within tolerance (meet the target). A run
    that stopped where the loop last checked it (converged, reached) is judged by that check,
    so the answer never hangs on the loss computed again outside the compiled loop; a run whose
    last step was never checked (exceeded, stalled) by its final loss (its final parameters,
    ``[runs, dimension]``, for a target); an exploded run never is.

    Example:
        >>> from optreg.problems.analytic import BOOTH
        >>> ended_within(BOOTH, np.array([EXPLODED, EXCEEDED]), np.array([5, 9]), np.array([-1, 3]),
        ...              tf.constant([0.0, 0.0])).tolist()
        [False, True]
    """
    if not problem.judges_runs:
        return np.zeros(status.shape, bool)
    last_check = np.where(status == REACHED, iterations, iterations - 1)
    checked = (status == CONVERGED) | (status == REACHED)
    inside = np.where(checked, left_at < last_check, meets_target(problem, final_params, final_loss).numpy())
    return np.asarray(inside & (status != EXPLODED))


def meets_target(problem: Problem, params: tf.Tensor | None, losses: tf.Tensor) -> tf.Tensor:
    """Per run: whether its parameters meet the problem's target, for a problem with one;
    else whether its loss is within the tolerance (:func:`within`).

    Example:
        >>> from optreg.problems.analytic import BOOTH
        >>> meets_target(BOOTH, None, tf.constant([0.0, 5.0])).numpy().tolist()
        [True, False]
    """
    if problem.target is None:
        return within(problem, losses)
    if problem.target_figure is None or params is None:
        raise ValueError(f"{problem.name} has a target but no target_figure (or no parameters) to check it by")
    return problem.target.met(problem.target_figure(params))


def within(problem: Problem, losses: tf.Tensor) -> tf.Tensor:
    """Per run: whether a loss is within the problem's tolerance of its known minimum
    (False everywhere when none is known), in the loss's own precision.

    Example:
        >>> from optreg.problems.analytic import BOOTH
        >>> within(BOOTH, tf.constant([0.0, 5.0])).numpy().tolist()
        [True, False]
    """
    if problem.minimum_loss is None:
        return tf.zeros(tf.shape(losses), tf.bool)
    return losses - problem.minimum_loss <= problem.tolerance
