"""Whole-tensor sums inside XLA (``optreg.runtime.xla.total``): a large float tensor is summed as
a matrix-vector product with ones, which XLA on a CPU computes faster and without copying its
input; the sums, the rules that reduce and the clipping that norms agree with float64 NumPy and
with the same step op by op."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.runtime import xla
from optreg.runtime.xla import DOT_LEAST_ELEMENTS, mean, total
from tests.test_touched_rows import adafactor_reference

#: Shapes of at least DOT_LEAST_ELEMENTS elements: whole blocks only, a remainder, rank 3.
LARGE = [(256, 256), (300, 301), (4, 128, 130)]


@pytest.fixture
def dot_sums(monkeypatch):
    """The element counts of the sums traced as a matrix-vector product, one per sum."""
    calls = []
    original = xla._dot_total
    monkeypatch.setattr(xla, "_dot_total", lambda *a: calls.append(a[1]) or original(*a))
    return calls


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", LARGE)
def test_a_large_sum_inside_xla_is_a_dot_product_matching_float64(shape, dtype, dot_sums):
    x = np.random.default_rng(0).normal(size=shape).astype(dtype)
    got = tf.function(lambda t: total(tf.abs(t) + 1), jit_compile=True)(x)
    assert dot_sums == [x.size] and got.dtype == dtype
    np.testing.assert_allclose(float(got), np.sum(np.abs(x.astype("float64")) + 1), rtol=1e-6)


def test_other_sums_stay_reduce_sum(dot_sums):
    large = tf.ones([256, 256])
    assert float(tf.function(total)(large)) == 65536.0  # traced, not inside XLA
    assert float(total(large)) == 65536.0  # eager
    small = tf.ones([DOT_LEAST_ELEMENTS - 1])
    assert float(tf.function(total, jit_compile=True)(small)) == DOT_LEAST_ELEMENTS - 1
    assert int(tf.function(total, jit_compile=True)(tf.ones([256, 256], tf.int32))) == 65536
    assert int(tf.function(total, jit_compile=True)(tf.zeros([0, 3]))) == 0
    half = tf.fill([256, 256], tf.constant(2.0, tf.float16))  # a sum of 131072 overflows float16
    assert float(tf.function(mean, jit_compile=True)(half)) == 2.0
    assert dot_sums == []


@pytest.mark.parametrize("shape", LARGE)
def test_a_large_mean_inside_xla_is_the_dot_product_sum_divided(shape, dot_sums):
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    got = tf.function(lambda t: mean(tf.square(t)), jit_compile=True)(x)
    assert dot_sums == [x.size]
    np.testing.assert_allclose(float(got), np.mean(x.astype("float64") ** 2), rtol=1e-6)


def test_a_large_adafactor_step_under_xla_matches_op_by_op_and_numpy(dot_sums):
    """Adafactor's step size reads the root mean square of the whole variable, and its update is
    clipped by its own: both means of a 512 × 256 matrix are dot products under XLA."""
    rng = np.random.default_rng(2)
    start = rng.normal(size=(512, 256)).astype("float32")
    grads = [rng.normal(size=start.shape).astype("float32") for _ in range(3)]
    results = {}
    for jit in (True, False):
        var = tf.Variable(start)
        opt = optreg.registry.create("adafactor", learning_rate=0.1, jit_compile=jit)
        for grad in grads:
            opt.apply_gradients([(tf.constant(grad), var)])
        results[jit] = var.numpy()
    assert len(dot_sums) >= 2 and set(dot_sums) == {start.size}
    reference = adafactor_reference(start, [g.astype("float64") for g in grads], 3)
    # the variable's entries are of order 1: the two float32 paths, which sum the factored
    # statistics in different orders, agree to a few units in the last place of 1 (an Intel
    # Xeon's op-by-op kernels put 3 of the 131072 entries 2e-7 apart, within each one's own
    # distance from the float64 reference)
    np.testing.assert_allclose(results[True], results[False], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(results[True], reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("option", [{"clipnorm": 1.0}, {"global_clipnorm": 1.5}])
def test_clipping_a_large_gradient_under_xla_matches_numpy(option, dot_sums):
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=(300, 301)).astype("float32"), rng.normal(size=(256, 300)).astype("float32")]
    variables = [tf.Variable(tf.zeros(g.shape)) for g in grads]
    opt = optreg.registry.create("gradient_descent", learning_rate=1.0, jit_compile=True, **option)
    opt.apply_gradients(zip([tf.constant(g) for g in grads], variables))
    norms = [np.linalg.norm(g.astype("float64")) for g in grads]
    if "clipnorm" in option:
        expected = [-g * min(1.0, 1.0 / n) for g, n in zip(grads, norms)]
    else:
        expected = [-g * min(1.0, 1.5 / np.hypot(*norms)) for g in grads]
    assert sorted(dot_sums) == sorted(g.size for g in grads)
    for var, want in zip(variables, expected):
        np.testing.assert_allclose(var.numpy(), want, rtol=1e-6, atol=1e-8)
