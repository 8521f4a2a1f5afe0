"""The Keras options every optimizer accepts: weight decay, EMA, gradient accumulation, loss
scaling, clipping and schedules (for any hyperparameter), checked against Keras's own
optimizers, NumPy references and checkpoints; the spec's ``[options]`` table; sparse gradients;
slot dtypes; and ``optreg list PATTERN``."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import optreg
import optreg.keras
from optreg.cli import main
from optreg.errors import HyperparameterError, OptionError, SpecError
from optreg.runtime.spec_optimizer import SpecOptimizer
from optreg.spec.reader import load_spec, load_spec_text
from tests.helpers import REPO, SHAPES, random_problem
from tests.optimizer_table import CASES
from tests.table_core import numpy_momentum
from tests.test_optimizers import NEEDS_LOSS

STEPS = 50
#: Steps of the option battery against Keras (75 runs on both sides): every period its options
#: have (accumulation every 2 or 3 steps, EMA overwrites every 2 or 3, the schedule halving every
#: 10 updates) comes round at least once, and the last update is not an EMA overwrite (34 = 3k + 1 steps,
#: 17 updates when accumulating 2), so the EMA check below compares averages, not a copy.
OPTION_STEPS = 34
BUILTIN = sorted(entry.name for entry in optreg.registry if entry.source == "builtin")


def _decaying(learning_rate):
    """The schedule both sides get: halves every 10 steps, in a staircase."""
    return keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps=10, decay_rate=0.5, staircase=True)


#: Every option both optreg and Keras support, in five runs per optimizer (each option in at
#: least one, the last with all at once, to keep the battery quick); "schedule" swaps the
#: learning rate for a LearningRateSchedule.
OPTION_VARIANTS = [
    ("weight_decay+clipnorm", {"weight_decay": 0.05, "clipnorm": 0.5}),
    ("clipvalue+ema", {"clipvalue": 0.2, "use_ema": True, "ema_momentum": 0.9}),
    (
        "global_clipnorm+accumulation+loss_scale",
        {"global_clipnorm": 0.5, "gradient_accumulation_steps": 3, "loss_scale_factor": 8.0},
    ),
    ("schedule+ema_overwrite", {"schedule": True, "use_ema": True, "ema_momentum": 0.8, "ema_overwrite_frequency": 3}),
    (
        "everything",
        {
            "weight_decay": 0.05,
            "clipnorm": 0.5,
            "use_ema": True,
            "ema_overwrite_frequency": 2,
            "gradient_accumulation_steps": 2,
            "loss_scale_factor": 4.0,
            "schedule": True,
        },
    ),
]
KERAS_ROWS = [case for case in CASES if case.keras]


def _with_options(setting, options):
    """The constructor arguments: the case's setting with the options, and the schedule if asked."""
    kwargs = {**setting, **{k: v for k, v in options.items() if k != "schedule"}}
    if options.get("schedule"):
        kwargs["learning_rate"] = _decaying(setting.get("learning_rate", 0.01))
    return kwargs


def _trajectory(opt, starts, grads_per_step, scale=1.0):
    """Every variable after every step: one optimizer over one variable of each shape."""
    variables = [tf.Variable(start) for start in starts]
    out = []
    for grads in grads_per_step:
        opt.apply_gradients([(tf.constant(g * scale), v) for g, v in zip(grads, variables)])
        out.append([v.numpy().copy() for v in variables])
    return out, variables


def _problem(rng, steps=STEPS):
    """A start and ``steps`` gradients for each of the battery's shapes (one optimizer updates
    them all)."""
    problems = [random_problem(rng, shape, steps) for shape in SHAPES]
    starts = [start for start, _ in problems]
    return starts, [[grads[step] for _, grads in problems] for step in range(steps)]


def _assert_trajectories_agree(ours, theirs, rtol=1e-5):
    for step, (a_vars, b_vars) in enumerate(zip(ours, theirs), start=1):
        for a, b in zip(a_vars, b_vars):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, err_msg=f"step {step}")


