"""What a bench loop is made of and what it returns: its members, the per-run gradient options
it applies itself, and the outcome of every run (records only; the loop is :mod:`optreg.bench.loop`)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

import attrs
import numpy as np

from optreg.runtime.hyperparameter_state import HyperparameterState
from optreg.runtime.optimizer import Optimizer


@attrs.frozen
class RowOptions:
    """Gradient options the loop applies to each run's gradient on its own (the optimizer's
    hooks would treat the stacked variable as one tensor)."""

    clipnorm: float | None = None
    skip_nonfinite: bool = False


@attrs.frozen
class LoopOutcome:
    """What every run of one loop did, one row per run (NumPy arrays).

    Attributes:
        status: index into :data:`STATUSES`.
        iterations: iterations each run took.
        reached_at: the first iteration whose loss was within the tolerance (-1: never).
        stalled_at: for a stalled run, the iteration from which it stood still (-1: otherwise).
        settled_at: the iteration from which the run's loss stayed within the tolerance to its
            end, its final parameters' loss included (-1: it ended outside, or no minimum is known).
        final_params: ``[runs, dimension]``.
        final_loss: the problem's loss at the final parameters.
        history_iterations: the recorded iterations (empty without history).
        history_loss: ``[recorded, runs]`` losses before each recorded iteration's step.
        history_params: ``[recorded, runs, dimension]`` parameters at the same moments.
    """

    status: np.ndarray
    iterations: np.ndarray
    reached_at: np.ndarray
    stalled_at: np.ndarray
    settled_at: np.ndarray
    final_params: np.ndarray
    final_loss: np.ndarray
    history_iterations: np.ndarray
    history_loss: np.ndarray
    history_params: np.ndarray


@attrs.frozen
class LoopMember:
    """One optimizer's share of a loop: its runs, side by side in one variable.

    Attributes:
        optimizer: built with the runs' options; it keeps its own, plain, hyperparameters.
        runs: how many runs it makes (1 for an optimizer whose updates are not elementwise).
        row_options: per-run gradient clipping and the non-finite policy.
        hyperparameters: the hyperparameters the loop steps the optimizer with, one value per
            run (:meth:`~optreg.runtime.hyperparameter_state.HyperparameterState.stacked`); None
            to step it with its own.
    """

    optimizer: Optimizer
    runs: int = 1
    row_options: RowOptions = RowOptions()
    hyperparameters: HyperparameterState | None = None

    def stepping(self) -> AbstractContextManager[Optimizer]:
        """A context in which the optimizer builds, resets and steps with the member's hyperparameters."""
        return self.optimizer.stepping_with(self.hyperparameters)

    @property
    def one_vector(self) -> bool:
        """True when the optimizer steps the problem's own parameter vector, one run at a time."""
        return not self.optimizer.supports_stacked_runs


def row_options(options: Mapping) -> tuple[RowOptions, dict]:
    """Split optimizer options into those the loop applies per run and those the optimizer keeps.

    ``clipnorm`` and ``global_clipnorm`` coincide for one run's single parameter vector.

    Example:
        >>> row_options({"clipnorm": 2.0, "clipvalue": None})
        (RowOptions(clipnorm=2.0, skip_nonfinite=False), {'clipvalue': None})
    """
    rest = dict(options)
    clipnorm = rest.pop("clipnorm", None)
    global_clipnorm = rest.pop("global_clipnorm", None)
    skip = bool(rest.pop("skip_nonfinite", False))
    return RowOptions(clipnorm=clipnorm if clipnorm is not None else global_clipnorm, skip_nonfinite=skip), rest
