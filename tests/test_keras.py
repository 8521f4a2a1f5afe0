"""The Keras adapter: model.fit with an optreg spec optimizer, against Keras's own."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import optreg
import optreg.keras as optreg_keras

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 5)).astype("float32")
Y = (X @ RNG.normal(size=(5, 1)) + 0.1 * RNG.normal(size=(96, 1))).astype("float32")


def small_model():
    """The same small MLP, with the same initial weights, every time."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])


def fit(optimizer, epochs=3, model=None):
    model = model or small_model()
    model.compile(optimizer=optimizer, loss="mse")
    history = model.fit(X, Y, epochs=epochs, batch_size=16, shuffle=False, verbose=0)
    return model, history.history["loss"]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"clipnorm": 0.5},
        {"weight_decay": 0.01},
        {"use_ema": True, "ema_momentum": 0.9},
        {"gradient_accumulation_steps": 2},
    ],
    ids=lambda o: ",".join(o) or "plain",
)
def test_adam_through_the_adapter_trains_like_keras_adam(options):
    _, ours = fit(optreg_keras.optimizer("adam", learning_rate=0.01, **options))
    _, theirs = fit(keras.optimizers.Adam(learning_rate=0.01, **options))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < ours[0]


def test_sgd_with_nesterov_momentum_trains_like_keras_sgd():
    _, ours = fit(optreg_keras.optimizer("sgd", learning_rate=0.01, momentum=0.9, nesterov=True))
    _, theirs = fit(keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def named_model():
    """A small MLP whose layers carry names Muon's exclusions can select."""
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(8, activation="relu", name="hidden"), keras.layers.Dense(1, name="head")]
    )


@pytest.mark.parametrize(
    "options",
    [{}, {"exclude_layers": ["head"], "weight_decay": 0.05, "adam_weight_decay": 0.01}],
    ids=["defaults", "exclusions"],
)
def test_muon_through_the_adapter_trains_like_keras_muon(options):
    ours_model, ours = fit(optreg_keras.optimizer("muon", learning_rate=0.01, **options), model=named_model())
    theirs_model, theirs = fit(keras.optimizers.Muon(learning_rate=0.01, **options), model=named_model())
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    for a, b in zip(ours_model.get_weights(), theirs_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    rebuilt = optreg_keras.SpecOptimizer.from_config(ours_model.optimizer.get_config())
    assert rebuilt.get_config().get("exclude_layers", []) == options.get("exclude_layers", [])


def test_a_learning_rate_schedule_is_followed():
    def schedule():
        return keras.optimizers.schedules.ExponentialDecay(0.02, decay_steps=3, decay_rate=0.5)

    _, ours = fit(optreg_keras.optimizer("adam", learning_rate=schedule()))
    _, theirs = fit(keras.optimizers.Adam(learning_rate=schedule()))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)


TOML_ONLY = """
[optimizer]
name = "signed_momentum"
summary = "momentum on the sign of the gradient"

[hyperparameters]
learning_rate = { default = 0.01, min = 0.0 }
beta = { default = 0.9, min = 0.0, max = 1.0 }

[slots]
m = { init = "zeros" }

[update]
rule = ["m = beta * m + (1 - beta) * sign(grad)", "var = var - learning_rate * m"]
"""


def test_an_optimizer_written_only_in_toml_trains_saves_and_reloads(tmp_path):
    spec_path = tmp_path / "signed_momentum.toml"
    spec_path.write_text(TOML_ONLY, encoding="utf-8")
    model, losses = fit(optreg_keras.optimizer(spec_path, beta=0.8), epochs=4)
    assert losses[-1] < 0.7 * losses[0]

    saved = tmp_path / "model.keras"
    model.save(saved)
    spec_path.unlink()  # the reloaded model needs nothing but the .keras file
    reloaded = keras.models.load_model(saved)
    assert isinstance(reloaded.optimizer, optreg_keras.SpecOptimizer)
    assert reloaded.optimizer.get_config()["hyperparameters"] == {"beta": 0.8}
    assert int(reloaded.optimizer.iterations) == int(model.optimizer.iterations) == 24
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    _, continued = fit(model.optimizer, epochs=2, model=model)
    _, continued_reloaded = fit(reloaded.optimizer, epochs=2, model=reloaded)
    np.testing.assert_allclose(continued_reloaded, continued, rtol=1e-6)


def test_config_round_trip():
    original = optreg_keras.optimizer("adam", learning_rate=0.003, beta_2=0.99, clipvalue=1.0)
    rebuilt = optreg_keras.SpecOptimizer.from_config(original.get_config())
    assert rebuilt.get_config() == original.get_config()
    assert rebuilt.get_config()["hyperparameters"] == {"beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-7, "amsgrad": False}


def test_mixed_float16_policy_with_loss_scaling():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, losses = fit(optreg_keras.optimizer("adam", learning_rate=0.01))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, optreg_keras.SpecOptimizer)
        assert all(np.isfinite(losses)) and losses[-1] < losses[0]
        assert model.layers[0].kernel.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_unknown_names_and_bad_values_are_optreg_errors():
    with pytest.raises(optreg.UnknownNameError):
        optreg_keras.optimizer("adma")
    with pytest.raises(optreg.HyperparameterError, match="beta_1 must be at most 1.0"):
        optreg_keras.optimizer("adam", beta_1=2.0)


def _parameter_server_strategy():
    """A ParameterServerStrategy object without its cluster (one cannot be built in-process
    without servers): enough for the isinstance check every refusal makes."""
    cls = tf.distribute.experimental.ParameterServerStrategy
    return cls.__new__(cls)


def test_the_adapter_refuses_to_be_created_under_a_parameter_server_strategy(monkeypatch):
    monkeypatch.setattr(tf.distribute, "get_strategy", _parameter_server_strategy)
    with pytest.raises(
        optreg.OptionError, match="not supported by optreg's Keras adapter.*MultiWorkerMirroredStrategy"
    ):
        optreg_keras.optimizer("adam")


def test_the_adapter_refuses_to_step_under_a_parameter_server_strategy(monkeypatch):
    opt = optreg_keras.optimizer("sgd", learning_rate=0.1)
    x = keras.Variable([1.0])
    monkeypatch.setattr(tf.distribute, "get_strategy", _parameter_server_strategy)
    with pytest.raises(optreg.OptionError, match="not supported by optreg's Keras adapter"):
        opt.apply_gradients([(tf.constant([1.0]), x)])
    monkeypatch.undo()
    opt.apply_gradients([(tf.constant([1.0]), x)])
    np.testing.assert_allclose(np.asarray(x), [0.9])