@pytest.mark.parametrize(
    "variant", [options for _, options in OPTION_VARIANTS], ids=[name for name, _ in OPTION_VARIANTS]
)
@pytest.mark.parametrize("case", KERAS_ROWS, ids=str)
def test_every_option_matches_keras_step_for_step(case, variant, rng):
    """Every optimizer with a Keras counterpart, with each option Keras has, on variables of every
    shape at once for :data:`OPTION_STEPS` steps (gradients scaled by the loss scale, as a scaled
    loss gives them); with EMA, ``finalize_variable_values`` then gives the same averages."""
    setting = (case.keras_settings or case.settings)[0]
    kwargs = _with_options(setting, variant)
    starts, grads = _problem(rng, OPTION_STEPS)
    scale = variant.get("loss_scale_factor", 1.0)
    # op by op, which is quicker here; the XLA step is compared with it below
    ours_opt, theirs_opt = optreg.registry.create(case.name, jit_compile=False, **kwargs), case.keras(kwargs)
    ours, our_vars = _trajectory(ours_opt, starts, grads, scale)
    theirs, their_vars = _trajectory(theirs_opt, starts, grads, scale)
    _assert_trajectories_agree(ours, theirs)
    assert int(ours_opt.iterations) == int(theirs_opt._iterations) == OPTION_STEPS
    assert int(ours_opt.update_count) == int(theirs_opt.iterations)
    if variant.get("use_ema"):
        ours_opt.finalize_variable_values(our_vars)
        theirs_opt.finalize_variable_values(their_vars)
        _assert_trajectories_agree([[v.numpy() for v in our_vars]], [[v.numpy() for v in their_vars]])
        assert not np.allclose(our_vars[1].numpy(), ours[-1][1])  # the averages are not the last values


@pytest.mark.parametrize(
    "variant", [OPTION_VARIANTS[-1][1], OPTION_VARIANTS[3][1]], ids=["everything", "schedule+ema_overwrite"]
)
@pytest.mark.parametrize("how", ["op_by_op", "tf_function"])
def test_options_give_the_same_steps_op_by_op_and_inside_tf_function(how, variant, rng):
    """The XLA step (the default) against the op-by-op step, or against the step traced in a
    user's tf.function: the conditional parts (accumulate or update, overwrite or not) and the
    schedules agree."""
    kwargs = _with_options({"learning_rate": 0.1, "beta_1": 0.875}, variant)
    starts, grads = _problem(rng)
    reference, _ = _trajectory(optreg.registry.create("adam", **kwargs), starts, grads)
    if how == "op_by_op":
        other, _ = _trajectory(optreg.registry.create("adam", jit_compile=False, **kwargs), starts, grads)
    else:
        opt, variables = optreg.registry.create("adam", **kwargs), [tf.Variable(s) for s in starts]
        step = tf.function(lambda gs: opt.apply_gradients(zip(gs, variables)))
        other = []
        for g in grads:
            step([tf.constant(x) for x in g])
            other.append([v.numpy().copy() for v in variables])
    _assert_trajectories_agree(other, reference, rtol=1e-6)


def test_adamw_spec_is_keras_adamw_with_its_default_decay(rng):
    """specs/adamw.toml takes weight_decay 0.004 from [options]; the caller may override it."""
    assert load_spec(REPO / "specs" / "adamw.toml").option_defaults() == {"weight_decay": 0.004}
    assert optreg.registry.create("adamw").step_options.weight_decay == 0.004
    assert optreg.registry.create("adamw", weight_decay=None).step_options.weight_decay is None
    starts, grads = _problem(rng)
    setting = {"learning_rate": 0.1, "beta_1": 0.875, "beta_2": 1 - 2**-10}
    ours, _ = _trajectory(optreg.registry.create("adamw", **setting), starts, grads)
    theirs, _ = _trajectory(keras.optimizers.AdamW(**setting), starts, grads)
    _assert_trajectories_agree(ours, theirs)
    undecayed, _ = _trajectory(optreg.registry.create("adamw", weight_decay=None, **setting), starts, grads)
    adam, _ = _trajectory(keras.optimizers.Adam(**setting), starts, grads)
    _assert_trajectories_agree(undecayed, adam)


