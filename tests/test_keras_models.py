"""Every built-in trains a Keras model: through ``model.fit`` with the Keras adapter (which Keras
builds inside its first traced step), and in a custom training loop that hands optreg's own
optimizer the ``tf.Variable`` each Keras variable holds, op by op, or
``model.trainable_variables`` (Keras 3 variables) themselves, compiled as by default. They must
agree with each other, and the adapter with Keras's own optimizer where Keras has one, so a slot
that starts at the wrong value fails here."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import optreg
import optreg.keras as optreg_keras
from tests.optimizer_table import CASES
from tests.test_keras import named_model
from tests.test_optimizers import BUILTIN

RNG = np.random.default_rng(7)
X = RNG.normal(size=(96, 5)).astype("float32")
Y = (X @ RNG.normal(size=(5, 1)) + 0.1 * RNG.normal(size=(96, 1))).astype("float32")
BATCH = 16
EPOCHS = 3
CASE_BY_NAME = {case.name: case for case in CASES}
SPECS = [name for name in BUILTIN if optreg.registry.get(name).spec is not None]


def _model():
    """The same small MLP, with the same initial weights, every time."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])


def _setting(name: str) -> dict:
    """The first setting of the optimizer's row in the battery's table."""
    return dict(CASE_BY_NAME[name].settings[0])


def fit(optimizer, epochs=EPOCHS, x=X, y=Y, model=None):
    """``model.fit`` without building the optimizer first: (model, loss per epoch)."""
    model = model or _model()
    model.compile(optimizer=optimizer, loss="mse")
    history = model.fit(x, y, epochs=epochs, batch_size=BATCH, shuffle=False, verbose=0)
    return model, history.history["loss"]


