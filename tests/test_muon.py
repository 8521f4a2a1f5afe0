"""Muon, and what the language grew for it: variable facts chosen by name (``excluded(var)``,
``decayed(var)``), rules that apply ``weight_decay`` themselves, and branches decided when
traced through locals.

The battery (``table_muon.py``) checks Muon on one variable at a time; here whole sets of
variables go through one optimizer, as a model's would, so each variable takes the branch its
rank and name choose."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.errors import ExpressionError, OptionError
from optreg.lang.check import check_rule
from optreg.lang.parse import parse_assignment
from optreg.spec.reader import load_spec_text

#: name → shape of a small model's variables: matrices on the Muon branch, and on the AdamW
#: branch an embedding table, a layer excluded by name, a bias, a rank-3 kernel and a scalar.
MODEL = {
    "token_embedding": (6, 4),
    "hidden_kernel": (4, 5),
    "tall_kernel": (7, 3),
    "head_kernel": (5, 2),
    "hidden_bias": (5,),
    "conv_kernel": (2, 3, 4),
    "temperature": (),
}
STEPS = 50


def _model_problem(rng):
    starts = {name: rng.normal(size=shape).astype(np.float32) for name, shape in MODEL.items()}
    grads = [{name: rng.normal(size=shape).astype(np.float32) for name, shape in MODEL.items()} for _ in range(STEPS)]
    return starts, grads


def _train(opt, variables, grads, exclude_bias=False):
    """Apply every step's gradients to the model's variables; return their final values."""
    if exclude_bias:
        opt.exclude_from_weight_decay(var_names=["bias"])
    for step_grads in grads:
        opt.apply_gradients([(tf.constant(step_grads[name]), variables[name]) for name in MODEL])
    return {name: tf.convert_to_tensor(variables[name]).numpy() for name in MODEL}


_SETTINGS = [
    {"learning_rate": 0.01, "adam_beta_1": 0.875, "adam_beta_2": 1 - 2**-10, "exclude_layers": ["head"]},
    {"learning_rate": 0.02, "adam_beta_1": 0.5, "adam_beta_2": 0.75, "nesterov": False, "ns_steps": 3, "momentum": 0.8},
    {
        "learning_rate": 0.01,
        "adam_beta_1": 0.875,
        "adam_beta_2": 1 - 2**-10,
        "weight_decay": None,
        "adam_weight_decay": 0.1,
        "adam_lr_ratio": 0.3,
    },
    {
        "learning_rate": 0.01,
        "adam_beta_1": 0.875,
        "adam_beta_2": 1 - 2**-10,
        "weight_decay": 0.05,
        "exclude_embeddings": False,
    },
]


@pytest.mark.parametrize("exclude_bias", [False, True], ids=["decay-all", "bias-excluded"])
@pytest.mark.parametrize("setting", _SETTINGS, ids=lambda s: ",".join(sorted(s)))
def test_a_model_of_both_branches_matches_keras_muon(setting, exclude_bias, rng):
    starts, grads = _model_problem(rng)
    ours = _train(
        optreg.registry.create("muon", **setting),
        {name: tf.Variable(start, name=name) for name, start in starts.items()},
        grads,
        exclude_bias,
    )
    theirs = _train(
        keras.optimizers.Muon(**setting),
        {name: keras.Variable(start, name=name) for name, start in starts.items()},
        grads,
        exclude_bias,
    )
    for name in MODEL:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_rms_rate_zero_is_keras_none(rng):
    starts, grads = _model_problem(rng)
    ours = _train(
        optreg.registry.create("muon", rms_rate=0.0), {n: tf.Variable(s, name=n) for n, s in starts.items()}, grads
    )
    theirs = _train(
        keras.optimizers.Muon(rms_rate=None), {n: keras.Variable(s, name=n) for n, s in starts.items()}, grads
    )
    for name in MODEL:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_matrices_take_orthogonalised_steps_and_excluded_ones_take_adam_steps(rng):
    """One step from fresh state without momentum, decay or rescaling: a matrix on the Muon
    branch moves by lr times a near-orthogonal matrix (every singular value within the band
    the quintic Newton-Schulz iteration leaves, about 0.7 to 1.2), while a matrix excluded by
    name moves by Adam's first step, lr times the gradient's sign."""
    lr = 0.01
    hidden = tf.Variable(rng.normal(size=(8, 5)).astype(np.float32), name="hidden")
    head = tf.Variable(rng.normal(size=(8, 5)).astype(np.float32), name="head")
    before = {"hidden": hidden.numpy(), "head": head.numpy()}
    grad = tf.constant(rng.normal(size=(8, 5)).astype(np.float32))
    opt = optreg.registry.create(
        "muon",
        learning_rate=lr,
        momentum=0.0,
        nesterov=False,
        rms_rate=0.0,
        weight_decay=None,
        adam_weight_decay=0.0,
        exclude_layers=["head"],
    )
    opt.apply_gradients([(grad, hidden), (grad, head)])
    singular_values = np.linalg.svd((before["hidden"] - hidden.numpy()) / lr, compute_uv=False)
    assert singular_values.min() > 0.6 and singular_values.max() < 1.25, singular_values
    np.testing.assert_allclose((before["head"] - head.numpy()) / lr, np.sign(grad.numpy()), rtol=1e-3)


def test_muon_branch_reaches_the_minimum_of_a_matrix_least_squares_problem(rng):
    """min ½‖AW − B‖² over a 6×4 matrix W, with a decaying rate (Muon's steps have a fixed
    spectral size, so a constant rate circles the minimum at a distance set by the rate)."""
    a = tf.constant((rng.normal(size=(10, 6)) / np.sqrt(10)).astype(np.float32))
    target = rng.normal(size=(6, 4)).astype(np.float32)
    b = a @ target
    w = tf.Variable(tf.zeros((6, 4)), name="kernel")
    schedule = keras.optimizers.schedules.ExponentialDecay(0.3, decay_steps=1, decay_rate=0.995)
    opt = optreg.registry.create("muon", learning_rate=schedule, weight_decay=None)

    @tf.function
    def run():
        for _ in tf.range(2000):
            opt.minimize(lambda: 0.5 * tf.reduce_sum(tf.square(a @ w - b)), [w])

    run()
    np.testing.assert_allclose(w.numpy(), target, atol=1e-4)


def test_exclude_options_are_refused_where_no_rule_reads_them():
    with pytest.raises(OptionError, match=r"never calls excluded\(var\)"):
        optreg.registry.create("adam", exclude_layers=["head"])
    with pytest.raises(OptionError, match="not a regular expression"):
        optreg.registry.create("muon", exclude_layers=["head("])


def test_config_round_trip_keeps_the_exclusions():
    opt = optreg.registry.create("muon", exclude_layers=["head", "out"], exclude_embeddings=False, ns_steps=3)
    rebuilt = optreg.Optimizer.from_config(opt.get_config())
    assert rebuilt.step_options.exclude_layers == ("head", "out")
    assert rebuilt.step_options.exclude_embeddings is False
    assert rebuilt.hyperparameters["ns_steps"] == 3


# --- the language features, on specs of their own -------------------------------------------

_DECAYING_SGD = """
[optimizer]
name = "decaying_sgd"
summary = "gradient descent that decays only the variables exclude_layers selects"
[hyperparameters]
learning_rate = { default = 0.1 }
[update]
rule = [
  "rate = where(excluded(var), weight_decay, 0)",
  "var = var - learning_rate * grad - where(decayed(var), var * rate * learning_rate, 0)",
]
"""


def test_a_rule_reading_weight_decay_applies_it_once_and_only_where_it_says():
    spec = load_spec_text(_DECAYING_SGD)
    opt = optreg.runtime.spec_optimizer.SpecOptimizer(spec, weight_decay=0.5, exclude_layers=["^a"])
    a, b, ab = tf.Variable([1.0], name="a"), tf.Variable([1.0], name="b"), tf.Variable([1.0], name="a_bias")
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply_gradients([(tf.constant([0.0]), v) for v in (a, b, ab)])
    # a: excluded and decayed → decayed once (not twice, as the generic decay would add);
    # b: not excluded → no decay; a_bias: excluded but exempt from weight decay
    np.testing.assert_allclose([a.numpy()[0], b.numpy()[0], ab.numpy()[0]], [1.0 - 0.5 * 0.1, 1.0, 1.0])


@pytest.mark.parametrize("line", ["var = var - excluded(grad)", "var = var - decayed(2 * var)"])
def test_variable_facts_take_only_var(line):
    with pytest.raises(ExpressionError, match=r"call it as \w+\(var\)"):
        parse_assignment(line)


def test_weight_decay_is_read_only():
    with pytest.raises(ExpressionError, match="read-only"):
        check_rule([parse_assignment("weight_decay = 1")], [], [])
