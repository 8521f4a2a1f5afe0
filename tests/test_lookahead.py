"""Lookahead beyond the battery: wrapping an instance, mid-cycle checkpoints, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from tests.helpers import random_problem
from tests.optimizer_table import CASES

numpy_lookahead = next(case.numpy for case in CASES if case.name == "lookahead")


def _run(opt, start, grads):
    var = tf.Variable(start)
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
    return var


def test_wrapping_an_instance_matches_the_numpy_reference(rng):
    start, grads = random_problem(rng, (3, 4), 20, dtype=np.float64)
    inner = optreg.registry.create("sgd", learning_rate=0.05, momentum=0.9)
    var = _run(optreg.Lookahead(inner, sync_period=4, slow_step_size=0.25), start, grads)
    hp = {"inner": "sgd", "learning_rate": 0.05, "momentum": 0.9, "sync_period": 4, "slow_step_size": 0.25}
    np.testing.assert_allclose(var.numpy(), numpy_lookahead(start, grads, hp)[-1], rtol=1e-12, atol=1e-12)


def test_slow_weights_survive_a_checkpoint_taken_between_synchronisations(tmp_path, rng):
    start, grads = random_problem(rng, (5,), 12)

    def make():
        return optreg.registry.create("lookahead", inner="adam", learning_rate=0.05, sync_period=4)

    var, opt = tf.Variable(start), make()
    for g in grads[:6]:  # two steps into the second cycle: slow and fast weights differ
        opt.apply_gradients([(tf.constant(g), var)])
    slow = opt.slots_for(var)["slow"].numpy()
    assert not np.allclose(slow, var.numpy())
    path = tf.train.Checkpoint(optimizer=opt, var=var).save(str(tmp_path / "ckpt"))
    for g in grads[6:]:
        opt.apply_gradients([(tf.constant(g), var)])

    restored_var, restored = tf.Variable(np.zeros_like(start)), make()
    restored.build([restored_var])
    tf.train.Checkpoint(optimizer=restored, var=restored_var).restore(path).assert_consumed()
    np.testing.assert_array_equal(restored.slots_for(restored_var)["slow"].numpy(), slow)
    assert int(restored.inner.iterations) == 6
    for g in grads[6:]:
        restored.apply_gradients([(tf.constant(g), restored_var)])
    np.testing.assert_array_equal(restored_var.numpy(), var.numpy())


def test_config_rebuilds_the_inner_optimizer(rng):
    start, grads = random_problem(rng, (4,), 9)
    opt = optreg.registry.create("lookahead", inner="sgd", learning_rate=0.1, momentum=0.5, sync_period=3, clipnorm=1.0)
    rebuilt = optreg.Optimizer.from_config(opt.get_config())
    assert rebuilt.inner.optimizer_name == "sgd"
    assert rebuilt.hyperparameters == opt.hyperparameters
    np.testing.assert_array_equal(_run(rebuilt, start, grads).numpy(), _run(opt, start, grads).numpy())


def test_inner_hyperparameters_read_and_write_through_the_wrapper():
    opt = optreg.registry.create("lookahead", inner="adam", learning_rate=0.1)
    opt.learning_rate = 0.01
    opt.beta_1 = 0.5
    assert opt.inner.get_hyperparameter("learning_rate") == 0.01
    assert opt.inner.get_hyperparameter("beta_1") == 0.5
    assert float(opt.learning_rate) == 0.01
    with pytest.raises(optreg.HyperparameterError, match="beta_1 must be at most 1.0"):
        opt.set_hyperparameter("beta_1", 2.0)


def test_gradient_options_apply_before_the_inner_step():
    var = tf.Variable([0.0, 0.0])
    opt = optreg.registry.create("lookahead", inner="gradient_descent", learning_rate=1.0, clipnorm=1.0, sync_period=10)
    opt.apply_gradients([(tf.constant([3.0, 4.0]), var)])
    np.testing.assert_allclose(var.numpy(), [-0.6, -0.8], rtol=1e-6)


def test_unknown_inner_optimizer_is_named():
    with pytest.raises(optreg.UnknownNameError, match="no_such_optimizer"):
        optreg.registry.create("lookahead", inner="no_such_optimizer")


def test_unknown_hyperparameter_is_refused_by_the_inner_optimizer():
    with pytest.raises(optreg.HyperparameterError, match="'sgd' has no hyperparameter 'beta_1'"):
        optreg.registry.create("lookahead", inner="sgd", beta_1=0.9)


def test_a_wrapped_instance_takes_no_hyperparameters_and_no_gradient_options():
    with pytest.raises(optreg.HyperparameterError, match="learning_rate must be set on the inner optimizer"):
        optreg.Lookahead(optreg.registry.create("sgd"), learning_rate=0.1)
    with pytest.raises(optreg.OptionError, match="give them to the lookahead"):
        optreg.Lookahead(optreg.registry.create("sgd", clipvalue=1.0))


@pytest.mark.parametrize(
    "inner, settings",
    [
        ("sgd", {"learning_rate": "schedule", "momentum": 0.5, "weight_decay": 0.1}),
        ("adam", {"learning_rate": 0.05, "use_ema": True, "gradient_accumulation_steps": 2, "loss_scale_factor": 4.0}),
        ("prodigy", {"d_coef": 2.0}),
    ],
    ids=["schedule-and-decay", "ema-accumulation-scaling", "prodigy"],
)
def test_between_synchronisations_the_fast_weights_take_the_inner_optimizers_whole_step(inner, settings, rng):
    """Until the first synchronisation, a lookahead's variable moves exactly as the inner
    optimizer alone moves it: its schedules, weight decay, EMA, accumulation, loss scaling and
    updates coupling the variables all act inside the wrapper too."""
    import keras

    def make_settings():
        schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
        return {k: schedule if v == "schedule" else v for k, v in settings.items()}

    # op by op: the wrapper is the subject, not the compile mode (the XLA step's agreement with
    # the op-by-op one is checked for every optimizer, lookahead too, by test_optimizers.py's
    # test_the_xla_step_and_the_op_by_op_step_agree); two compilations were most of the cost
    start, grads = random_problem(rng, (3, 4), 8)
    wrapper = optreg.registry.create("lookahead", inner=inner, sync_period=100, jit_compile=False, **make_settings())
    wrapped = _run(wrapper, start, grads)
    alone = _run(optreg.registry.create(inner, jit_compile=False, **make_settings()), start, grads)
    np.testing.assert_array_equal(wrapped.numpy(), alone.numpy())
    assert not np.array_equal(wrapped.numpy(), start)


def _quartic_by_hand(opt, steps):
    """The tutorial's quartic from x = 2, stepped by hand: the final x."""
    x = tf.Variable([2.0])
    for _ in range(steps):
        opt.apply_gradients([(8 * x**3 + 9 * x**2, x)])
    return float(x.numpy()[0])


