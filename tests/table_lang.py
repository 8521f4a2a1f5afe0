"""Optimizers that need fixed hyperparameters, conditional slots, reductions, shape facts and
per-variable scalar or factored slots: the Keras catalogue written as specs."""

from __future__ import annotations

import numpy as np

from tests.optimizer_table import EXACT_BETAS, Case, decaying, keras_factory


def numpy_amsgrad(x, grads, hp):
    """Reddi et al. 2018 as Keras applies it: Adam whose denominator uses the running maximum of v."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    m, v, vhat, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vhat = np.maximum(vhat, v) if hp["amsgrad"] else v
        x = x - hp["learning_rate"] * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(vhat) + eps)
        out.append(x)
    return out


def numpy_rmsprop(x, grads, hp):
    """Tieleman & Hinton's RMSprop with Graves's centering and heavy-ball momentum on the step."""
    rho, eps, mu = hp["rho"], hp["epsilon"], hp["momentum"]
    ms, mg, step, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for g in grads:
        ms = rho * ms + (1 - rho) * g * g
        mg = rho * mg + (1 - rho) * g
        denominator = ms - mg * mg + eps if hp["centered"] else ms + eps
        step = mu * step + hp["learning_rate"] * g / np.sqrt(denominator)
        x = x - step
        out.append(x)
    return out


def numpy_novograd(x, grads, hp):
    """Ginsburg et al. 2019, Algorithm 1: v₁ = ‖g₁‖², vₜ = β₂vₜ₋₁ + (1−β₂)‖gₜ‖²;
    mₜ = β₁mₜ₋₁ + gₜ/(√vₜ + ε) + d·wₜ (m₀ = 0); wₜ₊₁ = wₜ − λ·mₜ."""
    b1, b2, eps, d, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["l2"], hp["learning_rate"]
    m, v, out = np.zeros_like(x), None, []
    for g in grads:
        norm_squared = np.sum(g * g)
        v = norm_squared if v is None else b2 * v + (1 - b2) * norm_squared
        m = b1 * m + g / (np.sqrt(v) + eps) + d * x
        x = x - lr * m
        out.append(x)
    return out


def numpy_lars(x, grads, hp):
    """You et al. 2017, Algorithm 1: a per-variable rate from the trust ratio, then momentum."""
    eta, l2, mu, lr = hp["trust_coefficient"], hp["l2"], hp["momentum"], hp["learning_rate"]
    velocity, out = np.zeros_like(x), []
    for g in grads:
        w_norm, g_norm = np.linalg.norm(x), np.linalg.norm(g)
        ratio = eta * w_norm / (g_norm + l2 * w_norm) if w_norm > 0 and g_norm > 0 else 1.0
        velocity = mu * velocity + lr * ratio * (g + l2 * x)
        x = x - velocity
        out.append(x)
    return out


CASES = (
    Case(
        "adam",
        settings=tuple({**setting, "amsgrad": True} for setting in EXACT_BETAS),
        keras=keras_factory("Adam"),
        numpy=numpy_amsgrad,
        quadratic=(0.1, 500),
        rosenbrock=(0.1, 2000),
    ),
    Case(
        "rmsprop",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.01, "rho": 0.75, "momentum": 0.5},
            {"learning_rate": 0.01, "rho": 0.875, "centered": True},
            {"learning_rate": 0.001, "rho": 0.5, "momentum": 0.875, "centered": True, "epsilon": 2**-10},
        ),
        keras=keras_factory("RMSprop"),
        numpy=numpy_rmsprop,
        # near a minimum every RMSprop step has length about the learning rate, so the loss
        # settles at a floor that shrinks with the square of the rate: a decaying rate solves both
        quadratic=(decaying(0.01, 0.999), 5000),
        rosenbrock=(decaying(0.01, 0.9995), 10000),
    ),
)


CASES += (
    Case(
        "lars",
        settings=(
            {"learning_rate": 1.0},
            {"learning_rate": 5.0, "momentum": 0.5, "trust_coefficient": 0.01, "l2": 0.1},
        ),
        numpy=numpy_lars,
        quadratic=(10.0, 2000),
        # the trust ratio shrinks steps with the weights' norm where the valley passes the origin
        rosenbrock=(decaying(10.0, 0.9995), 20000),
        xla_tolerance=1e-5,  # its norms are sums XLA adds in another order
    ),
    Case(
        "novograd",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 1e-6, "l2": 0.01},
        ),
        numpy=numpy_novograd,
        # steps are normalised by the gradient's norm, so their size does not shrink near the
        # minimum by itself: a decaying rate settles them
        quadratic=(decaying(0.05, 0.9995), 10000),
        rosenbrock=(decaying(0.05, 0.9995), 10000),
        xla_tolerance=1e-5,  # its norm is a sum XLA adds in another order
    ),
    Case("nadam", settings=EXACT_BETAS, keras=keras_factory("Nadam"), quadratic=(0.1, 500), rosenbrock=(0.03, 2000)),
    Case(
        "lamb",
        settings=EXACT_BETAS,
        keras=keras_factory("Lamb"),
        quadratic=(0.01, 2000),
        # the trust ratio scales each step by the weights' norm, so steps shrink where Rosenbrock's
        # valley passes the origin; a slowly decaying rate carries it through and then settles
        rosenbrock=(decaying(0.003, 0.9999), 40000),
        # its two norms are sums that XLA adds in another order, and the trust ratio scales
        # the difference by the weight norm: the paths agree to 1e-5 over 50 steps
        xla_tolerance=1e-5,
        # each step is scaled by the weights' norm, which the first step changes: two steps are
        # no power law of the rate (the test still checks the exact result of a fresh optimizer)
        learning_rate_power=None,
    ),
    Case(
        "adafactor",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.01, "relative_step": False, "clip_threshold": 0.5, "beta_2_decay": -0.5},
        ),
        keras=keras_factory("Adafactor"),
        quadratic=(0.1, 2000),
        rosenbrock=(decaying(0.1, 0.9995), 10000),
        # steps are relative to the weights' root mean square, which the first step changes
        learning_rate_power=None,
    ),
)
