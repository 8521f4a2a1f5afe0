"""Fixed hyperparameters and conditional slots: spec checks (no TensorFlow needed), folding,
and optimizers built with them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.lang.fold import fold, static_value
from optreg.lang.parse import parse_expression
from tests.test_spec import _line_of, rule_table, spec_text

FLAGS = """\
[hyperparameters]
learning_rate = { default = 0.1, min = 0.0 }
centered = { default = false, fixed = true }
order = { default = 1, fixed = true, min = 1, max = 3 }
"""

SLOTS = """\
[slots]
h = { init = "ones", when = "centered" }
"""


def flag_spec(*lines, slots=SLOTS, hyperparameters=FLAGS) -> str:
    """A spec with a fixed bool, a fixed int and a slot that exists only when the bool holds."""
    return spec_text(hyperparameters=hyperparameters, slots=slots, update=rule_table(*lines))


# --- spec checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ('eps = { default = "none", none = true, fixed = true }', "so it cannot also be none"),
        ('eps = { default = true, fixed = "yes" }', "fixed must be true or false"),
    ],
)
def test_bad_fixed_declarations_are_spec_errors(entry, fragment):
    with pytest.raises(optreg.SpecError, match=fragment) as caught:
        optreg.load_spec_text(spec_text(hyperparameters=FLAGS + entry + "\n"))
    assert caught.value.key == "hyperparameters.eps"


@pytest.mark.parametrize(
    "when",
    [
        *('"nothing"', '"learning_rate"', '"order"', "true", '"plain"'),
        # comparisons: a number hyperparameter against a literal, and nothing else
        *('"plain > 0"', '"nothing > 0"', '"learning_rate >"', '"learning_rate > rate"', '"2 > learning_rate"'),
    ],
)
def test_when_must_name_a_fixed_bool_or_compare_a_number_with_a_literal(when):
    hypers = FLAGS + "plain = { default = false }\n"
    slots = f"[slots]\nh = {{ init = \"ones\", when = {when} }}\n"
    message = "when must name a fixed bool hyperparameter or compare a number hyperparameter with a literal"
    with pytest.raises(optreg.SpecError, match=message) as caught:
        optreg.load_spec_text(flag_spec("var = var - grad", slots=slots, hyperparameters=hypers))
    assert caught.value.key == "slots.h"


def test_reading_an_absent_slot_on_a_live_line_names_the_line_and_the_setting():
    text = flag_spec("h = 2 * h", "var = var - learning_rate * h * grad")
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    error = caught.value
    assert error.key == "update.rule[1]"
    assert error.line == _line_of(text, "var = var - learning_rate * h * grad")
    assert "'h'" in error.message and "only when 'centered' is true" in error.message
    assert "with centered = false" in error.message


def test_a_local_reading_an_absent_slot_is_absent_too_and_its_reader_is_named():
    text = flag_spec("h = 2 * h", "d = h * grad", "var = var - d")
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    assert caught.value.key == "update.rule[2]"
    assert "it reads 'h'" in caught.value.message


def test_absent_slot_in_a_dead_branch_only_is_accepted():
    spec = optreg.load_spec_text(
        flag_spec("h = 2 * h", "d = h * grad", "var = var - learning_rate * where(centered, d, grad)")
    )
    assert [slot.when for slot in spec.slots] == ["centered"]


def test_a_condition_on_a_non_fixed_name_does_not_guard_an_absent_slot():
    text = flag_spec("h = 2 * h", "var = var - where(learning_rate > 0, h, 1) * grad")
    with pytest.raises(optreg.SpecError, match="only when 'centered' is true"):
        optreg.load_spec_text(text)


def test_validate_and_show_of_conditional_specs_need_no_tensorflow(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys, optreg.spec.validate as v, optreg\n"
        "print(v.validate_paths(['specs/adam.toml', 'specs/rmsprop.toml']))\n"
        "from optreg.catalog.show import show_text; print(show_text(optreg.registry.get('rmsprop')))\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "(bool, fixed)" in done.stdout and "when centered" in done.stdout


# --- folding --------------------------------------------------------------------------------


def test_fold_replaces_fixed_names_and_keeps_the_live_branch():
    folded = fold(
        parse_expression("where(order >= 2, a, where(centered, b, c)) + order"), {"order": 1, "centered": True}
    )
    assert folded == parse_expression("b + 1")


def test_fold_leaves_undecided_conditions_and_arithmetic_alone():
    folded = fold(parse_expression("where(x > 0, a * 2, b)"), {})
    assert folded == parse_expression("where(x > 0, a * 2, b)")


@pytest.mark.parametrize(
    "text, value",
    [("1 + 2 * 3", 7.0), ("-2 ** 2", -4.0), ("1 / 0", None), ("(-8) ** 0.5", None), ("2 > 1", True), ("x", None)],
)
def test_static_value(text, value):
    assert static_value(parse_expression(text)) == value


# --- built optimizers -----------------------------------------------------------------------


def _probe(text, **hyperparameters):
    return optreg.SpecOptimizer(optreg.load_spec_text(text), **hyperparameters)


def test_conditional_slot_exists_only_when_its_flag_is_true():
    text = flag_spec("h = 2 * h", "var = var - learning_rate * where(centered, h, 1) * grad")
    for centered, slots, expected in ((False, [], 0.9), (True, ["h"], 0.8)):
        var = tf.Variable([1.0])
        opt = _probe(text, centered=centered)
        opt.apply_gradients([(tf.constant([1.0]), var)])
        assert list(opt.slots_for(var)) == slots
        np.testing.assert_allclose(var.numpy(), [expected], rtol=1e-6)


def test_fixed_int_is_folded_and_picks_one_branch():
    text = flag_spec(
        "var = var - learning_rate * where(order == 2, 2 * grad, where(order == 3, 3 * grad, grad))", slots=""
    )
    for order in (1, 2, 3):
        var = tf.Variable([1.0])
        _probe(text, order=order).apply_gradients([(tf.constant([1.0]), var)])
        np.testing.assert_allclose(var.numpy(), [1.0 - 0.1 * order], rtol=1e-6)


def test_a_fixed_float_is_folded_and_a_power_of_one_half_builds_a_square_root():
    """A fixed float is a literal of the rule: ``x ** power`` at 0.5 builds ``Sqrt``, no ``Pow``
    and no ``tf.cond`` (FTRL's accumulator powers), and another value builds ``Pow``; both give
    NumPy's result. The fixed value cannot change later."""
    hypers = FLAGS + "power = { default = 0.5, fixed = true, min = 0.0 }\n"
    text = flag_spec("var = var - learning_rate * (square(grad) + 1) ** power", slots="", hyperparameters=hypers)
    for power in (0.5, 0.25):
        var, opt = tf.Variable([1.0, -2.0]), _probe(text, power=power, jit_compile=False)  # its ops in one graph
        step = tf.function(lambda g, opt=opt, var=var: opt.apply_gradients([(g, var)]))
        grad = tf.constant([2.0, 3.0])
        ops = {op.type for op in step.get_concrete_function(grad).graph.get_operations()}
        step(grad)
        built = ("Sqrt" in ops, "Pow" in ops, bool(ops & {"If", "StatelessIf"}))
        assert built == (power == 0.5, power != 0.5, False), ops
        np.testing.assert_allclose(var.numpy(), [1.0, -2.0] - 0.1 * (np.array([4.0, 9.0]) + 1) ** power, rtol=1e-6)
    with pytest.raises(optreg.HyperparameterError, match="power is fixed when the optimizer is created"):
        opt.power = 0.5


def test_ftrls_fixed_power_builds_square_roots_and_no_conditional():
    """FTRL's rule raises its accumulator to ``power = -learning_rate_power``: with the power
    fixed at -0.5 the negation folds to a literal, so the traced step holds ``Sqrt`` and neither
    ``Pow`` nor a ``tf.cond`` choosing between them."""
    var, opt = tf.Variable([1.0, -2.0]), optreg.registry.create("ftrl", learning_rate=0.1, jit_compile=False)
    step = tf.function(lambda g: opt.apply_gradients([(g, var)]))
    ops = {op.type for op in step.get_concrete_function(tf.constant([1.0, 1.0])).graph.get_operations()}
    assert "Sqrt" in ops and not ops & {"Pow", "If", "StatelessIf"}, sorted(ops)
    with pytest.raises(optreg.HyperparameterError, match="learning_rate_power is fixed"):
        opt.learning_rate_power = -0.25


def test_setting_a_fixed_hyperparameter_later_is_refused():
    opt = optreg.registry.create("adam", amsgrad=True)
    with pytest.raises(optreg.HyperparameterError, match="amsgrad is fixed when the optimizer is created"):
        opt.amsgrad = False
    with pytest.raises(optreg.HyperparameterError, match="fixed"):
        opt.set_hyperparameter("amsgrad", tf.constant(0.0))
    assert opt.get_hyperparameter("amsgrad") is True
    opt.amsgrad = True  # its own value changes nothing
    assert opt.get_hyperparameter("amsgrad") is True


def test_fixed_values_are_checked_when_the_optimizer_is_created():
    with pytest.raises(optreg.HyperparameterError, match="amsgrad must be true or false"):
        optreg.registry.create("adam", amsgrad=1)


def test_fixed_value_survives_a_config_round_trip():
    opt = optreg.registry.create("rmsprop", centered=True, momentum=0.5, learning_rate=0.01)
    again = optreg.Optimizer.from_config(opt.get_config())
    var = tf.Variable([1.0, 2.0])
    again.apply_gradients([(tf.constant([1.0, 1.0]), var)])
    assert sorted(again.slots_for(var)) == ["average_gradient", "step_momentum", "velocity"]


# --- slots decided by a creation-time comparison (when = "momentum > 0") and has(slot) -------


def test_a_rule_must_guard_a_compared_slot_with_has():
    slots = '[slots]\nh = { init = "ones", when = "learning_rate > 0.5" }\n'
    with pytest.raises(
        optreg.SpecError,
        match=r"exists only when 'learning_rate > 0.5' holds \(with \(learning_rate > 0.5\) is false\)",
    ):
        optreg.load_spec_text(flag_spec("h = 2 * h", "var = var - h * grad", slots=slots))
    guarded = optreg.load_spec_text(flag_spec("h = 2 * h", "var = var - where(has(h), h, 1) * grad", slots=slots))
    assert guarded.slots[0].when == "learning_rate > 0.5"


def test_has_takes_a_slot_name():
    with pytest.raises(optreg.SpecError, match="names no slot"):
        optreg.load_spec_text(flag_spec("var = var - where(has(grad), 1, 0) * grad"))
    with pytest.raises(optreg.SpecError, match="takes the name of a slot"):
        optreg.load_spec_text(flag_spec("var = var - where(has(2 * h), 1, 0) * grad"))


@pytest.mark.parametrize("name, slot", [("sgd", "velocity"), ("rmsprop", "step_momentum")])
def test_momentum_slots_exist_only_with_momentum_as_in_keras(name, slot):
    var = tf.Variable([1.0, 2.0])
    plain, heavy = optreg.registry.create(name), optreg.registry.create(name, momentum=0.9)
    plain.build([var])
    heavy.build([var])
    assert slot not in plain.slots_for(var)
    assert slot in heavy.slots_for(var)


def test_a_slot_deciding_hyperparameter_changes_only_on_the_same_side():
    var = tf.Variable([1.0, 2.0])
    heavy = optreg.registry.create("sgd", learning_rate=0.1, momentum=0.9)
    heavy.apply_gradients([(tf.constant([1.0, 1.0]), var)])
    heavy.momentum = 0.5  # still > 0: the velocity slot keeps its meaning
    heavy.apply_gradients([(tf.constant([1.0, 1.0]), var)])
    # velocity: -0.1, then 0.5 * -0.1 - 0.1 = -0.15; var: 1 - 0.1 - 0.15
    np.testing.assert_allclose(var.numpy(), [0.75, 1.75], rtol=1e-6)
    with pytest.raises(optreg.HyperparameterError, match=r"slot 'velocity' exists .*momentum > 0"):
        heavy.momentum = 0.0
    plain = optreg.registry.create("sgd")
    with pytest.raises(optreg.HyperparameterError, match=r"slot 'velocity' does not exist"):
        plain.set_hyperparameter("momentum", 0.9)


def test_a_slot_deciding_hyperparameter_takes_no_schedule():
    import keras

    schedule = keras.optimizers.schedules.ExponentialDecay(0.9, decay_steps=10, decay_rate=0.5)
    with pytest.raises(optreg.HyperparameterError, match="decides which slots sgd keeps"):
        optreg.registry.create("sgd", momentum=schedule)


def test_a_momentum_sweep_splits_into_loops_by_slots_and_matches_single_runs():
    from optreg.bench.runner import plan_bench
    from tests.helpers import run_bench

    settings = [{"learning_rate": 0.01, "momentum": m} for m in (0.0, 0.5, 0.9)]
    swept = run_bench(plan_bench(optreg.registry, ["sgd"], "quartic", settings))
    alone = [run_bench(plan_bench(optreg.registry, ["sgd"], "quartic", [s]))[0] for s in settings]
    assert [(r.status, r.iterations) for r in swept] == [(r.status, r.iterations) for r in alone]
    np.testing.assert_allclose([r.final_params for r in swept], [r.final_params for r in alone], rtol=1e-6)
    assert swept[0].iterations != swept[2].iterations  # momentum made a difference


def test_complementary_slot_conditions_are_checked_only_in_combinations_values_can_make():
    """``h`` exists only when learning_rate > 0.5 and ``k`` only when it is not: no value gives
    neither slot, so a rule reading one or the other is accepted; reading ``h`` unguarded is not."""
    slots = '[slots]\nh = { when = "learning_rate > 0.5" }\nk = { when = "learning_rate <= 0.5" }\n'
    accepted = optreg.load_spec_text(flag_spec("var = var - where(has(h), h, k) * grad", slots=slots))
    assert [slot.name for slot in accepted.slots] == ["h", "k"]
    with pytest.raises(optreg.SpecError, match=r"\(learning_rate > 0.5\) is false"):
        optreg.load_spec_text(flag_spec("var = var - h * grad", slots=slots))


def test_a_one_element_base_to_a_run_time_power_builds_no_conditional():
    """``beta ** step`` as the bench holds a shared ``beta`` (``[1, 1]``): one element, so
    ``pow`` with no ``tf.cond`` choosing a square root; a table to a run-time power keeps the
    choice, and both give NumPy's values, a square root at 0.5."""
    from optreg.runtime.tf_functions import BINARY

    power = BINARY["**"]
    for base in (tf.constant([[0.9]]), tf.constant([[4.0, 9.0], [16.0, 25.0]])):
        step = tf.function(lambda x, y: power(x, y))
        exponent = tf.constant(0.5)
        ops = {op.type for op in step.get_concrete_function(base, exponent).graph.get_operations()}
        assert bool(ops & {"If", "StatelessIf"}) == (base.shape.num_elements() > 1), sorted(ops)
        for y in (0.5, 3.0):
            np.testing.assert_allclose(step(base, tf.constant(y)).numpy(), base.numpy() ** y, rtol=1e-6)
