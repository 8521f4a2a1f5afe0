"""The shared battery: every optimizer in the table against its reference, and every
registered optimizer through the same protocol checks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from tests import battery
from tests.helpers import SHAPES, random_problem
from tests.optimizer_table import CASES, LOSS_NUMPY_CASES
from tests.table_core import numpy_adam

ALL_BUILTIN = sorted(entry.name for entry in optreg.registry if entry.source == "builtin")
#: The built-ins whose step needs the loss (``needs_loss``): they refuse ``apply_gradients``, so
#: the checks below that drive optimizers with gradients alone leave them out, and their rows'
#: ``loss_numpy`` references check them through ``minimize`` instead
#: (test_only_the_optimizers_that_need_the_loss_are_left_out_of_the_gradient_checks).
NEEDS_LOSS = ("adahessian",)
#: Every built-in that the gradient-driven checks step with ``apply_gradients``.
BUILTIN = [name for name in ALL_BUILTIN if name not in NEEDS_LOSS]
STEPS = 50
CASE_BY_NAME = {case.name: case for case in CASES}
KERAS_ROWS = [case for case in CASES if case.keras]
NUMPY_ROWS = [case for case in CASES if case.numpy]


def _run_optreg(name, setting, start, grads):
    var = tf.Variable(start)
    opt = optreg.registry.create(name, **setting)
    trajectory = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
        trajectory.append(var.numpy().copy())
    return trajectory


def _run_keras(factory, setting, start, grads):
    var = tf.Variable(start)
    opt = factory(setting)
    trajectory = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
        trajectory.append(var.numpy().copy())
    return trajectory


def test_every_registered_optimizer_has_a_reference():
    assert {case.name for case in CASES} == set(ALL_BUILTIN)
    assert all(case.numpy or case.keras or case.loss_numpy for case in CASES)


def test_only_the_optimizers_that_need_the_loss_are_left_out_of_the_gradient_checks():
    """NEEDS_LOSS is exactly the built-ins whose class declares needs_loss; each refuses
    apply_gradients with one error saying to call minimize, and steps through minimize."""
    declared = [name for name in ALL_BUILTIN if type(optreg.registry.create(name)).needs_loss]
    assert declared == list(NEEDS_LOSS)
    assert {case.name for case in LOSS_NUMPY_CASES} == set(NEEDS_LOSS)
    for name in NEEDS_LOSS:
        x = tf.Variable([1.0, -2.0])
        opt = optreg.registry.create(name, learning_rate=0.1)
        refusal = rf"^{name} needs the loss .*: call minimize\(loss_fn, variables\)$"
        with pytest.raises(optreg.OptregError, match=refusal):
            opt.apply_gradients([(tf.constant([1.0, 1.0]), x)])
        opt.minimize(lambda x=x: tf.reduce_sum(x**2), [x])
        assert int(opt.iterations) == 1 and np.all(x.numpy() != [1.0, -2.0])


@pytest.mark.parametrize("case", LOSS_NUMPY_CASES, ids=str)
def test_matches_numpy_reference_on_a_quadratic_loss(case):
    """An optimizer that needs the loss, stepped with minimize on ½xᵀAx + bᵀx of every shape's
    variable together (float64, 20 steps; one optimizer per setting), against its row's
    loss_numpy reference: on a quadratic the Hessian-vector products are exact, Az."""
    from tests.helpers import SEED, SHAPES

    rng = np.random.default_rng(SEED)
    starts = [rng.normal(size=shape) for shape in SHAPES]
    n = sum(int(np.prod(shape)) for shape in SHAPES)
    root = rng.normal(size=(n, n))
    A, b = root @ root.T / n + 0.5 * np.eye(n), rng.normal(size=n)
    A_tf, b_tf = tf.constant(A), tf.constant(b)
    defaults = optreg.registry.get(case.name).defaults()
    for setting in case.settings:
        variables = [tf.Variable(start) for start in starts]
        opt = optreg.registry.create(case.name, **setting)

        def loss(variables=variables):
            x = tf.concat([tf.reshape(v, [-1]) for v in variables], 0)
            return 0.5 * tf.tensordot(x, tf.linalg.matvec(A_tf, x), 1) + tf.tensordot(b_tf, x, 1)

        reference = case.loss_numpy(starts, A, b, 20, {**defaults, **setting})
        for step, expected in enumerate(reference, start=1):
            opt.minimize(loss, variables)
            for shape, var, want in zip(SHAPES, variables, expected):
                where = f"{setting} {shape} step {step}"
                np.testing.assert_allclose(var.numpy(), want, rtol=1e-10, atol=1e-12, err_msg=where)


@pytest.mark.parametrize("case", KERAS_ROWS, ids=str)
def test_matches_keras_step_for_step(case):
    """Every setting compared with Keras (``keras_settings``, else ``settings``) on every shape,
    50 float32 steps, each step within the row's tolerance; one optreg build for all the shapes
    and settings that allow it (tests/battery.py says how, and why that changes no number)."""
    settings = case.keras_settings or case.settings
    cases = battery.problems(SHAPES, STEPS)
    ours, reused = battery.optreg_trajectories(case.name, settings, cases)
    theirs = battery.keras_trajectories(case.keras, settings, cases)
    wrong = battery.failures(case.name, settings, SHAPES, ours, theirs, case.keras_rtol, case.keras_rtol, reused)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("case", NUMPY_ROWS, ids=str)
def test_matches_numpy_reference_in_float64(case):
    """Every setting on every shape, 50 float64 steps, each within 1e-12 of the row's NumPy
    reference (given the setting over the spec's defaults); built as in the Keras comparison."""
    cases = battery.problems(SHAPES, STEPS, dtype=np.float64)
    ours, reused = battery.optreg_trajectories(case.name, case.settings, cases)
    defaults = optreg.registry.get(case.name).defaults()
    reference = [
        [case.numpy(start.copy(), [g.copy() for g in grads], {**defaults, **setting}) for start, grads in cases]
        for setting in case.settings
    ]
    wrong = battery.failures(case.name, case.settings, SHAPES, ours, reference, 1e-12, 1e-12, reused)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_default_adam_is_closer_to_the_exact_algorithm_than_keras(shape, rng):
    """Keras rounds beta_1 and beta_2 to float32 before its bias corrections, which moves each
    step by about 1e-5 relative; optreg computes them in float64 and stays within float32
    rounding of the exact algorithm."""
    import keras

    start, grads = random_problem(rng, shape, STEPS)
    exact_grads = [g.astype(np.float64) for g in grads]
    exact = np.array(numpy_adam(start.astype(np.float64), exact_grads, {"learning_rate": 0.1}))
    ours = np.array(_run_optreg("adam", {"learning_rate": 0.1}, start, grads))
    theirs = np.array(_run_keras(lambda hp: keras.optimizers.Adam(**hp), {"learning_rate": 0.1}, start, grads))
    scale = np.maximum(np.abs(exact), 1.0)
    our_error = np.max(np.abs(ours - exact) / scale)
    keras_error = np.max(np.abs(theirs - exact) / scale)
    assert our_error < 1e-6
    assert our_error < keras_error
    np.testing.assert_allclose(ours, theirs, rtol=5e-5, atol=5e-5)


@pytest.mark.parametrize("name", BUILTIN)
def test_the_xla_step_and_the_op_by_op_step_agree(name, rng):
    """XLA fuses each step, which may change the last bit of a rounding: the two paths agree to
    1e-6 over 50 steps (fused multiply-adds round once where two ops round twice), or to the
    looser tolerance a row records for a rule whose reductions XLA sums in another order. A rule
    calling an eigendecomposition refuses XLA and runs op by op under "auto", bit for bit."""
    # every rank up to 3 and a second vector, in one compiled call (each variable more costs
    # about as much to compile as to step op by op 50 times; 11 variables took twice as long)
    shapes = [(7,), (3, 4), (2, 3, 4), (2,)]
    # numbers are drawn for 40 small variables, as when 40 were trained, and 4 are kept: the
    # variables trained see the very starts and gradients they saw then
    drawn = [(7,), (3, 4), (2, 3, 4)] + [(2,)] * 40
    starts = [rng.normal(size=s).astype(np.float32) for s in drawn][: len(shapes)]
    fused_vars, plain_vars = [tf.Variable(s) for s in starts], [tf.Variable(s) for s in starts]
    without_xla = optreg.registry.create(name).runs_without_xla
    if without_xla:  # an eigendecomposition: XLA is refused, and "auto" runs op by op
        with pytest.raises(optreg.OptionError, match="calls an eigendecomposition, which XLA computes"):
            optreg.registry.create(name, jit_compile=True)
    fused = optreg.registry.create(name, learning_rate=0.05, jit_compile="auto" if without_xla else True)
    plain = optreg.registry.create(name, learning_rate=0.05, jit_compile=False)
    for _ in range(50):
        grads = [tf.constant(g) for g in [rng.normal(size=s).astype(np.float32) for s in drawn][: len(shapes)]]
        fused.apply_gradients(zip(grads, fused_vars))
        plain.apply_gradients(zip(grads, plain_vars))
    assert len(fused._runtime.compiled) == (0 if without_xla else 1)
    tolerance = 0.0 if without_xla else CASE_BY_NAME[name].xla_tolerance
    for a, b in zip(fused_vars, plain_vars):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tolerance, atol=tolerance)