def test_the_keras_adapter_takes_the_spec_options_as_defaults(rng):
    starts, grads = _problem(rng)
    setting = {"learning_rate": 0.1, "beta_1": 0.875, "beta_2": 1 - 2**-10}
    adapter = optreg.keras.optimizer("adamw", **setting)
    assert adapter.weight_decay == 0.004
    ours, _ = _trajectory(adapter, starts, grads)
    theirs, _ = _trajectory(keras.optimizers.AdamW(**setting), starts, grads)
    _assert_trajectories_agree(ours, theirs)
    assert optreg.keras.optimizer("adamw", weight_decay=None).weight_decay is None
    rebuilt = optreg.keras.SpecOptimizer.from_config(optreg.keras.optimizer("adamw", weight_decay=None).get_config())
    assert rebuilt.weight_decay is None


# --- weight decay -----------------------------------------------------------------------------


@pytest.mark.parametrize("exclude", [{"var_names": ["bias"]}, {"var_names": ["^ke", "nothing"]}, {"var_list": "first"}])
def test_exclude_from_weight_decay_matches_keras(exclude, rng):
    """Variables are excluded by identity or by a regular expression searched in their name."""
    values = [rng.normal(size=(3,)).astype(np.float32) for _ in range(3)]
    grads = [[rng.normal(size=(3,)).astype(np.float32) for _ in range(3)] for _ in range(10)]
    names = ["kernel", "bias", "dense_bias_scale"]
    results = []
    for make in (lambda: optreg.registry.create("sgd", learning_rate=0.1, weight_decay=0.5),
                 lambda: keras.optimizers.SGD(learning_rate=0.1, weight_decay=0.5)):
        opt, variables = make(), [tf.Variable(v, name=n) for v, n in zip(values, names)]
        arguments = {"var_list": variables[:1]} if exclude.get("var_list") else exclude
        opt.exclude_from_weight_decay(**arguments)
        for g in grads:
            opt.apply_gradients(zip([tf.constant(x) for x in g], variables))
        results.append([v.numpy() for v in variables])
    _assert_trajectories_agree([results[0]], [results[1]], rtol=1e-6)
    plain = values[0] - 0.1 * sum(g[0] for g in grads)
    decays_first = "var_list" not in exclude and exclude["var_names"] != ["^ke", "nothing"]
    assert np.allclose(results[0][0], plain, rtol=1e-5) != decays_first


def test_weight_decay_needs_a_learning_rate():
    spec = load_spec_text(
        '[optimizer]\nname = "fixed"\nsummary = "fixed steps"\n[update]\nrule = ["var = var - 0.1 * grad"]\n'
    )
    with pytest.raises(OptionError, match="weight_decay needs a learning_rate hyperparameter"):
        SpecOptimizer(spec, weight_decay=0.1)


# --- schedules for any hyperparameter ----------------------------------------------------------


