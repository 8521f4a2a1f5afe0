"""What a bench loop is made of and what it returns: its members, the non-finite policy it
applies to each run itself, and the outcome of every run (records only; the loop is
:mod:`optreg.bench.loop`)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import attrs
import numpy as np

from optreg.runtime.hyperparameter_state import HyperparameterState
from optreg.runtime.optimizer import Optimizer


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
        loop_iterations: the iterations the loop ran (the most any run took).
        compile_seconds: the wall time of tracing and compiling the loop before this call
            (0 when it was compiled before; see :mod:`optreg.bench.loop_timing`).
        run_seconds: the wall time of the compiled calls that ran the iterations.
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
    loop_iterations: int = 0
    compile_seconds: float = 0.0
    run_seconds: float = 0.0


@attrs.frozen
class LoopMember:
    """One optimizer's share of a loop: its runs, side by side in one variable.

    Attributes:
        optimizer: built with the runs' options; it keeps its own, plain, hyperparameters.
        runs: how many runs it makes (1 for an optimizer whose updates are not elementwise).
        skip_nonfinite: the run's ``skip_nonfinite`` option, which the loop applies itself: a
            run whose gradient holds any non-finite value explodes (without it, a NaN). The
            optimizer keeps its other options; its clipping, stepped with stacked
            hyperparameters, clips each run on its own (:mod:`optreg.runtime.clipping`).
        hyperparameters: the hyperparameters the loop steps the optimizer with, one value per
            run (:meth:`~optreg.runtime.hyperparameter_state.HyperparameterState.stacked`); None
            to step it with its own.
    """

    optimizer: Optimizer
    runs: int = 1
    skip_nonfinite: bool = False
    hyperparameters: HyperparameterState | None = None

    def stepping(self) -> AbstractContextManager[Optimizer]:
        """A context in which the optimizer builds, resets and steps with the member's hyperparameters."""
        return self.optimizer.stepping_with(self.hyperparameters)

    @property
    def one_vector(self) -> bool:
        """True when the optimizer steps the problem's own parameter vector, one run at a time."""
        return not self.optimizer.supports_stacked_runs


def loop_options(options: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Split optimizer options into the non-finite policy the loop applies per run and the
    options the optimizer keeps.

    Example:
        >>> loop_options({"skip_nonfinite": True, "global_clipnorm": 2.0})
        (True, {'global_clipnorm': 2.0})
    """
    rest = dict(options)
    return bool(rest.pop("skip_nonfinite", False)), rest