def test_jit_compile_is_checked():
    with pytest.raises(optreg.OptionError, match="jit_compile must be True, False or 'auto'"):
        optreg.registry.create("adam", jit_compile="yes")


@pytest.mark.parametrize("name", ALL_BUILTIN)  # the bench steps through minimize: AdaHessian too
def test_a_bench_sweep_equals_its_runs_made_alone(name):
    """Two settings of every optimizer benched together (stacked side by side in one loop when
    its updates are elementwise) end where each ends when benched alone: the same status and
    iteration, and parameters within float32 rounding (XLA may fuse a 2-run loop differently)."""
    from optreg.bench.runner import plan_bench
    from tests.helpers import run_bench

    entry = optreg.registry.get(name)
    varied = next(h for h in entry.hyperparameters if h.type == "float" and not getattr(h, "fixed", False))
    settings = [{varied.name: varied.default}, {varied.name: varied.default / 2}]
    together = run_bench(plan_bench(optreg.registry, [name], "booth", settings, max_iters=60))
    for setting, result in zip(settings, together):
        (alone,) = run_bench(plan_bench(optreg.registry, [name], "booth", [setting], max_iters=60))
        assert (result.status, result.iterations) == (alone.status, alone.iterations), setting
        np.testing.assert_allclose(result.final_params, alone.final_params, rtol=1e-6, atol=1e-7)
    assert together[0].final_params != together[1].final_params