def test_any_hyperparameter_follows_a_schedule_like_the_numpy_reference(rng):
    """Adam with beta_1 and the learning rate scheduled (one callable of the step, one Keras
    schedule), against Adam in NumPy whose betas change every step, in float64 to 1e-12."""
    start, grads = random_problem(rng, (3, 4), STEPS, dtype=np.float64)
    beta_1 = lambda step: 0.5 + 0.4 * tf.minimum(tf.cast(step, tf.float64) / 20.0, 1.0)  # noqa: E731
    opt = optreg.registry.create("adam", learning_rate=_decaying(0.1), beta_1=beta_1)
    var = tf.Variable(start)
    ours = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
        ours.append(var.numpy().copy())
    x, m, v, b2, eps = start, np.zeros_like(start), np.zeros_like(start), 0.999, 1e-7
    b1_power = 1.0
    for t, (g, got) in enumerate(zip(grads, ours)):
        b1 = 0.5 + 0.4 * min(t / 20.0, 1.0)
        lr = np.float64(np.float32(0.1) * np.float32(0.5) ** np.float32(t // 10))  # Keras computes it in float32
        b1_power = b1 ** (t + 1)  # the rule's bias correction uses this step's beta_1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - lr * np.sqrt(1 - b2 ** (t + 1)) / (1 - b1_power) * m / (np.sqrt(v) + eps)
        np.testing.assert_allclose(got, x, rtol=1e-12, atol=1e-12, err_msg=f"step {t + 1}")
    assert opt.get_hyperparameter("beta_1") == pytest.approx(0.9)


def test_a_callable_of_no_argument_is_a_learning_rate_as_in_keras(rng):
    start, grads = random_problem(rng, (5,), 10, dtype=np.float64)
    rate = tf.Variable(0.05, dtype=tf.float64)
    opt = optreg.registry.create("momentum", learning_rate=lambda: rate * 2.0, momentum=0.5)
    var = tf.Variable(start)
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
    expected = numpy_momentum(start, grads, {"learning_rate": 0.1, "momentum": 0.5})[-1]
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-12)


def test_a_scheduled_hyperparameter_refuses_a_number_and_takes_a_new_schedule():
    opt = optreg.registry.create("sgd", learning_rate=lambda step: 0.1)
    with pytest.raises(HyperparameterError, match="learning_rate follows a schedule"):
        opt.learning_rate = 0.2
    var = tf.Variable([1.0])
    opt.apply_gradients([(tf.constant([1.0]), var)])
    opt.set_hyperparameter("learning_rate", lambda step: 0.5)
    opt.apply_gradients([(tf.constant([1.0]), var)])
    np.testing.assert_allclose(var.numpy(), [0.4], rtol=1e-6)
    with pytest.raises(HyperparameterError, match="has no hyperparameter 'beta'"):
        optreg.registry.create("sgd", beta=lambda step: 0.1)


def test_the_keras_adapter_schedules_any_hyperparameter_as_optreg_does(rng):
    beta_1 = keras.optimizers.schedules.PolynomialDecay(0.5, 30, end_learning_rate=0.9)
    starts, grads = _problem(rng)
    ours, _ = _trajectory(optreg.registry.create("adam", learning_rate=0.1, beta_1=beta_1), starts, grads)
    adapter = optreg.keras.optimizer("adam", learning_rate=0.1, beta_1=beta_1)
    theirs, _ = _trajectory(adapter, starts, grads)
    _assert_trajectories_agree(ours, theirs, rtol=1e-6)
    rebuilt = optreg.keras.SpecOptimizer.from_config(adapter.get_config())
    assert rebuilt.get_config() == adapter.get_config()


# --- configs and checkpoints --------------------------------------------------------------------


def test_config_round_trip_keeps_every_option_and_schedule(rng):
    options = {"weight_decay": 0.01, "use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 4,
               "gradient_accumulation_steps": 2, "loss_scale_factor": 2.0, "clipvalue": 1.0}
    original = optreg.registry.create("adamw", learning_rate=_decaying(0.1), **options)
    config = original.get_config()
    assert config["options"] == options
    assert config["hyperparameters"]["learning_rate"]["schedule"]["class_name"] == "ExponentialDecay"
    rebuilt = optreg.Optimizer.from_config(config)
    assert rebuilt.get_config() == config
    starts, grads = _problem(rng)
    _assert_trajectories_agree(_trajectory(rebuilt, starts, grads)[0], _trajectory(original, starts, grads)[0], rtol=0)
    undecayed = optreg.registry.create("adamw", weight_decay=None)
    assert optreg.Optimizer.from_config(undecayed.get_config()).step_options.weight_decay is None
    with pytest.raises(OptionError, match="plain callable, which a config cannot hold"):
        optreg.registry.create("sgd", learning_rate=lambda step: 0.1).get_config()


def test_checkpoint_holds_the_averages_and_the_accumulated_gradients(tmp_path, rng):
    """Stop mid-accumulation, restore into a new optimizer, continue: the same values as never
    stopping, and the same finalized averages."""
    options = {"learning_rate": 0.05, "use_ema": True, "ema_momentum": 0.9, "gradient_accumulation_steps": 3}
    start, grads = random_problem(rng, (4,), 12)
    var = tf.Variable(start)
    opt = optreg.registry.create("adam", **options)
    for g in grads[:7]:
        opt.apply_gradients([(tf.constant(g), var)])
    path = tf.train.Checkpoint(optimizer=opt, var=var).save(str(tmp_path / "ckpt"))
    for g in grads[7:]:
        opt.apply_gradients([(tf.constant(g), var)])
    restored_var = tf.Variable(np.zeros_like(start))
    restored = optreg.registry.create("adam", **options)
    restored.build([restored_var])
    tf.train.Checkpoint(optimizer=restored, var=restored_var).restore(path).assert_consumed()
    assert int(restored.iterations) == 7 and int(restored.update_count) == 2
    for g in grads[7:]:
        restored.apply_gradients([(tf.constant(g), restored_var)])
    np.testing.assert_array_equal(restored_var.numpy(), var.numpy())
    opt.finalize_variable_values([var])
    restored.finalize_variable_values([restored_var])
    np.testing.assert_array_equal(restored_var.numpy(), var.numpy())


def test_reset_clears_the_averages_and_the_accumulated_gradients(rng):
    start, grads = random_problem(rng, (4,), 5)
    opt = optreg.registry.create("sgd", learning_rate=0.1, use_ema=True, gradient_accumulation_steps=2)
    var = tf.Variable(start)
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
    opt.reset()
    assert not np.any(opt._averages[0].numpy()) and not np.any(opt._accumulators[0].numpy())


@pytest.mark.parametrize("compiled", ["compiled", "eager"])
def test_options_under_mirrored_strategy_match_a_single_device(compiled):
    """Weight decay, EMA with overwrites and gradient accumulation under MirroredStrategy over
    two logical CPUs: the replicas' copies stay identical and equal the single-device result."""
    from tests.test_distribute import run_distributed

    options = {"weight_decay": 0.01, "use_ema": True, "ema_overwrite_frequency": 3, "gradient_accumulation_steps": 2}
    result = run_distributed(["adam"], options, compiled)["adam"]
    assert result["iterations"] == result["single_iterations"] == 10
    for copies, reference in zip(result["copies"], result["single"]):
        first, second = (np.array(c) for c in copies)
        np.testing.assert_array_equal(first, second)
        np.testing.assert_allclose(first, np.array(reference), rtol=1e-6, atol=1e-6)


# --- loss scaling -------------------------------------------------------------------------------


def test_scale_loss_multiplies_and_the_gradients_are_divided():
    opt = optreg.registry.create("sgd", learning_rate=0.5, loss_scale_factor=1024.0)
    assert float(opt.scale_loss(tf.constant(3.0))) == 3072.0
    assert optreg.registry.create("sgd").scale_loss(3.0) == 3.0
    var = tf.Variable([2.0])
    with tf.GradientTape() as tape:
        loss = opt.scale_loss(tf.reduce_sum(var**2))
    opt.apply_gradients([(tape.gradient(loss, var), var)])
    np.testing.assert_allclose(var.numpy(), [0.0])  # 2 - 0.5 * (4 * 1024 / 1024)


# --- bad values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("weight_decay", -0.1, "weight_decay must be a finite number >= 0, got -0.1"),
        ("weight_decay", "0.1", "weight_decay must be a finite number >= 0, got '0.1'"),
        ("use_ema", 1, "use_ema must be true or false, got 1"),
        ("ema_momentum", 1.5, r"ema_momentum must be a number in \[0, 1\], got 1.5"),
        ("ema_overwrite_frequency", 0, "ema_overwrite_frequency must be a whole number >= 1, got 0"),
        ("ema_overwrite_frequency", 2.0, "ema_overwrite_frequency must be a whole number >= 1, got 2.0"),
        ("gradient_accumulation_steps", 1, "gradient_accumulation_steps must be a whole number >= 2, got 1"),
        ("loss_scale_factor", 0.0, "loss_scale_factor must be a finite number > 0, got 0.0"),
        ("loss_scale_factor", float("inf"), "loss_scale_factor must be a finite number > 0, got inf"),
    ],
)
def test_a_bad_option_value_is_one_clear_option_error(option, value, message):
    with pytest.raises(OptionError, match=f"^{message}$"):
        optreg.registry.create("adam", **{option: value})


