"""Gradient hooks: the clipping options against Keras's, and their validation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.model.option_values import GradientOptions
from optreg.runtime import clipping


@pytest.mark.parametrize(
    "option",
    [{"clipnorm": 0.5}, {"clipvalue": 0.3}, {"global_clipnorm": 0.7}],
    ids=lambda o: next(iter(o)),
)
def test_clipping_matches_keras(option, rng):
    starts = [rng.normal(size=s).astype(np.float32) for s in [(3,), (2, 2)]]
    ours_vars = [tf.Variable(s) for s in starts]
    keras_vars = [tf.Variable(s) for s in starts]
    ours = optreg.registry.create("sgd", learning_rate=0.1, momentum=0.9, **option)
    theirs = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, **option)
    for _ in range(10):
        grads = [tf.constant(rng.normal(size=s.shape).astype(np.float32) * 3) for s in starts]
        ours.apply_gradients(zip(grads, ours_vars))
        theirs.apply_gradients(zip(grads, keras_vars))
    for a, b in zip(ours_vars, keras_vars):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)


def test_clipnorm_limits_each_gradient_norm():
    var = tf.Variable([0.0, 0.0])
    opt = optreg.registry.create("gradient_descent", learning_rate=1.0, clipnorm=2.0)
    opt.apply_gradients([(tf.constant([30.0, 40.0]), var)])
    np.testing.assert_allclose(var.numpy(), [-1.2, -1.6], rtol=1e-6)


def test_global_clipnorm_scales_all_gradients_together():
    a, b = tf.Variable([0.0]), tf.Variable([0.0])
    opt = optreg.registry.create("gradient_descent", learning_rate=1.0, global_clipnorm=1.0)
    opt.apply_gradients([(tf.constant([3.0]), a), (tf.constant([4.0]), b)])
    np.testing.assert_allclose([a.numpy()[0], b.numpy()[0]], [-0.6, -0.8], rtol=1e-6)


def test_more_than_one_clipping_option_is_an_error():
    with pytest.raises(optreg.OptionError, match="clipnorm and clipvalue"):
        optreg.registry.create("adam", clipnorm=1.0, clipvalue=1.0)


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "big", True])
def test_clipping_values_must_be_positive_numbers(value):
    with pytest.raises(optreg.OptionError, match="clipnorm must be a finite number > 0"):
        GradientOptions(clipnorm=value)


@pytest.mark.parametrize(
    "clip, reference",
    [
        (clipping.clip_by_norm, lambda grads, t: [tf.clip_by_norm(g, t) for g in grads]),
        (clipping.clip_by_global_norm, lambda grads, t: tf.clip_by_global_norm(grads, t)[0]),
        (clipping.clip_by_value, lambda grads, t: [tf.clip_by_value(g, -t, t) for g in grads]),
    ],
    ids=lambda f: getattr(f, "__name__", ""),
)
@pytest.mark.parametrize("run_axes", [1, -1], ids=["runs-first", "runs-last"])
def test_stacked_runs_are_clipped_each_as_its_own_run(clip, reference, run_axes, rng):
    """With runs on the leading axis (or the last, as the bench's loop holds them) and one
    threshold per run, each run's gradients (several variables: the global norm is over all of
    a run's variables) are clipped as TensorFlow clips that run's gradients alone, and as the
    one-run call does."""
    runs, thresholds = 3, np.array([0.5, 2.0, 50.0], np.float32)
    stacked = [rng.normal(size=(runs, *shape)).astype(np.float32) * 3 for shape in [(4,), (2, 3)]]
    if run_axes == 1:
        together = [g.numpy() for g in clip([tf.constant(g) for g in stacked], tf.constant(thresholds), 1)]
    else:  # the same runs on the last axis, and back
        last = [tf.constant(np.moveaxis(g, 0, -1)) for g in stacked]
        together = [np.moveaxis(g.numpy(), -1, 0) for g in clip(last, tf.constant(thresholds), -1)]
    for run, threshold in enumerate(thresholds):
        own = [tf.constant(g[run]) for g in stacked]
        for mine, alone, theirs in zip(together, clip(own, float(threshold), 0), reference(own, float(threshold))):
            np.testing.assert_allclose(mine[run], theirs.numpy(), rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(alone.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)
    # the thresholds bite: the first run is clipped and the last is not
    assert not np.allclose(together[0][0], stacked[0][0])
    np.testing.assert_allclose(together[0][2], stacked[0][2], rtol=1e-6)
