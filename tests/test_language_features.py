"""The reductions that keep axes (per row, per column, per output channel), the ``channels``
slot shape, and their rank checks at load time, each against NumPy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import optreg
from tests.helpers import SHAPES
from tests.test_spec import _line_of, with_rule

SPEC = """\
[optimizer]
name = "probe"
summary = "per-channel statistics"

[hyperparameters]
learning_rate = {{ default = 0.1 }}

[slots]
c = {{ init = "zeros", shape = "channels" }}

[update]
rule = {rule}
"""


def _channels(x, reduce):
    """A reduction over every axis but the last, kept; a vector or scalar as it is."""
    return reduce(x, axis=tuple(range(x.ndim - 1)), keepdims=True) if x.ndim >= 2 else x


def _norm(x, axis, keepdims):
    return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))


# (the rule's expression for var, the same in NumPy from the start and the gradient)
EXPRESSIONS = [
    ("var - channel_sum(grad)", lambda x, g: x - _channels(g, np.sum)),
    ("var - channel_mean(grad) * grad", lambda x, g: x - _channels(g, np.mean) * g),
    ("var / (1 + channel_norm(grad))", lambda x, g: x / (1 + (_channels(g, _norm) if g.ndim >= 2 else np.abs(g)))),
    ("var - channel_max(grad - var)", lambda x, g: x - _channels(g - x, np.max)),
    (
        "where(rank(var) >= 1, var - row_max(grad), var)",
        lambda x, g: x - g.max(axis=-1, keepdims=True) if g.ndim else x,
    ),
    (
        "where(rank(var) >= 2, var * col_max(abs(grad)), var)",
        lambda x, g: x * np.abs(g).max(axis=-2, keepdims=True) if g.ndim >= 2 else x,
    ),
]


def _probe(*lines):
    return optreg.load_spec_text(SPEC.format(rule=json.dumps(list(lines))))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("text", "reference"), EXPRESSIONS, ids=[case[0] for case in EXPRESSIONS])
def test_axis_reductions_match_numpy_at_every_rank(text, reference, shape, rng):
    start, grad = rng.normal(size=shape), rng.normal(size=shape)
    var = tf.Variable(start)
    optreg.SpecOptimizer(_probe(f"var = {text}")).apply_gradients([(tf.constant(grad), var)])
    np.testing.assert_allclose(var.numpy(), reference(start, grad), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("shape", "slot_shape"), [((), ()), ((5,), (5,)), ((3, 4), (1, 4)), ((3, 3, 2, 8), (1, 1, 1, 8))]
)
def test_a_channels_slot_holds_one_number_per_last_axis_entry(shape, slot_shape, rng):
    """A per-output-channel running maximum of the squared gradient: a conv kernel's slot has
    one number per output channel, a vector's one per element."""
    spec = _probe("c = maximum(c, channel_max(square(grad)))", "var = var - learning_rate * grad * rsqrt(c + 1)")
    opt = optreg.SpecOptimizer(spec)
    start = rng.normal(size=shape)
    var, expected_c, expected_var = tf.Variable(start), np.zeros(slot_shape), start
    for _ in range(3):
        grad = rng.normal(size=shape)
        opt.apply_gradients([(tf.constant(grad), var)])
        expected_c = np.maximum(expected_c, _channels(grad * grad, np.max))
        expected_var = expected_var - 0.1 * grad / np.sqrt(expected_c + 1)
    assert tuple(opt.slots_for(var)["c"].shape) == slot_shape
    np.testing.assert_allclose(opt.slots_for(var)["c"].numpy(), expected_c, rtol=1e-12)
    np.testing.assert_allclose(var.numpy(), expected_var, rtol=1e-12)


def test_channel_reductions_take_every_rank():
    """Below rank 2 a channel reduction is the identity (each element its own neuron), so no
    rank is refused for them."""
    optreg.load_spec_text(with_rule("var = var - channel_norm(sum(grad)) * channel_mean(learning_rate) * grad"))


@pytest.mark.parametrize("name", ["sm3", "nero"])
def test_sm3_and_nero_keep_per_row_and_per_channel_state(name):
    """The memory the papers promise: on a 64×32 kernel SM3 keeps 64 + 32 numbers and Nero 32
    (plus its one scale), not 2048."""
    opt = optreg.registry.create(name)
    kernel = tf.Variable(tf.zeros([64, 32]))
    opt.build([kernel])
    sizes = {slot: int(tf.size(value)) for slot, value in opt.slots_for(kernel).items()}
    assert sizes == ({"r": 64, "c": 32} if name == "sm3" else {"v": 32, "scale": 1})


# --- repeat ------------------------------------------------------------------------------------

REPEAT_SPEC = """\
[optimizer]
name = "probe"
summary = "a bounded iteration"

[hyperparameters]
learning_rate = {{ default = 0.1 }}
passes = {{ default = 2, type = "int", min = 0, max = 6, fixed = true }}

[update]
rule = {rule}
"""


def _repeat_probe(*lines):
    return optreg.load_spec_text(REPEAT_SPEC.format(rule=json.dumps(list(lines))))