def test_finalize_refuses_a_variable_it_never_updated():
    opt = optreg.registry.create("sgd", use_ema=True)
    with pytest.raises(OptionError, match="was never updated by this optimizer"):
        opt.finalize_variable_values([tf.Variable(1.0, name="stranger")])


# --- the spec's [options] table ----------------------------------------------------------------

SPEC_HEAD = '[optimizer]\nname = "opt"\nsummary = "a test spec"\n[hyperparameters]\nlearning_rate = { default = 0.1 }\n'
SPEC_RULE = '[update]\nrule = ["var = var - learning_rate * grad"]\n'


@pytest.mark.parametrize(
    "table, key, line, message",
    [
        (
            "[options]\nweight_decay = 0.1\ndecay = 0.5\n",
            "options.decay",
            8,
            "unknown option 'decay'; allowed: clipnorm",
        ),
        ('[options]\nuse_ema = "yes"\n', "options.use_ema", 7, "use_ema must be true or false"),
        (
            "[options]\ngradient_accumulation_steps = 1\n",
            "options.gradient_accumulation_steps",
            7,
            "must be a whole number >= 2",
        ),
        ("[options]\nclipnorm = 1.0\nclipvalue = 0.5\n", "options", 6, "set at most one of clipnorm"),
        ("options = 3\n", "options", 1, "must be a table"),
    ],
)
def test_a_bad_options_table_is_a_spec_error_with_file_key_and_line(table, key, line, message):
    text = table + SPEC_HEAD + SPEC_RULE if table.startswith("options =") else SPEC_HEAD + table + SPEC_RULE
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, source="my.toml")
    assert (caught.value.source, caught.value.key, caught.value.line) == ("my.toml", key, line)
    assert message in caught.value.message


