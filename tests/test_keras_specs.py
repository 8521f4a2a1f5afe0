"""Where a spec of tests/table_keras_specs.py departs from Keras on purpose, the departure is
pinned down here: what Keras computes instead, so the test fails if Keras changes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from conftest import random_problem
from optimizer_table import CASES

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
