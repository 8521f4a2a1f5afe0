"""Where a spec of tests/table_keras_specs.py departs from Keras on purpose, the departure is
pinned down here: what Keras computes instead, so the test fails if Keras changes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from tests.helpers import random_problem
from tests.optimizer_table import CASES

STEPS = 50
SCHEDULE_FREE = next(case for case in CASES if case.name == "schedule_free_adamw")


def numpy_schedule_free_as_keras_tf(x, grads, hp):
    """Keras's ScheduleFreeAdamW on the TensorFlow backend: ``momentum_old = momentum.value``
    is the live variable, so x is recovered from y with the *updated* z:
    x ← (y − (1 − β₁)·z_new)/β₁ instead of the paper's (y − (1 − β₁)·z_old)/β₁."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    y, z, v, out = x.copy(), x.copy(), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        v = b2 * v + (1 - b2) * g * g
        z = z - hp["learning_rate"] * g / (np.sqrt(v / (1 - b2**t)) + eps)
        recovered = (y - (1 - b1) * z) / b1
        y = (1 - b1) * z + b1 * ((1 - 1 / t) * recovered + z / t)
        out.append(y)
    return out


def _trajectory(opt, start, grads):
    var = tf.Variable(start)
    trajectory = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
        trajectory.append(var.numpy().copy())
    return np.array(trajectory)


@pytest.mark.parametrize("shape", [(7,), (3, 4)], ids=str)
def test_keras_schedule_free_recovers_x_with_the_updated_z(shape, rng):
    """Keras (float32) follows the variant that uses the updated z, not the paper; optreg follows
    the paper, and the two differ well beyond rounding when beta_1 < 1."""
    import keras

    setting = {"learning_rate": 0.01}
    hp = {**optreg.registry.get("schedule_free_adamw").defaults(), **setting}
    start, grads = random_problem(rng, shape, STEPS)
    theirs = _trajectory(keras.optimizers.ScheduleFreeAdamW(**setting), start, grads)
    ours = _trajectory(optreg.registry.create("schedule_free_adamw", **setting), start, grads)
    exact = [g.astype(np.float64) for g in grads]
    keras_variant = np.array(numpy_schedule_free_as_keras_tf(start.astype(np.float64), exact, hp))
    paper = np.array(SCHEDULE_FREE.numpy(start.astype(np.float64), exact, hp))
    np.testing.assert_allclose(theirs, keras_variant, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours, paper, rtol=1e-5, atol=1e-5)
    assert np.max(np.abs(theirs - ours)) > 1e-3


def numpy_adafactor_first_step(x, g, hp):
    """Shazeer & Stern 2018, Algorithm 4's first step on a matrix in float64 (β̂₂ = 0 at t = 1):
    R, C the row and column means of g² + ε₁, V = R·C / mean(R), U = g / √V clipped to RMS d,
    x − max(ε₂, RMS(x))·min(lr, 1)·U."""
    regulated = g * g + hp["epsilon_1"]
    r, c = regulated.mean(axis=-1, keepdims=True), regulated.mean(axis=-2, keepdims=True)
    u = g / np.sqrt(r * c / r.mean())
    u = u / max(1.0, np.sqrt(np.mean(u * u)) / hp["clip_threshold"])
    return x - max(hp["epsilon_2"], np.sqrt(np.mean(x * x))) * min(hp["learning_rate"], 1.0) * u


@pytest.mark.parametrize("jit_compile", [False, True], ids=["op-by-op", "xla"])
def test_adafactor_stays_finite_where_a_zero_row_of_the_gradient_crosses_a_zero_column(jit_compile, rng):
    """There r and c hold ε₁ = 1e-30, and Keras's V = R·C / mean(R) underflows float32 to 0, so
    its 0 / √0 turns the whole matrix NaN (a ReLU layer fed non-negative inputs has such rows and
    columns). The spec multiplies by rsqrt of each factor, as the paper's reference code does."""
    import keras

    start = rng.normal(size=(4, 5)).astype(np.float32)
    grad = rng.normal(size=(4, 5)).astype(np.float32)
    grad[0, :] = grad[:, 0] = 0.0
    ours = tf.Variable(start)
    optreg.registry.create("adafactor", jit_compile=jit_compile).apply_gradients([(tf.constant(grad), ours)])
    hp = optreg.registry.get("adafactor").defaults()
    expected = numpy_adafactor_first_step(start.astype(np.float64), grad.astype(np.float64), hp)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-6, atol=1e-7)
    theirs = tf.Variable(start)
    keras.optimizers.Adafactor().apply_gradients([(tf.constant(grad), theirs)])
    assert np.all(np.isnan(theirs.numpy()))