@pytest.mark.parametrize("name", ["weight_decay", "use_ema", "loss_scale_factor", "gradient_accumulation_steps"])
def test_an_option_name_cannot_be_a_hyperparameter(name):
    with pytest.raises(SpecError, match=f"'{name}' is reserved"):
        load_spec_text(SPEC_HEAD + f"{name} = {{ default = 0.1 }}\n" + SPEC_RULE)


def test_spec_options_are_defaults_the_caller_overrides():
    spec = load_spec_text(SPEC_HEAD + "[options]\nclipnorm = 0.5\nuse_ema = true\n" + SPEC_RULE)
    assert spec.option_defaults() == {"clipnorm": 0.5, "use_ema": True}
    opt = SpecOptimizer(spec)
    assert opt.gradient_options.clipnorm == 0.5 and opt.step_options.use_ema
    opt = SpecOptimizer(spec, clipnorm=None, clipvalue=0.1, use_ema=False)
    assert opt.gradient_options.clipvalue == 0.1 and not opt.step_options.use_ema


def test_reading_the_options_table_does_not_import_tensorflow():
    code = (
        "import sys; from optreg.spec.reader import load_spec; from optreg import registry; "
        "load_spec('specs/adamw.toml'); registry.names('adam*'); assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- sparse gradients ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name in BUILTIN if name not in NEEDS_LOSS])
def test_gather_gradients_give_the_dense_update(name, rng):
    """The gradient of an embedding lookup is a tf.IndexedSlices with a repeated row; the update
    is the one of the dense gradient (repeated rows summed), for every built-in optimizer.

    Op by op: two XLA compilations per optimizer were most of this test's cost, and the XLA
    step's agreement with the op-by-op one is checked for every optimizer by test_optimizers.py's
    test_the_xla_step_and_the_op_by_op_step_agree (and for sparse gradients, both ways, by
    tests/test_sparse.py)."""
    table = rng.normal(size=(10, 4)).astype(np.float32)
    weights = [rng.normal(size=(5, 4)).astype(np.float32) for _ in range(20)]
    ids = tf.constant([1, 3, 1, 7, 1])
    sparse_var, dense_var = tf.Variable(table), tf.Variable(table)
    sparse_opt = optreg.registry.create(name, learning_rate=0.05, jit_compile=False)
    dense_opt = optreg.registry.create(name, learning_rate=0.05, jit_compile=False)
    for w in weights:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(sparse_var, ids) * w)
        grad = tape.gradient(loss, sparse_var)
        assert isinstance(grad, tf.IndexedSlices)
        sparse_opt.apply_gradients([(grad, sparse_var)])
        dense_grad = np.zeros_like(table)
        np.add.at(dense_grad, ids.numpy(), w)
        dense_opt.apply_gradients([(tf.constant(dense_grad), dense_var)])
    np.testing.assert_allclose(sparse_var.numpy(), dense_var.numpy(), rtol=1e-6, atol=1e-6)
    assert not np.array_equal(sparse_var.numpy()[[1, 3, 7]], table[[1, 3, 7]])
    if name not in _STATE_DEFINES_THE_VARIABLE:
        # 20 decays in float32 round up to 40 times (about 2.4e-6 relative); the power rounds once
        np.testing.assert_allclose(sparse_var.numpy()[[0, 2]], table[[0, 2]] * (1 - _decay_rate(name)), rtol=3e-6)


