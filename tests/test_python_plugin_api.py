"""What a Python optimizer written against the public API can rely on: its hyperparameters read
inside a traced step, a declaration that its step must not be XLA-compiled (honoured by
``apply_gradients`` and the bench loop), and slots of any shape through ``slot_initial_value``.

The optimizers below are ordinary plugin classes, registered through the real plugin host by
import path, as an installed plugin registers its own."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.bench.execute import run_bench
from optreg.bench.runner import plan_bench
from optreg.catalog.registry import Registry
from optreg.plugins.host import PluginHost, PluginInfo

NO_AUTOLOAD = {"OPTREG_DISABLE_PLUGIN_AUTOLOAD": "1"}

LEARNING_RATE = optreg.Hyperparameter("learning_rate", 0.1, "float", 0.0, None, "step size")
SCALE = optreg.Hyperparameter("scale", 1.0, "float", 0.0, None, "fixed factor of the step", fixed=True)


class ReadsItsHyperparameters(optreg.Optimizer):
    """Gradient descent whose step reads its hyperparameters with get_hyperparameter."""

    optimizer_name = "reads_hyper"
    summary = "gradient descent through get_hyperparameter"
    hyperparameter_specs = (LEARNING_RATE, SCALE)

    @property
    def supports_stacked_runs(self) -> bool:
        return True

    def update_variable(self, grad, var, slots, prepared):
        scale = self.get_hyperparameter("scale")
        assert isinstance(scale, float)  # fixed: a Python number even inside the trace
        rate = tf.cast(self.get_hyperparameter("learning_rate"), var.dtype)
        var.assign_sub(scale * rate * grad)


class NeedsNumpy(optreg.Optimizer):
    """Gradient descent through tf.numpy_function, which XLA cannot compile."""

    optimizer_name = "needs_numpy"
    summary = "gradient descent through a NumPy callback"
    hyperparameter_specs = (LEARNING_RATE,)
    xla_compatible = False

    def update_variable(self, grad, var, slots, prepared):
        rate = tf.cast(self.get_hyperparameter("learning_rate"), var.dtype)
        step = tf.numpy_function(lambda g: np.asarray(g * 1.0, g.dtype), [grad], grad.dtype, stateful=False)
        var.assign_sub(rate * tf.reshape(step, tf.shape(var)))


class CompilesNumpy(NeedsNumpy):
    """The same step without the declaration."""

    optimizer_name = "compiles_numpy"
    xla_compatible = True


class FullMatrix(optreg.Optimizer):
    """Full-matrix AdaGrad on a vector: a [n, n] slot started at the identity by slot_initial_value."""

    optimizer_name = "full_matrix"
    summary = "full-matrix AdaGrad"
    hyperparameter_specs = (LEARNING_RATE,)
    slot_specs = (optreg.Slot("gram", doc="I + Σ g gᵀ, [n, n]"),)

    def slot_initial_value(self, slot, var):
        return tf.eye(int(var.shape[0]), dtype=var.dtype)

    def update_variable(self, grad, var, slots, prepared):
        gram = slots["gram"]
        gram.assign_add(grad[:, None] * grad[None, :])
        rate = tf.cast(self.get_hyperparameter("learning_rate"), var.dtype)
        var.assign_sub(rate * tf.linalg.solve(gram, grad[:, None])[:, 0])


class Plugin:
    @optreg.hookimpl
    def optreg_register_optimizers(self, register):
        for cls in (ReadsItsHyperparameters, NeedsNumpy, CompilesNumpy, FullMatrix):
            register(optreg.PythonOptimizer(
                cls.optimizer_name, cls.summary, f"{__name__}:{cls.__name__}", cls.hyperparameter_specs
            ))


@pytest.fixture(scope="module")
def registry():
    info = PluginInfo("api", "optreg-api", "1.0")
    return Registry(environ=NO_AUTOLOAD, host=lambda: PluginHost(environ=NO_AUTOLOAD, plugins=[(Plugin(), info)]))


# --- get_hyperparameter inside a traced step ------------------------------------------------


def test_get_hyperparameter_inside_the_compiled_step_follows_set_hyperparameter(registry):
    opt = registry.create("reads_hyper", learning_rate=0.5, scale=2.0)
    assert opt.jit_compile == "auto" and opt.compiles_with_xla  # the default: one XLA-compiled step
    x = tf.Variable([1.0, -2.0])
    opt.apply_gradients([(tf.constant([1.0, 1.0]), x)])
    np.testing.assert_allclose(x.numpy(), [0.0, -3.0])
    opt.learning_rate = 0.25  # read by the step already compiled: no constant was baked in
    opt.apply_gradients([(tf.constant([1.0, 1.0]), x)])
    np.testing.assert_allclose(x.numpy(), [-0.5, -3.5])
    assert opt.get_hyperparameter("learning_rate") == 0.25  # eagerly still a Python number
    traced = tf.function(lambda: opt.get_hyperparameter("learning_rate"))()
    assert traced.dtype == tf.float64 and float(traced) == 0.25


def test_get_hyperparameter_reads_each_stacked_run_in_the_bench(registry):
    """The bench stacks the runs in one XLA-compiled loop: each must read its own rate, so the
    plugin's runs end where the built-in gradient descent's runs with the same rates end."""
    settings = [{"learning_rate": 0.01}, {"learning_rate": 0.002}]
    ours = run_bench(plan_bench(registry, ["reads_hyper"], "quadratic", settings, max_iters=30))
    theirs = run_bench(plan_bench(registry, ["gradient_descent"], "quadratic", settings, max_iters=30))
    assert [r.final_loss for r in ours] == pytest.approx([r.final_loss for r in theirs], rel=1e-6)
    assert ours[0].final_loss != pytest.approx(ours[1].final_loss, rel=1e-3)


# --- a step that must not be XLA-compiled ----------------------------------------------------


def test_without_the_declaration_xla_cannot_compile_the_step(registry):
    """The witness that the next tests test something: the same step, compiled, fails."""
    with pytest.raises(Exception, match="(?i)PyFunc|EagerPyFunc|numpy_function|compil"):
        registry.create("compiles_numpy").apply_gradients([(tf.constant([1.0]), tf.Variable([1.0]))])


def test_a_step_declared_not_xla_compatible_runs_uncompiled(registry):
    opt = registry.create("needs_numpy", learning_rate=0.5)
    assert not opt.compiles_with_xla
    x = tf.Variable([1.0, 2.0])
    for _ in range(2):
        opt.apply_gradients([(tf.constant([1.0, 2.0]), x)])
    np.testing.assert_allclose(x.numpy(), [0.0, 0.0])
    lookahead = optreg.Lookahead(registry.create("needs_numpy"))
    assert not lookahead.compiles_with_xla
    lookahead.apply_gradients([(tf.constant([1.0]), tf.Variable([1.0]))])


def test_jit_compile_true_is_refused_for_a_step_declared_not_xla_compatible(registry):
    with pytest.raises(optreg.OptionError, match="needs_numpy declares xla_compatible = False"):
        registry.create("needs_numpy", jit_compile=True)
    with pytest.raises(optreg.OptionError, match="inner optimizer 'needs_numpy' must not be XLA-compiled"):
        optreg.Lookahead(registry.create("needs_numpy"), jit_compile=True)


def test_the_bench_runs_a_step_declared_not_xla_compatible_beside_compiled_ones(registry):
    """The bench compiles its loops with XLA by default; the declared optimizer's loop is not,
    and it shares no loop with the others, which stay compiled."""
    settings = [{"learning_rate": 0.01}]
    plan = plan_bench(registry, ["needs_numpy", "gradient_descent"], "quadratic", settings, max_iters=30)
    ours, theirs = run_bench(plan, jit_compile=True)
    assert ours.optimizer == "needs_numpy" and theirs.optimizer == "gradient_descent"
    assert ours.final_loss == pytest.approx(theirs.final_loss, rel=1e-6)


# --- slots of any shape through slot_initial_value -------------------------------------------


def numpy_full_matrix(x, grads, rate):
    gram = np.eye(len(x))
    out = []
    for g in grads:
        gram = gram + np.outer(g, g)
        x = x - rate * np.linalg.solve(gram, g)
        out.append(x)
    return out


def test_a_matrix_slot_from_slot_initial_value_steps_resets_and_checkpoints(registry, tmp_path):
    rng = np.random.default_rng(3)
    start, grads = rng.normal(size=3), rng.normal(size=(6, 3))
    opt = registry.create("full_matrix", learning_rate=0.3)
    x = tf.Variable(start)
    for g in grads[:3]:
        opt.apply_gradients([(tf.constant(g), x)])
    assert opt.slots_for(x)["gram"].shape == (3, 3)
    path = tf.train.Checkpoint(optimizer=opt, x=x).save(str(tmp_path / "ckpt"))
    resumed, y = registry.create("full_matrix", learning_rate=0.3), tf.Variable(np.zeros(3))
    resumed.build([y])
    tf.train.Checkpoint(optimizer=resumed, x=y).restore(path).assert_consumed()
    for g in grads[3:]:
        resumed.apply_gradients([(tf.constant(g), y)])
    np.testing.assert_allclose(y.numpy(), numpy_full_matrix(start, grads, 0.3)[-1], rtol=1e-10)
    resumed.reset()
    np.testing.assert_array_equal(resumed.slots_for(y)["gram"].numpy(), np.eye(3))