def _newton_schulz(x, passes):
    """The cubic Newton–Schulz iteration towards the orthogonal factor, in NumPy."""
    for _ in range(passes):
        x = 1.5 * x - 0.5 * (x @ x.T) @ x
    return x


@pytest.mark.parametrize("passes", [0, 1, 2, 6])
def test_repeat_unrolls_a_fixed_count_as_numpy_loops(passes, rng):
    spec = _repeat_probe(
        "x0 = grad / norm(grad)",
        "o = where(rank(var) == 2, repeat(passes, x0, 1.5 * it - 0.5 * matmul(matmul(it, transpose(it)), it)), x0)",
        "halved = repeat(3, grad, it / 2 + learning_rate)",
        "var = var - o - halved",
    )
    start, grad = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    var = tf.Variable(start)
    optreg.SpecOptimizer(spec, passes=passes).apply_gradients([(tf.constant(grad), var)])
    halved = grad
    for _ in range(3):
        halved = halved / 2 + 0.1
    expected = start - _newton_schulz(grad / np.linalg.norm(grad), passes) - halved
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("var = repeat(17, grad, it)", "repeat's count must be a whole number from 0 to 16, got 17"),
        ("var = repeat(1.5, grad, it)", "repeat's count must be a whole number from 0 to 16, got 1.5"),
        ("var = repeat(learning_rate, grad, it)", "repeat's count 'learning_rate' must be a fixed int hyperparameter"),
        ("var = repeat(grad, grad, it)", "repeat's count 'grad' is not a hyperparameter"),
        ("var = repeat(2 * passes, grad, it)", "repeat's count must be a whole literal or a fixed int hyperparameter"),
        ("var = var - it", "undefined name 'it' (it is the previous value inside repeat's body only)"),
        ("var = repeat(2, it, it)", "'it' is the previous value inside repeat's body only, not in its start"),
        ("var = repeat(2, grad, repeat(2, grad, it))", "repeat cannot be nested inside another repeat"),
        ("var = repeat(2, sum(grad), matmul(it, it))", "matmul needs arguments of rank >= 2, but it has rank 0"),
    ],
    ids=[
        "too-many", "fraction", "settable", "not-a-hyperparameter", "expression", "outside", "in-start", "nested",
        "rank",
    ],
)
def test_a_repeat_that_is_unbounded_or_misread_is_refused_at_load(rule, fragment):
    text = REPEAT_SPEC.format(rule=json.dumps(["m = grad", rule]))
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    assert fragment in caught.value.message
    assert caught.value.line == _line_of(text, rule) and caught.value.key == "update.rule[1]"


@pytest.mark.parametrize(
    ("bounds", "ok"), [("min = 0, max = 16", True), ("min = 0, max = 17", False), ("max = 4", False)]
)
def test_a_hyperparameter_count_needs_bounds_within_the_limit(bounds, ok):
    text = REPEAT_SPEC.replace("min = 0, max = 6", bounds).format(rule=json.dumps(["var = repeat(passes, grad, it)"]))
    if ok:
        optreg.load_spec_text(text)
        return
    with pytest.raises(optreg.SpecError, match="needs min >= 0 and max <= 16"):
        optreg.load_spec_text(text)


# --- hyperparameters that may be None or infinite ------------------------------------------------

OPTIONAL_SPEC = """\
[optimizer]
name = "probe"
summary = "a cap and an optional scale"

[hyperparameters]
learning_rate = { default = 0.5 }
cap = { default = inf, inf = true, min = 0.0 }
scale = { default = "none", none = true, min = 0.0 }

[update]
rule = ["var = var - minimum(learning_rate * abs(grad), cap) * sign(grad) * where(given(scale), scale, 1)"]
"""


@pytest.mark.parametrize(
    "given", [{}, {"scale": 2.0}, {"cap": 0.25}, {"cap": 0.25, "scale": 3.0}, {"scale": None, "cap": float("inf")}]
)
def test_an_infinite_default_and_a_none_hyperparameter_match_numpy(given, rng):
    spec = optreg.load_spec_text(OPTIONAL_SPEC)
    assert spec.defaults() == {"learning_rate": 0.5, "cap": float("inf"), "scale": None}
    opt = optreg.SpecOptimizer(spec, **given)
    start, grad = rng.normal(size=5), rng.normal(size=5)
    var = tf.Variable(start)
    opt.apply_gradients([(tf.constant(grad), var)])
    settings = {**spec.defaults(), **given}
    scale = 1.0 if settings["scale"] is None else settings["scale"]
    expected = start - np.minimum(0.5 * np.abs(grad), settings["cap"]) * np.sign(grad) * scale
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-12)
    assert opt.get_config()["hyperparameters"] == settings
    assert optreg.Optimizer.from_config(opt.get_config()).get_config()["hyperparameters"] == settings


