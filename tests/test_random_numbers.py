"""normal_like and rademacher_like: random numbers in a rule, reproducible by their key.

The reference of every draw is tests/table_python.reference_normal, which derives the key from
the documented formula and transforms the generator's raw words in NumPy. The battery's
checkpoint test (resumed runs draw the same) and the MirroredStrategy test (replicas agree and
match one device) run noisy_sgd like every built-in."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import optreg
from tests.noise_reference import philox_words, reference_normal

SPEC = """\
[optimizer]
name = "noisy"
summary = "draws"

[hyperparameters]
{seed}

[update]
rule = {rule}
"""
SEED = 'seed = { default = 3, type = "int", min = 0 }'


def _spec(*lines, seed=SEED):
    return optreg.load_spec_text(SPEC.format(seed=seed, rule=json.dumps(list(lines))))


def _drawn(*lines, shapes=((4000,),), **hyperparameters):
    """The variables after one step from zero with a zero gradient: each rule's draw as it is."""
    opt = optreg.SpecOptimizer(_spec(*lines), **hyperparameters)
    variables = [tf.Variable(tf.zeros(shape, tf.float64)) for shape in shapes]
    opt.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    return [v.numpy() for v in variables]


def test_draws_are_keyed_by_seed_step_variable_and_call():
    first, second = _drawn("var = normal_like(grad) + 10 * normal_like(var)", shapes=((5,), (2, 3)))
    np.testing.assert_allclose(first, reference_normal(3, 1, 0, 0, (5,)) + 10 * reference_normal(3, 1, 0, 1, (5,)))
    np.testing.assert_allclose(
        second, reference_normal(3, 1, 1, 0, (2, 3)) + 10 * reference_normal(3, 1, 1, 1, (2, 3)), rtol=1e-12
    )
    (other_seed,) = _drawn("var = normal_like(grad)", shapes=((5,),), seed=7)
    np.testing.assert_allclose(other_seed, reference_normal(7, 1, 0, 0, (5,)))


def test_normal_and_rademacher_numbers_have_their_distributions():
    normal, signs = _drawn("var = normal_like(grad)", shapes=((20000,),))[0], None
    assert abs(normal.mean()) < 0.03 and abs(normal.var() - 1) < 0.04
    assert abs(np.mean(normal**4) - 3) < 0.2  # Gaussian tails, not uniform or two-point
    (signs,) = _drawn("var = rademacher_like(grad)", shapes=((20000,),))
    assert set(np.unique(signs)) == {-1.0, 1.0} and abs(signs.mean()) < 0.03
    words = philox_words(3, 2**32, (20000,))
    np.testing.assert_array_equal(signs, np.where(words >= 2**31, -1.0, 1.0))


def test_each_step_draws_again_and_xla_draws_the_same():
    spec = _spec("var = var + normal_like(grad)")
    compiled, plain = (optreg.SpecOptimizer(spec, jit_compile=mode) for mode in (True, False))
    x, y = tf.Variable(np.zeros(6)), tf.Variable(np.zeros(6))
    for _ in range(2):
        compiled.apply_gradients([(tf.zeros(6, tf.float64), x)])
        plain.apply_gradients([(tf.zeros(6, tf.float64), y)])
    expected = reference_normal(3, 1, 0, 0, (6,)) + reference_normal(3, 2, 0, 0, (6,))
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)


def test_a_rule_that_draws_needs_an_int_seed_hyperparameter():
    with pytest.raises(optreg.SpecError, match="normal_like draws random numbers from the int hyperparameter 'seed'"):
        _spec("var = var - normal_like(grad)", seed="lr = { default = 0.1 }")
    with pytest.raises(optreg.SpecError, match="'seed', which must be an int hyperparameter with min >= 0"):
        _spec("var = var - rademacher_like(grad)", seed="seed = { default = 0.5 }")


def test_ranks_and_sparsity_see_a_draw_as_shaped_like_its_argument():
    with pytest.raises(optreg.SpecError, match="matmul needs arguments of rank >= 2"):
        _spec("var = var - matmul(normal_like(sum(grad)), grad)")
    support = optreg.SpecOptimizer(_spec("var = var - 0.1 * grad * rademacher_like(grad)")).sparse_support
    assert not support.row_local and not support.exact and "random numbers" in support.blocker
    assert not optreg.registry.create("noisy_sgd").supports_stacked_runs  # stacked runs would draw others


def test_the_keras_adapter_draws_what_the_optimizer_draws():
    import keras

    import optreg.keras

    spec = optreg.registry.get("noisy_sgd").spec
    adapter = optreg.keras.optimizer("noisy_sgd", learning_rate=0.1, eta=0.5)
    ours = optreg.SpecOptimizer(spec, learning_rate=0.1, eta=0.5)
    a, b = keras.Variable(np.zeros(4, np.float32)), tf.Variable(np.zeros(4, np.float32))
    adapter.apply_gradients([(tf.ones(4), a)])
    ours.apply_gradients([(tf.ones(4), b)])
    np.testing.assert_allclose(np.asarray(a), b.numpy(), rtol=1e-6)
