"""skip_nonfinite: a step with a NaN or infinite gradient changes nothing but the skip count."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from tests.test_optimizers import BUILTIN, CASE_BY_NAME

BAD_VALUES = [np.nan, np.inf, -np.inf]


def _state(opt, variables):
    return [v.numpy().copy() for v in variables] + [
        s.numpy().copy() for v in variables for s in opt.slots_for(v).values()
    ] + [int(opt.iterations)]


def _assert_same(before, after, bad):
    assert [np.asarray(a).tobytes() for a in before] == [np.asarray(b).tobytes() for b in after], bad


@pytest.mark.parametrize("compiled", [False, True], ids=["op-by-op", "xla"])
@pytest.mark.parametrize("name", BUILTIN)
def test_a_nonfinite_step_leaves_variables_and_slots_bit_identical(name, compiled, rng):
    """NaN, inf and -inf in turn on one optimizer, op by op (the check is a Python branch) and
    as the default XLA step (one compilation; the check is a ``tf.cond`` inside it, the one a
    ``tf.function`` traces): each poisoned step leaves every variable, slot and the iteration
    count bit-identical to the state just before it, counts one skip, and the good step after
    it is applied."""
    variables = [
        tf.Variable(rng.normal(size=(3, 2)).astype(np.float32)),
        tf.Variable(rng.normal(size=(4,)).astype(np.float32)),
    ]
    opt = optreg.registry.create(
        name, learning_rate=0.1, skip_nonfinite=True, clipnorm=1.0, jit_compile="auto" if compiled else False
    )
    # a step XLA does not compile (an eigendecomposition's) takes its tf.cond in a plain tf.function
    step = tf.function(opt.apply_gradients) if compiled and not opt.compiles_with_xla else opt.apply_gradients
    good = [tf.constant(rng.normal(size=v.shape).astype(np.float32)) for v in variables]
    step(list(zip(good, variables)))
    for skips, bad in enumerate(BAD_VALUES, start=1):
        before = _state(opt, variables)
        poisoned = good[1].numpy().copy()
        poisoned[2] = bad
        step(list(zip([good[0], tf.constant(poisoned)], variables)))
        _assert_same(before, _state(opt, variables), bad)
        assert int(opt.skipped_steps) == skips, bad
        step(list(zip(good, variables)))
        assert int(opt.iterations) == skips + 1 and int(opt.skipped_steps) == skips, bad


def test_the_default_applies_nonfinite_steps_as_keras_does():
    var = tf.Variable([1.0, 2.0])
    opt = optreg.registry.create("sgd", learning_rate=0.1)
    opt.apply_gradients([(tf.constant([np.nan, 1.0]), var)])
    assert np.isnan(var.numpy()[0]) and int(opt.skipped_steps) == 0


def test_skip_nonfinite_must_be_a_bool():
    with pytest.raises(optreg.OptionError, match="skip_nonfinite must be true or false"):
        optreg.registry.create("adam", skip_nonfinite="yes")


def test_bench_still_reports_exploded_with_skipping_on():
    from optreg.bench.runner import plan_bench
    from tests.helpers import run_bench

    settings = [{"learning_rate": 0.1, "skip_nonfinite": True}, {"learning_rate": 0.01, "skip_nonfinite": True}]
    exploded, converged = run_bench(plan_bench(optreg.registry, ["momentum"], "quartic", settings))
    # the first infinite gradient comes at iteration 5; the tutorial's NaN follows at 6
    assert (exploded.status, exploded.iterations) == ("exploded", 5)
    assert (converged.status, converged.iterations) == ("converged", 80)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", BUILTIN)
def test_half_precision_variables_train_with_float32_slots(name, dtype):
    """300 steps from zero reach the target within 0.1, every float slot kept in float32, in the
    default (XLA) step."""
    target = tf.constant([0.5, -1.0, 2.0], dtype)
    var = tf.Variable(tf.zeros(3, dtype))
    case = CASE_BY_NAME[name]
    opt = optreg.registry.create(
        name,
        learning_rate=case.half_precision_learning_rate,
        slot_dtype="float32",
        **case.half_precision_settings,
    )

    def body(i):
        opt.minimize(lambda: tf.reduce_sum(tf.square(var - target)), [var])
        return (i + 1,)

    # the 300 steps in one call, as a graph loop: each is the step a tf.function of one step
    # takes (the same traced update), without 300 calls from Python
    tf.function(lambda: tf.while_loop(lambda i: i < 300, body, (tf.constant(0),)), autograph=False)()
    assert int(opt.iterations) == 300
    assert var.dtype == dtype
    # every float state in float32 (a rule that draws also keeps its int32 noise_index)
    assert all(slot.dtype == tf.float32 for slot in opt.slots_for(var).values() if slot.dtype.is_floating)
    values = var.numpy().astype(np.float32)
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, target.numpy().astype(np.float32), atol=0.1)


def test_slot_dtype_is_checked_and_kept_in_the_config():
    with pytest.raises(optreg.OptionError, match="slot_dtype must be one of"):
        optreg.registry.create("adam", slot_dtype="int8")
    opt = optreg.registry.create("adam", slot_dtype="float32")
    assert optreg.Optimizer.from_config(opt.get_config()).slot_dtype == "float32"
