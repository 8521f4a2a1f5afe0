"""The core optimizers of the battery: gradient descent, the tutorial's momentum, SGD and Adam."""

from __future__ import annotations

import numpy as np

from tests.optimizer_table import EXACT_BETAS, Case, keras_factory


def numpy_gradient_descent(x, grads, hp):
    """x ← x − lr·g."""
    out = []
    for g in grads:
        x = x - hp["learning_rate"] * g
        out.append(x)
    return out


def numpy_momentum(x, grads, hp):
    """The tutorial's momentum: Δ ← lr·g + p·Δ, x ← x − Δ."""
    delta, out = np.zeros_like(x), []
    for g in grads:
        delta = hp["learning_rate"] * g + hp["momentum"] * delta
        x = x - delta
        out.append(x)
    return out


def numpy_adam(x, grads, hp):
    """Kingma & Ba, Algorithm 1, with the bias corrections folded into the step size; with a
    ``weight_decay``, Loshchilov & Hutter's AdamW (Algorithm 2) as Keras orders it: decay by
    weight_decay·lr first, then Adam's step."""
    b1, b2, eps = hp.get("beta_1", 0.9), hp.get("beta_2", 0.999), hp.get("epsilon", 1e-7)
    decay = hp.get("weight_decay") or 0.0
    m, v, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        x = x - x * decay * hp["learning_rate"]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - hp["learning_rate"] * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        out.append(x)
    return out


def numpy_sgd(x, grads, hp):
    """Keras's SGD: velocity ← μ·velocity − lr·g; x ← x + velocity (Nesterov: x + μ·velocity − lr·g)."""
    mu, lr = hp.get("momentum", 0.0), hp["learning_rate"]
    velocity, out = np.zeros_like(x), []
    for g in grads:
        velocity = mu * velocity - lr * g
        x = x + (mu * velocity - lr * g if hp.get("nesterov") else velocity)
        out.append(x)
    return out


# EXACT_BETAS are compared with Keras; the defaults (0.9, 0.999), which Keras rounds to float32,
# only with the exact NumPy algorithm.
CASES = (
    Case(
        "adam",
        settings=(*EXACT_BETAS, {"learning_rate": 0.1}),
        keras=keras_factory("Adam"),
        keras_settings=EXACT_BETAS,
        numpy=numpy_adam,
        quadratic=(0.1, 500),
        rosenbrock=(0.1, 2000),
    ),
    Case(
        "sgd",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.05, "momentum": 0.9},
            {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        ),
        keras=keras_factory("SGD"),
        numpy=numpy_sgd,
        quadratic=(0.01, 2000),
        rosenbrock=(0.001, 10000),
    ),
    Case(
        "gradient_descent",
        settings=({"learning_rate": 0.1}, {"learning_rate": 0.003}),
        numpy=numpy_gradient_descent,
        quadratic=(0.01, 2000),
        rosenbrock=(0.001, 10000),
    ),
    Case(
        "momentum",
        settings=({"learning_rate": 0.01}, {"learning_rate": 0.05, "momentum": 0.9}),
        numpy=numpy_momentum,
        quadratic=(0.01, 500),
        rosenbrock=(0.003, 2000),
    ),
)