#: Optimizers whose every step moves rows without a gradient too: FTRL writes var = f(linear,
#: accumulator), 0 while both are untouched; Nero re-centres and re-normalises every neuron of a
#: kernel, each a column touching every row; AdamP's whole-tensor projection subtracts a multiple
#: of the whole variable from the step; Fromage divides the whole variable by sqrt(1 + lr ** 2);
#: Amos decays the whole variable by gamma / 2, gamma from the mean squared gradient over it.
#: Shampoo and SOAP precondition across rows: the row Gram matrix's eigenvectors mix untouched
#: rows with touched ones by rounding (Shampoo's move by 4e-7; SOAP's Adam normalises that
#: rounding to steps of the learning rate's size in float32, see tests/test_matrix_optimizers.py).
#: Noisy SGD adds its noise to every row, a gradient or not.
_STATE_DEFINES_THE_VARIABLE = {"ftrl", "nero", "adamp", "fromage", "amos", "shampoo", "soap", "noisy_sgd"}


def _decay_rate(name):
    """How much rows that are never gathered shrink over the 20 steps: by weight decay only."""
    wd = optreg.registry.create(name).step_options.weight_decay
    return 0.0 if wd is None else 1 - np.float32(1 - np.float32(wd) * np.float32(0.05)) ** 20


# --- slot dtypes ---------------------------------------------------------------------------------


def test_a_spec_slot_dtype_and_the_slot_dtype_option():
    rule = '[update]\nrule = ["m = 0.5 * m + grad", "var = var - learning_rate * m"]\n'
    spec = load_spec_text(SPEC_HEAD + '[slots]\nm = { dtype = "float32" }\n' + rule)
    var = tf.Variable(tf.ones([3], tf.bfloat16))
    opt = SpecOptimizer(spec)
    opt.apply_gradients([(tf.ones([3], tf.bfloat16), var)])
    assert opt.slots_for(var)["m"].dtype == tf.float32
    overridden = SpecOptimizer(spec, slot_dtype="float64")
    overridden.build([var])
    assert overridden.slots_for(var)["m"].dtype == tf.float64


