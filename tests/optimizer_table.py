"""The one table of built-in optimizers that drives the shared test battery.

Each row names a registered optimizer, the hyperparameter settings to test it with, and its
reference: a Keras optimizer built with the same settings, or an independent NumPy version
of the algorithm written from the paper or the seed documents (for an optimizer that needs the
loss, a NumPy version stepped on a quadratic loss, whose Hessian-vector products are exact). Every registered optimizer
must have a row (``test_every_registered_optimizer_has_a_reference``), so a new spec gets
every check of the battery.

The rows live in the ``table_*.py`` modules next to this one, one module per family of
optimizers, each exporting ``CASES``; this module gathers them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class Case:
    """One optimizer of the battery."""

    name: str
    settings: tuple[dict, ...]
    #: (learning rate, steps) that take it from the start of the registered ``quadratic``
    #: problem to within its tolerance of the minimum; the rate may be a Keras schedule.
    quadratic: tuple[Any, int]
    #: (learning rate, steps) that do the same on ``rosenbrock``.
    rosenbrock: tuple[Any, int]
    #: Other hyperparameters both descents are run with, where the defaults are tuned for networks
    #: and cannot settle into the problems' minima (AdaBound's final SGD rate, 0.1, is unstable in
    #: Rosenbrock's valley, whose curvature near the minimum is about 1000).
    descent_settings: dict = attrs.field(factory=dict)
    keras: Callable[[dict], object] | None = None
    #: The settings compared with Keras, where they differ from ``settings``.
    keras_settings: tuple[dict, ...] | None = None
    #: ``numpy(start, grads, hyperparameters)`` → the variable after each step.
    numpy: Callable | None = None
    #: For an optimizer that needs the loss (``needs_loss``: the gradient-only references cannot
    #: drive it), ``loss_numpy(starts, A, b, steps, hyperparameters)`` → after each step, every
    #: variable, stepped with ``minimize`` on ½xᵀAx + bᵀx of all of them flattened together.
    loss_numpy: Callable | None = None

    #: Relative (and absolute) tolerance of the step-for-step comparison with Keras in float32.
    keras_rtol: float = 1e-6
    #: How a step scales with the learning rate: step ∝ learning_rate ** this (MADGRAD's
    #: dual averaging divides a sum ∝ lr by a cube root ∝ lr^⅓, so its steps go as lr^⅔).
    #: None where the step is no power law of the rate (FTRL: the initial accumulator pulls the
    #: first step toward 0 by an amount independent of the rate).
    learning_rate_power: float | None = 1.0
    #: The learning rate with which 300 steps in bfloat16 / float16 reach the half-precision
    #: test's target from zero (optimizers whose first steps are small need a larger one).
    half_precision_learning_rate: float = 0.05
    #: Other hyperparameters of that test, where the defaults cannot leave its all-zero start in
    #: float16 (Fromage's steps are relative to the variable's norm, taken as at least min_norm).
    half_precision_settings: dict = attrs.field(factory=dict)
    #: Tolerance of the XLA-fused step against the op-by-op one over 50 steps; looser only for
    #: rules with reductions over the variable, whose sums XLA adds in another order.
    xla_tolerance: float = 1e-6

    def __str__(self) -> str:
        return self.name


#: Keras turns Python floats into float32 before its bias corrections, so Adam-family betas that
#: float32 holds exactly (7/8, 1 − 2⁻¹⁰) make Keras and the exact algorithm agree step for step.
EXACT_BETAS = (
    {"learning_rate": 0.1, "beta_1": 0.875, "beta_2": 1 - 2**-10},
    {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 2**-10},
)


def keras_factory(class_name: str) -> Callable[[dict], object]:
    """A row's ``keras`` reference: settings dict → ``keras.optimizers.<class_name>``."""

    def build(hp):
        import keras

        return getattr(keras.optimizers, class_name)(**hp)

    build.__name__ = f"keras_{class_name}"
    return build


def decaying(initial: float, rate: float):
    """A learning rate that shrinks by ``rate`` every step: a Keras schedule, which every optreg
    hyperparameter accepts (for optimizers whose steps do not shrink near a minimum by
    themselves, as the papers' convergence results assume a decaying step)."""
    import keras

    return keras.optimizers.schedules.ExponentialDecay(initial, decay_steps=1, decay_rate=rate)


def _gather() -> tuple[Case, ...]:
    """Every ``CASES`` of the ``table_*.py`` modules, in file-name order."""
    cases: list[Case] = []
    for path in sorted(Path(__file__).parent.glob("table_*.py")):
        cases.extend(importlib.import_module(f"tests.{path.stem}").CASES)
    return tuple(cases)


CASES = _gather()
KERAS_CASES = [
    (case, setting) for case in CASES if case.keras for setting in (case.keras_settings or case.settings)
]
NUMPY_CASES = [(case, setting) for case in CASES if case.numpy for setting in case.settings]
LOSS_NUMPY_CASES = [case for case in CASES if case.loss_numpy]