def test_the_bench_takes_the_inner_optimizer_and_its_learning_rate_from_the_command_line():
    """``optreg bench lookahead --set inner=radam,sgd --lr 0.01`` and ``optreg bench radam
    lookahead --lr 0.01``: the inner optimizer and the learning rate reach the inner optimizer."""
    import json

    from click.testing import CliRunner

    from optreg.cli import main

    def bench(*args):
        result = CliRunner().invoke(main, ["bench", *args, "--lr", "0.01", "--max-iters", "60", "--format", "json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    radam, sgd = bench("lookahead", "--set", "inner=radam,sgd")
    assert "momentum" in sgd["hyperparameters"] and "beta_1" in radam["hyperparameters"]
    for record, inner in ((radam, "radam"), (sgd, "sgd")):
        assert record["hyperparameters"]["learning_rate"] == 0.01
        by_hand = _quartic_by_hand(optreg.registry.create("lookahead", inner=inner, learning_rate=0.01), 60)
        assert record["final_params"][0] == pytest.approx(by_hand, rel=1e-5)
    _, adam_inside = bench("radam", "lookahead")
    by_hand = _quartic_by_hand(optreg.registry.create("lookahead", learning_rate=0.01), 60)
    assert adam_inside["final_params"][0] == pytest.approx(by_hand, rel=1e-5)
