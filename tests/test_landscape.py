"""Conventions the specs of tests/table_landscape.py state in their notes that the battery's
random starts do not reach."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import optreg


def test_fromage_without_a_norm_floor_steps_plainly_from_a_zero_variable():
    """min_norm = 0 and a zero variable: the trust ratio is 1 (optax's and pytorch-optimizer's
    plain step), so the step is learning_rate * grad / sqrt(1 + learning_rate ** 2), not NaN."""
    var = tf.Variable(tf.zeros([3], tf.float64))
    grad = tf.constant([0.5, -1.0, 2.0], tf.float64)
    optreg.registry.create("fromage", learning_rate=0.1, min_norm=0.0).apply_gradients([(grad, var)])
    np.testing.assert_allclose(var.numpy(), -0.1 * grad.numpy() / np.sqrt(1.01), rtol=1e-15)


def test_padam_keeps_a_running_maximum_only_with_amsgrad():
    var = tf.Variable(tf.ones([2]))
    for amsgrad, slots in ((False, ["m", "v"]), (True, ["m", "v", "v_max"])):
        opt = optreg.registry.create("padam", amsgrad=amsgrad)
        opt.apply_gradients([(tf.constant([1.0, -1.0]), var)])
        assert sorted(opt.slots_for(var)) == slots
