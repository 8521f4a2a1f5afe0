"""AdamW: Adam's rule with the spec's ``[options] weight_decay = 0.004`` (Keras AdamW's default)."""

from __future__ import annotations

import numpy as np

from optimizer_table import Case, keras_factory


def numpy_adamw(x, grads, hp):
    """Loshchilov & Hutter, Algorithm 2 as Keras orders it: decay by wd·lr, then Adam's step."""
    b1, b2, eps = hp.get("beta_1", 0.9), hp.get("beta_2", 0.999), hp.get("epsilon", 1e-7)
    lr, wd = hp["learning_rate"], 0.004
    m, v, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        x = x - x * wd * lr
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        out.append(x)
    return out


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
