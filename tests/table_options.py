"""AdamW: Adam's rule with the spec's ``[options] weight_decay = 0.004`` (Keras AdamW's default)."""

from __future__ import annotations

from tests.optimizer_table import Case, keras_factory
from tests.table_core import numpy_adam


def numpy_adamw(x, grads, hp):
    """AdamW with the spec's default decay, 0.004 (see ``numpy_adam``)."""
    return numpy_adam(x, grads, {"weight_decay": 0.004, **hp})


# As for Adam, betas that float32 holds exactly make Keras agree with the exact algorithm.
CASES = (
    Case(
        "adamw",
        settings=(
            {"learning_rate": 0.1, "beta_1": 0.875, "beta_2": 1 - 2**-10},
            {"learning_rate": 0.5, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 2**-10},
            {"learning_rate": 0.1},
        ),
        keras=keras_factory("AdamW"),
        keras_settings=(
            {"learning_rate": 0.1, "beta_1": 0.875, "beta_2": 1 - 2**-10},
            {"learning_rate": 0.5, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 2**-10},
        ),
        numpy=numpy_adamw,
        quadratic=(0.1, 500),
        # decay pulls the fixed point towards zero by about wd·x per unit of step size, so at
        # lr 0.1 it stops short of Rosenbrock's tolerance; lr 0.01 lands within it
        rosenbrock=(0.01, 5000),
    ),
)
