"""Prodigy sums over every variable: checks the per-variable battery cannot make."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import optreg
from tests.optimizer_table import CASES

NUMPY_PRODIGY = next(case.numpy for case in CASES if case.name == "prodigy")

STEPS = 30


def _defaults(**settings):
    return {**optreg.registry.get("prodigy").defaults(), **settings}


def test_several_variables_are_one_problem_to_its_estimate(rng):
    """Prodigy on two variables equals Prodigy on one vector holding both: its sums over
    variables are sums over every parameter."""
    shapes = [(3, 4), (5,)]
    starts = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(STEPS)]
    variables = [tf.Variable(start) for start in starts]
    opt = optreg.registry.create("prodigy", d_coef=2.0, growth_rate=1.1)
    for step_grads in grads:
        opt.apply_gradients([(tf.constant(g), v) for g, v in zip(step_grads, variables)])
    flat_start = np.concatenate([s.ravel() for s in starts])
    flat_grads = [np.concatenate([g.ravel() for g in step_grads]) for step_grads in grads]
    reference = NUMPY_PRODIGY(flat_start, flat_grads, _defaults(d_coef=2.0, growth_rate=1.1))[-1]
    np.testing.assert_allclose(
        np.concatenate([v.numpy().ravel() for v in variables]), reference, rtol=1e-12, atol=1e-12
    )


def test_the_estimate_grows_from_d0_on_a_problem_it_makes_progress_on():
    x = tf.Variable([3.0, -2.0, 1.0])
    opt = optreg.registry.create("prodigy")
    for _ in range(200):
        opt.minimize(lambda: tf.reduce_sum(tf.square(x)), [x])
    assert float(opt.d) > 1e3 * 1e-6
    assert float(tf.reduce_sum(tf.square(x))) < 14.0 * 1e-2


def test_zero_gradients_move_nothing_and_keep_d():
    x = tf.Variable([1.0, 2.0])
    opt = optreg.registry.create("prodigy")
    opt.apply_gradients([(tf.zeros(2), x)])
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    assert float(opt.d) == 1e-6


def test_the_estimate_is_checkpointed_and_reset(tmp_path):
    x = tf.Variable([3.0, -2.0])
    opt = optreg.registry.create("prodigy")
    for _ in range(20):
        opt.minimize(lambda: tf.reduce_sum(tf.square(x)), [x])
    saved = float(opt.d)
    path = tf.train.Checkpoint(optimizer=opt, x=x).save(str(tmp_path / "ckpt"))
    fresh = optreg.registry.create("prodigy")
    fresh.build([x])
    tf.train.Checkpoint(optimizer=fresh, x=x).restore(path)
    assert float(fresh.d) == saved != 1e-6
    fresh.reset()
    assert float(fresh.d) == 1e-6 and float(fresh.d_numerator) == 0.0