def _adam_step_in_float32(var, m, v, g, step, hp):
    """One Adam step computed in float32 from a half-precision variable, as optreg's rule does
    with float32 slots (the step size folded in float64, then cast)."""
    f32 = np.float32
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    alpha = f32(hp["learning_rate"] * np.sqrt(1 - b2**step) / (1 - b1**step))
    m = f32(b1) * m + f32(1 - b1) * g
    v = f32(b2) * v + f32(1 - b2) * np.square(g)
    return var - alpha * m / (np.sqrt(v) + f32(eps)), m, v


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_variables_with_float32_slots(dtype, rng):
    """Adam on a half-precision variable with float32 slots: each step is computed in float32
    (checked step by step against NumPy, the variable to within one rounding of its dtype) and
    only the variable is rounded. In bfloat16 that keeps far closer to Keras's Adam in float32
    than Keras's own bfloat16 Adam, whose slots round beta_2 = 1 - 2**-10 to 1."""
    start, grads = random_problem(rng, (64,), STEPS)
    hp = {"learning_rate": 0.01, "beta_1": 0.875, "beta_2": 1 - 2**-10, "epsilon": 1e-3}
    half = tf.cast(start, dtype)
    ours, opt = tf.Variable(half), optreg.registry.create("adam", slot_dtype="float32", **hp)
    reference, keras_opt = tf.Variable(tf.cast(half, tf.float32)), keras.optimizers.Adam(**hp)
    keras_half, keras_half_opt = tf.Variable(half), keras.optimizers.Adam(**hp)
    ulp = 2.0**-10 if dtype == "float16" else 2.0**-7
    for step, g in enumerate(grads, start=1):
        g_half = tf.cast(g, dtype)
        before = tf.cast(ours, tf.float32).numpy()
        slots = (
            {name: slot.numpy() for name, slot in opt.slots_for(ours).items()} if step > 1 else {"m": 0 * g, "v": 0 * g}
        )
        opt.apply_gradients([(g_half, ours)])
        expected, m, v = _adam_step_in_float32(
            before, slots["m"], slots["v"], tf.cast(g_half, tf.float32).numpy(), step, hp
        )
        np.testing.assert_allclose(opt.slots_for(ours)["m"].numpy(), m, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(opt.slots_for(ours)["v"].numpy(), v, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(tf.cast(ours, tf.float32).numpy(), expected, rtol=ulp, atol=ulp)
        keras_opt.apply_gradients([(tf.cast(g_half, tf.float32), reference)])
        keras_half_opt.apply_gradients([(g_half, keras_half)])
    assert opt.slots_for(ours)["m"].dtype == tf.float32 and ours.dtype == dtype
    scale = np.maximum(np.abs(reference.numpy()), 1.0)
    our_error = (np.abs(tf.cast(ours, tf.float32).numpy() - reference.numpy()) / scale).mean()
    keras_error = (np.abs(tf.cast(keras_half, tf.float32).numpy() - reference.numpy()) / scale).mean()
    # each step rounds the variable by at most half an ulp: a random walk of 50 such roundings
    assert our_error < np.sqrt(STEPS) / 2 * ulp
    if dtype == "bfloat16":
        assert our_error < keras_error / 3


# --- optreg list PATTERN ---------------------------------------------------------------------------


def test_show_prints_the_spec_options():
    result = CliRunner().invoke(main, ["show", "adamw"])
    assert "options: weight_decay = 0.004" in result.output.splitlines()


def test_names_and_list_filter_by_a_shell_wildcard():
    adams = optreg.registry.names("adam*")
    assert {"adam", "adamw"} <= set(adams) and all(name.startswith("adam") for name in adams)
    assert "gradient_descent" in optreg.registry.names("*descent")
    assert optreg.registry.names("s[gx]d") == ["sgd"]
    assert optreg.registry.names("nothing*") == []
    result = CliRunner().invoke(main, ["list", "adam*"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()[1:]] == adams
    result = CliRunner().invoke(main, ["list", "builtin:s?d", "--format", "json"])
    assert [row["name"] for row in json.loads(result.output)] == ["sgd"]
