"""Optimizers that draw random numbers or need whole-model reductions or the loss (issue 17):
noisy_sgd (a spec drawing noise), and the Python built-ins adahessian and adai.

noisy_sgd's reference draws its noise independently of optreg's code: it derives the key from
the formula of docs/spec-language.md (seed, step · 2³² + index · 2⁸ + call), asks TensorFlow's
stateless Philox generator for that key's raw 32-bit words only (the one thing shared with the
optimizer), and turns them into normal numbers with NumPy's Box–Muller. A wrong key, a wrong
transform, a wrong variance or noise added in the wrong place each move the trajectory.
"""

from __future__ import annotations

import numpy as np

from tests.noise_reference import reference_normal
from tests.optimizer_table import Case


def numpy_noisy_sgd(x, grads, hp):
    """Neelakantan et al. 2015, Section 2 (optax.noisy_sgd): gₜ + N(0, η/(1 + t)^γ), t from 0, then
    SGD. The battery steps each shape with an optimizer of its own (see battery.couples_variables),
    so the variable's index is 0."""
    out = []
    for t, g in enumerate(grads):
        noise = np.sqrt(hp["eta"] / (1 + t) ** hp["gamma"]) * reference_normal(int(hp["seed"]), t + 1, 0, 0, np.shape(x))
        x = x - hp["learning_rate"] * (g + noise)
        out.append(x)
    return out


CASES = (
    Case(
        "noisy_sgd",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.05, "eta": 0.3, "gamma": 0.9, "seed": 12345},
        ),
        numpy=numpy_noisy_sgd,
        # the noise is kept below the problems' tolerance: its standard deviation is √eta
        descent_settings={"eta": 1e-10},
        quadratic=(0.01, 2000),
        rosenbrock=(0.001, 10000),
    ),
)