# --- the public extension points, and the deprecated names they replace ---------------------


def _half_step_class(old_names: bool):
    """A Python optimizer stepping ``var -= scale * grad``, ``scale`` from its prepared step,
    written with the public names or with the deprecated underscored ones."""
    if old_names:
        with pytest.warns(DeprecationWarning) as caught:

            class OldStyle(optreg.Optimizer):
                def _prepare_step(self, step):
                    return tf.constant(0.5)

                def _update_variable(self, grad, var, slots, prepared):
                    var.assign_sub(prepared * grad)

        assert sorted(str(w.message).split()[2] for w in caught) == ["_prepare_step,", "_update_variable,"]
        return OldStyle

    class NewStyle(optreg.Optimizer):
        def prepare_step(self, step):
            return tf.constant(0.5)

        def update_variable(self, grad, var, slots, prepared):
            var.assign_sub(prepared * grad)

    return NewStyle


@pytest.mark.parametrize("old_names", [False, True], ids=["public", "deprecated"])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_python_optimizers_override_the_public_names_or_the_deprecated_ones(old_names, jit_compile):
    x = tf.Variable([1.0, 3.0])
    opt = _half_step_class(old_names)(jit_compile=jit_compile)
    opt.apply_gradients([(tf.constant([1.0, 2.0]), x)])
    np.testing.assert_allclose(x.numpy(), [0.5, 2.0])


def test_the_deprecated_names_still_answer_for_a_public_style_optimizer():
    x = tf.Variable([1.0])
    opt = _half_step_class(old_names=False)(jit_compile=False)
    opt.build([x])
    with pytest.warns(DeprecationWarning, match="prepare_step"):
        prepared = opt._prepare_step(tf.constant(1.0, tf.float64))
    with pytest.warns(DeprecationWarning, match="update_variable"):
        opt._update_variable(tf.constant([2.0]), x, opt.slots_for(x), prepared)
    np.testing.assert_allclose(x.numpy(), [0.0])


def test_an_optimizer_without_an_update_says_what_to_implement():
    class Nothing(optreg.Optimizer):
        pass

    with pytest.raises(NotImplementedError, match="update_variable"):
        Nothing(jit_compile=False).apply_gradients([(tf.constant([1.0]), tf.Variable([1.0]))])


def test_built_in_optimizers_use_only_the_public_names():
    from optreg.runtime.extension_points import DEPRECATED_NAMES
    from optreg.runtime.lookahead import Lookahead
    from optreg.runtime.prodigy import Prodigy
    from optreg.runtime.spec_optimizer import SpecOptimizer

    for cls in (SpecOptimizer, Lookahead, Prodigy):
        assert not set(DEPRECATED_NAMES.values()) & set(vars(cls)), cls.__name__
