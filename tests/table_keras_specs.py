"""Optimizers with a Keras counterpart (Adagrad, Adadelta, Adamax, FTRL, Lion, Schedule-Free
AdamW), each checked step for step against Keras's own class, and the Adam variants Keras lacks
(AdaBelief, RAdam, Yogi, AMSGrad), each checked against a NumPy version of its paper's pseudo-code."""

from __future__ import annotations

import numpy as np

from tests.optimizer_table import Case, keras_factory


def numpy_schedule_free_adamw(x, grads, hp):
    """Defazio et al. 2024, Schedule-Free AdamW with uniform averaging, keeping the average x
    and the base sequence z explicitly: z ← z − γₜ·g/(√(v/(1−β₂ᵗ)) + ε), x ← (1 − 1/t)·x + z/t,
    y = (1 − β₁)·z + β₁·x, with γₜ = lr·min(t / warmup, 1)."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    z, average, v, out = x.copy(), x.copy(), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        rate = hp["learning_rate"] * min(t / max(hp["warmup_steps"], 1), 1.0)
        v = b2 * v + (1 - b2) * g * g
        z = z - rate * g / (np.sqrt(v / (1 - b2**t)) + eps)
        average = (1 - 1 / t) * average + z / t
        out.append((1 - b1) * z + b1 * average)
    return out


def numpy_adabelief(x, grads, hp):
    """Zhuang et al. 2020, Algorithm 2: s tracks (g − m)² (plus ε); both moments bias-corrected."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    m, s, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps
        m_hat, s_hat = m / (1 - b1**t), s / (1 - b2**t)
        x = x - hp["learning_rate"] * m_hat / (np.sqrt(s_hat) + eps)
        out.append(x)
    return out


def numpy_radam(x, grads, hp):
    """Liu et al. 2020, Algorithm 2: with ρ∞ = 2/(1−β₂) − 1 and ρₜ = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ), the
    rectified adaptive step rₜ·m̂/(√v̂ + ε) once ρₜ reaches the threshold, else the momentum m̂."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    rho_inf = 2 / (1 - b2) - 1
    m, v, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho >= hp["threshold"]:
            r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            step = r * m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
        else:
            step = m_hat
        x = x - hp["learning_rate"] * step
        out.append(x)
    return out


def numpy_yogi(x, grads, hp):
    """Zaheer et al. 2018, Algorithm 2: v ← v − (1−β₂)·sign(v − g²)·g², from v₀ = the initial
    accumulator value; x ← x − η·m/(√v + ε), no bias correction."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    m, v, out = np.zeros_like(x), np.full_like(x, hp["initial_accumulator_value"]), []
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g * g) * g * g
        x = x - hp["learning_rate"] * m / (np.sqrt(v) + eps)
        out.append(x)
    return out


def numpy_amsgrad(x, grads, hp):
    """Reddi et al. 2018, Algorithm 2 with constant α and β₁: v̂ ← max(v̂, v);
    x ← x − α·m/(√v̂ + ε), no bias correction."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    m, v, v_hat, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_hat = np.maximum(v_hat, v)
        x = x - hp["learning_rate"] * m / (np.sqrt(v_hat) + eps)
        out.append(x)
    return out


CASES = (
    Case(
        "adagrad",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.01, "initial_accumulator_value": 0.0, "epsilon": 2**-10},
            {"learning_rate": 0.5, "initial_accumulator_value": 2.0},
        ),
        keras=keras_factory("Adagrad"),
        half_precision_learning_rate=0.5,
        quadratic=(0.5, 500),
        rosenbrock=(1.0, 10000),
    ),
    Case(
        "adadelta",
        settings=(
            {"learning_rate": 1.0},
            {"learning_rate": 0.1, "rho": 0.5, "epsilon": 1e-6},
        ),
        keras=keras_factory("Adadelta"),
        # Adadelta's first steps are about sqrt(epsilon) * learning_rate
        half_precision_learning_rate=30.0,
        quadratic=(1.0, 2000),
        # Adadelta (Keras's too, in float32) reaches Rosenbrock's minimum near step 27500 at
        # lr 0.02, then drifts slowly away from it (loss 3e-5 at 30000, 1e-4 near 40000).
        rosenbrock=(0.02, 30000),
    ),
    Case(
        "adamax",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 2**-10},
        ),
        keras=keras_factory("Adamax"),
        quadratic=(0.1, 500),
        rosenbrock=(0.5, 3000),
    ),
    Case(
        "ftrl",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.5, "learning_rate_power": -0.25, "initial_accumulator_value": 0.5},
            {"learning_rate": 0.1, "l1_regularization_strength": 0.05, "l2_regularization_strength": 0.1},
            {"learning_rate": 0.1, "l2_shrinkage_regularization_strength": 0.2, "beta": 0.5},
            {"learning_rate": 0.2, "learning_rate_power": 0.0, "initial_accumulator_value": 0.0},
        ),
        keras=keras_factory("Ftrl"),
        learning_rate_power=None,
        half_precision_learning_rate=0.5,
        quadratic=(0.5, 500),
        rosenbrock=(1.0, 10000),
    ),
    Case(
        "lion",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.001, "beta_1": 0.5, "beta_2": 0.75},
        ),
        keras=keras_factory("Lion"),
        quadratic=(0.01, 500),
        rosenbrock=(0.0003, 15000),
    ),
    Case(
        "schedule_free_adamw",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.05, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 1e-6},
            {"learning_rate": 0.05, "warmup_steps": 10},
        ),
        # Keras's TensorFlow backend reads z after updating it where it recovers x (see
        # tests/test_keras_specs.py), which changes every step unless beta_1 = 1; with
        # beta_1 = 1 (y = x) the rest of the step (v, z, the averaging, the warmup) is
        # compared with Keras, and the paper's algorithm with the NumPy reference.
        keras=keras_factory("ScheduleFreeAdamW"),
        keras_settings=(
            {"learning_rate": 0.01, "beta_1": 1.0},
            {"learning_rate": 0.05, "beta_1": 1.0, "beta_2": 0.75, "epsilon": 1e-6, "warmup_steps": 10},
        ),
        numpy=numpy_schedule_free_adamw,
        quadratic=(0.05, 2000),
        rosenbrock=(0.003, 20000),
    ),
    Case(
        "adabelief",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 1e-8},
        ),
        numpy=numpy_adabelief,
        quadratic=(0.1, 500),
        rosenbrock=(0.1, 2000),
    ),
    Case(
        "radam",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9, "threshold": 4.0},
            # rho never reaches the threshold within 50 steps: momentum only
            {"learning_rate": 0.01, "beta_2": 0.999, "threshold": 60.0},
        ),
        numpy=numpy_radam,
        half_precision_learning_rate=0.3,
        quadratic=(0.01, 2000),
        rosenbrock=(0.005, 12000),
    ),
    Case(
        "yogi",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 1e-6, "initial_accumulator_value": 0.5},
        ),
        numpy=numpy_yogi,
        quadratic=(0.1, 500),
        rosenbrock=(0.1, 2000),
    ),
    Case(
        "amsgrad",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 1e-3},
        ),
        numpy=numpy_amsgrad,
        quadratic=(0.1, 500),
        rosenbrock=(0.1, 2000),
    ),
)
