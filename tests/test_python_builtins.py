"""What the battery's rows do not reach in the Python built-ins adai and adahessian: Adai's
whole-model mean across several variables, and AdaHessian's resume and tracing through minimize."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import optreg
from tests.optimizer_table import CASES  # noqa: F401  (the table first: it imports every table_*.py)
from tests.table_python import numpy_adai


def test_adai_takes_the_mean_of_v_hat_over_every_variable():
    """Two variables of very different gradient scales: each one's inertia depends on the other's
    second moment, so the pair stepped together follows the NumPy reference over both, and not
    the trajectories each would follow alone."""
    rng = np.random.default_rng(5)
    starts = [rng.normal(size=(3,)), rng.normal(size=(2, 2))]
    grads = [[rng.normal(size=(3,)), 10 * rng.normal(size=(2, 2))] for _ in range(8)]
    hp = {**optreg.registry.get("adai").defaults(), "learning_rate": 0.05, "beta_0": 0.5}
    opt = optreg.registry.create("adai", **hp)
    variables = [tf.Variable(start) for start in starts]
    reference = numpy_adai([s.copy() for s in starts], grads, hp)
    for step_grads, expected in zip(grads, reference):
        opt.apply_gradients(zip([tf.constant(g) for g in step_grads], variables))
        for var, want in zip(variables, expected):
            np.testing.assert_allclose(var.numpy(), want, rtol=1e-12, atol=1e-14)
    alone = numpy_adai(starts[0].copy(), [g[0] for g in grads], hp)[-1]
    assert not np.allclose(alone, variables[0].numpy(), rtol=1e-3)


def _quadratic(variables):
    x = tf.concat([tf.reshape(v, [-1]) for v in variables], 0)
    return tf.reduce_sum(x**2) + x[0] * x[-1] + tf.reduce_sum(x[1:] * x[:-1])


def test_adahessian_resumed_from_a_checkpoint_draws_the_same_probes(tmp_path):
    starts = [np.array([1.0, -2.0, 0.5]), np.arange(8.0).reshape(2, 1, 2, 2) / 8]
    variables = [tf.Variable(s) for s in starts]
    opt = optreg.registry.create("adahessian", learning_rate=0.1, seed=4)
    for _ in range(3):
        opt.minimize(lambda: _quadratic(variables), variables)
    path = tf.train.Checkpoint(optimizer=opt, v=variables).save(str(tmp_path / "ckpt"))
    for _ in range(3):
        opt.minimize(lambda: _quadratic(variables), variables)
    resumed_vars = [tf.Variable(np.zeros_like(s)) for s in starts]
    resumed = optreg.registry.create("adahessian", learning_rate=0.1, seed=4)
    resumed.build(resumed_vars)
    tf.train.Checkpoint(optimizer=resumed, v=resumed_vars).restore(path).assert_consumed()
    for _ in range(3):
        resumed.minimize(lambda: _quadratic(resumed_vars), resumed_vars)
    for a, b in zip(resumed_vars, variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_adahessian_minimize_traced_gives_the_eager_values():
    eager_vars = [tf.Variable(np.array([1.0, -2.0, 0.5], np.float32))]
    graph_vars = [tf.Variable(np.array([1.0, -2.0, 0.5], np.float32))]
    eager, graph = (optreg.registry.create("adahessian", learning_rate=0.1) for _ in range(2))
    traced = tf.function(lambda: graph.minimize(lambda: _quadratic(graph_vars), graph_vars))
    for _ in range(4):
        eager.minimize(lambda: _quadratic(eager_vars), eager_vars)
        traced()
    np.testing.assert_allclose(graph_vars[0].numpy(), eager_vars[0].numpy(), rtol=1e-6)