def custom_loop(optimizer, epochs=EPOCHS, model=None, held=False):
    """The same training as :func:`fit`, written by hand, handing the Keras model's own
    variables to ``optimizer.apply_gradients`` (with ``held``, the ``tf.Variable`` each Keras
    variable holds instead): (model, mean loss per epoch)."""
    model = model or _model()
    variables = [v.value for v in model.trainable_variables] if held else model.trainable_variables
    mse = keras.losses.MeanSquaredError()
    losses = []
    for _ in range(epochs):
        batch_losses = []
        for start in range(0, len(X), BATCH):
            x, y = X[start : start + BATCH], Y[start : start + BATCH]
            with tf.GradientTape() as tape:
                loss = mse(y, model(x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            batch_losses.append(float(loss))
        losses.append(float(np.mean(batch_losses)))
    return model, losses


@functools.cache
def own_optimizer_op_by_op(name):
    """optreg's own optimizer, op by op, in :func:`custom_loop` on the ``tf.Variable`` each Keras
    variable holds, the row's first setting: (losses, weights, each variable's slots). Both tests
    below compare with it, so it runs once per optimizer."""
    own = optreg.registry.create(name, jit_compile=False, **_setting(name))
    looped, losses = custom_loop(own, held=True)
    variables = looped.trainable_variables
    slots = [{slot: value.numpy() for slot, value in own.slots_for(var.value).items()} for var in variables]
    return losses, looped.get_weights(), slots, [var.path for var in variables]


@pytest.mark.parametrize("name", SPECS)
def test_the_adapter_in_fit_trains_like_optregs_own_optimizer_in_a_custom_loop(name):
    """Same losses, weights and slots after several epochs: the adapter's slots start where
    optreg's own do, though Keras creates them inside a traced step."""
    # both op by op: the same rule program on both sides, no XLA compilation per optimizer (the
    # adapter's XLA step is checked against Keras in test_keras_updates.py, and the rule's XLA
    # program against its op-by-op one for every optimizer in test_optimizers.py)
    adapter = optreg_keras.optimizer(name, jit_compile=False, **_setting(name))
    fitted, fit_losses = fit(adapter)
    loop_losses, loop_weights, loop_slots, paths = own_optimizer_op_by_op(name)
    np.testing.assert_allclose(fit_losses, loop_losses, rtol=1e-5, atol=1e-6)
    for a, b in zip(fitted.get_weights(), loop_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for index, (path, slots) in enumerate(zip(paths, loop_slots)):
        for slot, value in slots.items():
            if slot == "noise_index":  # Keras keeps variables in build order: its index is Keras's own
                continue
            np.testing.assert_allclose(
                np.asarray(adapter._slot_lists[slot][index]), value, rtol=1e-5, atol=1e-5, err_msg=f"{path} {slot}"
            )
    assert np.all(np.isfinite(fit_losses)) and fit_losses[-1] != fit_losses[0]


KERAS_ROWS = [(case.name, dict((case.keras_settings or case.settings)[0])) for case in CASES if case.keras]


@pytest.mark.parametrize("name, setting", KERAS_ROWS, ids=[name for name, _ in KERAS_ROWS])
def test_the_adapter_in_fit_trains_like_the_keras_optimizer(name, setting):
    """The Keras reference is built before ``fit``: Keras's own ScheduleFreeAdamW sets its ``z``
    by an assignment in ``build``, which does not survive ``fit`` building it (tested below)."""
    case = CASE_BY_NAME[name]
    _, ours = fit(optreg_keras.optimizer(name, **setting))
    model = _model()
    reference = case.keras(setting)
    reference.build(model.trainable_variables)
    _, theirs = fit(reference, model=model)
    tolerance = max(case.keras_rtol, 1e-5)
    np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance)


def test_keras_schedule_free_adamw_loses_its_start_when_fit_builds_it():
    """Pins the Keras defect the comparison above steps around: unbuilt, Keras's own optimizer
    trains differently from the same optimizer built first; the adapter does not."""
    setting = {"learning_rate": 0.01, "beta_1": 1.0}
    _, unbuilt = fit(keras.optimizers.ScheduleFreeAdamW(**setting))
    model = _model()
    built_first = keras.optimizers.ScheduleFreeAdamW(**setting)
    built_first.build(model.trainable_variables)
    _, built = fit(built_first, model=model)
    _, adapter = fit(optreg_keras.optimizer("schedule_free_adamw", **setting))
    assert abs(unbuilt[0] - built[0]) > 1e-2
    np.testing.assert_allclose(adapter, built, rtol=1e-5)


# The regression of the issue that found the adapter's lost slot starts: Dense(4 → 1), batch 32.
REGRESSION_X = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
REGRESSION_Y = (REGRESSION_X @ np.random.default_rng(1).normal(size=(4, 1))).astype("float32")


@pytest.mark.parametrize("name, keras_class", [("ftrl", "Ftrl"), ("adagrad", "Adagrad")])
def test_accumulators_that_start_above_zero_match_keras_after_5_and_30_epochs(name, keras_class):
    def regression(optimizer):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=optimizer, loss="mse")
        return model.fit(REGRESSION_X, REGRESSION_Y, epochs=30, batch_size=32, shuffle=False, verbose=0).history["loss"]

    ours = regression(optreg_keras.optimizer(name, learning_rate=0.1))
    theirs = regression(getattr(keras.optimizers, keras_class)(learning_rate=0.1))
    for epochs in (5, 30):
        np.testing.assert_allclose(ours[epochs - 1], theirs[epochs - 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", BUILTIN)
def test_keras_variables_and_their_tf_variables_train_alike_in_a_custom_loop(name):
    """Every built-in (Python optimizers included) takes ``model.trainable_variables``, compiled
    as by default, as it takes the ``tf.Variable`` each holds, op by op (one XLA compilation,
    not two: the two paths agree within the row's ``xla_tolerance``, checked in
    test_optimizers.py for every optimizer)."""
    _, with_keras_variables = custom_loop(optreg.registry.create(name, **_setting(name)))
    with_tf_variables, *_ = own_optimizer_op_by_op(name)
    tolerance = max(CASE_BY_NAME[name].xla_tolerance, 1e-6)
    np.testing.assert_allclose(with_keras_variables, with_tf_variables, rtol=tolerance)
    assert np.all(np.isfinite(with_keras_variables)) and with_keras_variables[-1] != with_keras_variables[0]


def test_a_model_saved_before_fit_reloads_and_trains_like_keras(tmp_path):
    """A ``.keras`` file saved before the optimizer was built: loading builds the adapter
    eagerly, and its accumulators start at Keras's value."""
    def saved_then_fitted(optimizer, path):
        model = _model()
        model.compile(optimizer=optimizer, loss="mse")
        model.save(path)
        reloaded = keras.models.load_model(path)
        return fit(reloaded.optimizer, model=reloaded)[1]

    ours = saved_then_fitted(optreg_keras.optimizer("adagrad", learning_rate=0.1), tmp_path / "ours.keras")
    theirs = saved_then_fitted(keras.optimizers.Adagrad(learning_rate=0.1), tmp_path / "theirs.keras")
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_a_checkpoint_of_a_keras_model_and_an_optreg_optimizer_resumes_exactly(tmp_path):
    model, opt = _model(), optreg.registry.create("adam", learning_rate=0.01)
    custom_loop(opt, epochs=1, model=model)
    path = tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt"))
    _, continued = custom_loop(opt, epochs=2, model=model)

    restored_model, restored = _model(), optreg.registry.create("adam", learning_rate=0.01)
    tf.train.Checkpoint(model=restored_model, optimizer=restored).restore(path).assert_existing_objects_matched()
    _, resumed = custom_loop(restored, epochs=2, model=restored_model)
    np.testing.assert_allclose(resumed, continued, rtol=1e-6)
    assert int(restored.iterations) == int(opt.iterations) == 3 * len(X) // BATCH


def test_build_minimize_and_weight_decay_exclusions_take_keras_variables():
    model = _model()
    kernel, bias = model.layers[0].kernel, model.layers[0].bias
    opt = optreg.registry.create("adamw", learning_rate=0.01, weight_decay=0.5)
    opt.build(model.trainable_variables)
    assert opt.slots_for(kernel)["m"].name.startswith(kernel.path)
    opt.exclude_from_weight_decay(var_list=[bias])
    before = bias.numpy().copy()
    mse = keras.losses.MeanSquaredError()
    opt.minimize(lambda: mse(Y, model(X)) * 0.0, model.trainable_variables)  # zero gradients: only decay moves
    np.testing.assert_array_equal(bias.numpy(), before)
    assert not np.array_equal(kernel.numpy(), kernel.value.numpy() * 0)  # decayed, not zeroed
    assert int(opt.iterations) == 1


def test_muon_excludes_keras_layers_by_path_in_a_custom_loop():
    """``exclude_layers`` matches a Keras variable's path ("head/kernel"), as in the adapter."""
    options = {"learning_rate": 0.01, "exclude_layers": ["head"], "weight_decay": 0.05, "adam_weight_decay": 0.01}
    _, fitted = fit(optreg_keras.optimizer("muon", **options), model=named_model())
    _, looped = custom_loop(optreg.registry.create("muon", jit_compile=False, **options), model=named_model())
    _, unexcluded = custom_loop(
        optreg.registry.create("muon", jit_compile=False, **{**options, "exclude_layers": []}), model=named_model()
    )
    np.testing.assert_allclose(fitted, looped, rtol=1e-5)
    assert abs(unexcluded[-1] - looped[-1]) > 1e-4


def test_finalize_variable_values_takes_keras_variables():
    """With use_ema, a Keras model's own variables take their moving averages."""
    model = _model()
    opt = optreg.registry.create("adam", learning_rate=0.01, use_ema=True, ema_momentum=0.5)
    custom_loop(opt, epochs=1, model=model)
    averages = [opt.get_slot(var, "_average").numpy() for var in model.trainable_variables]
    assert not np.allclose(averages[0], model.trainable_variables[0].numpy())
    opt.finalize_variable_values(model.trainable_variables)
    for var, average in zip(model.trainable_variables, averages):
        np.testing.assert_array_equal(var.numpy(), average)