def test_a_none_hyperparameter_can_be_set_to_a_number_and_back():
    opt = optreg.SpecOptimizer(optreg.load_spec_text(OPTIONAL_SPEC))
    var = tf.Variable([1.0])
    step = tf.function(lambda: opt.apply_gradients([(tf.constant([1.0]), var)]))
    step()  # scale None: 1 - 0.5
    opt.scale = 2.0
    step()  # the same trace: 0.5 - 0.5 * 2
    opt.scale = None
    step()
    np.testing.assert_allclose(var.numpy(), [-1.0])
    assert opt.get_config()["hyperparameters"]["scale"] is None


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ('x = { default = "none" }', "must be a number"),
        ("x = { default = inf }", "must be finite"),
        ('x = { default = 1, type = "int", none = true }', "only a float hyperparameter can be none"),
        ("x = { default = 1.0, inf = 1 }", "inf must be true or false"),
        ("x = { default = nan, inf = true }", "must be finite"),
    ],
    ids=["none-undeclared", "inf-undeclared", "none-int", "inf-not-bool", "nan"],
)
def test_none_and_inf_are_taken_only_where_declared(entry, fragment):
    from tests.test_spec import with_hyperparameter

    with pytest.raises(optreg.SpecError, match=fragment):
        optreg.load_spec_text(with_hyperparameter(entry))
    spec = optreg.load_spec_text(OPTIONAL_SPEC)
    with pytest.raises(optreg.HyperparameterError, match="learning_rate must be a number, got None"):
        optreg.SpecOptimizer(spec, learning_rate=None)
    with pytest.raises(optreg.HyperparameterError, match="learning_rate must be finite"):
        optreg.SpecOptimizer(spec, learning_rate=float("inf"))


def test_given_names_a_hyperparameter():
    with pytest.raises(optreg.SpecError, match=r"given\(grad\) names no hyperparameter"):
        optreg.load_spec_text(with_rule("var = var - where(given(grad), grad, 0)"))
    with pytest.raises(optreg.SpecError, match="given takes the name of a hyperparameter"):
        optreg.load_spec_text(with_rule("var = var - where(given(2 * grad), grad, 0)"))


def test_muon_takes_keras_rms_rate_none(rng):
    """Keras's ``Muon(rms_rate=None)`` turns the step rescaling off; so does optreg's, step for step."""
    import tests.optimizer_table  # noqa: F401 - the table gathers table_muon; importing it alone first is circular
    from tests.table_muon import keras_muon

    start = rng.normal(size=(4, 6)).astype(np.float32)
    grads = [rng.normal(size=(4, 6)).astype(np.float32) for _ in range(5)]
    ours, theirs = tf.Variable(start), tf.Variable(start)
    optimizer, keras_optimizer = optreg.registry.create("muon", rms_rate=None), keras_muon({"rms_rate": None})
    for grad in grads:
        optimizer.apply_gradients([(tf.constant(grad), ours)])
        keras_optimizer.apply_gradients([(tf.constant(grad), theirs)])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours.numpy(), start)


def test_prodigy_takes_the_references_growth_rate_inf(rng):
    """d0 > 0, so d·inf is inf and the limit min(d̂, d·inf) is no limit: inf steps as 0 does."""
    start, grads = rng.normal(size=(6,)), [rng.normal(size=(6,)) for _ in range(5)]
    ends = []
    for growth_rate in (0.0, float("inf")):
        var = tf.Variable(start)
        opt = optreg.registry.create("prodigy", growth_rate=growth_rate, learning_rate=0.5)
        for grad in grads:
            opt.apply_gradients([(tf.constant(grad), var)])
        ends.append(var.numpy())
    np.testing.assert_array_equal(ends[0], ends[1])
    assert not np.array_equal(ends[0], start)


def test_a_sub_expression_repeated_in_a_body_is_built_once_a_pass():
    """Three ``matmul(it, transpose(it))`` in the body, two passes: 2 Gram matrices and 2 more
    products, not 6 + 2."""
    from optreg.runtime.compile import CompiledRule

    gram = "matmul(it, transpose(it))"
    spec = _repeat_probe(f"var = repeat(2, grad, matmul({gram} + {gram} * {gram}, it))")
    rule = CompiledRule(spec.rule, [h.name for h in spec.hyperparameters], [])

    @tf.function
    def update(grad, var):
        scalars = rule.step_scalars(
            {h.name: tf.constant(0.1, tf.float64) for h in spec.hyperparameters}, tf.constant(1.0, tf.float64)
        )
        return rule.update(grad, var, {}, scalars)["var"]

    graph = update.get_concrete_function(tf.TensorSpec([3, 3], tf.float64), tf.TensorSpec([3, 3], tf.float64)).graph
    assert sum(op.type in ("MatMul", "BatchMatMulV2") for op in graph.get_operations()) == 4
    x = np.arange(9.0).reshape(3, 3) / 10
    for _ in range(2):
        gram = x @ x.T
        x = (gram + gram * gram) @ x
    np.testing.assert_allclose(
        update(tf.constant(np.arange(9.0).reshape(3, 3) / 10), tf.zeros([3, 3], tf.float64)), x, rtol=1e-12
    )
