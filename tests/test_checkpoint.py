"""Checkpoints: slots, iterations and skip counts restore, before or after the first step, and a
run resumed in a new process continues bit for bit; configs rebuild every optimizer."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

import optreg
from tests.helpers import REPO
from tests.test_optimizers import BUILTIN

SHAPES = [(3,), (2, 4)]
#: The resume test's save point and last step: past the periods of every built-in's periodic
#: parts (Lookahead's and Ranger's synchronisation, SOAP's eigenbasis refresh every 10 steps).
SAVED_AT, LAST = 25, 50


def gradients(step: int):
    """The same gradients in every process, from the step number alone."""
    rng = np.random.default_rng(1000 + step)
    return [tf.constant(rng.normal(size=shape).astype(np.float32)) for shape in SHAPES]


def fresh_variables():
    return [tf.Variable(np.full(shape, 0.5, np.float32)) for shape in SHAPES]


def train(opt, variables, start, stop):
    for step in range(start, stop):
        opt.apply_gradients(zip(gradients(step), variables))


RESUME_SCRIPT = """
import json, sys
sys.path.insert(0, {repo!r})
import optreg, tensorflow as tf
from tests.test_checkpoint import fresh_variables, train
resumed = {{}}
for name, path in json.loads({paths!r}).items():
    variables = fresh_variables()
    opt = optreg.registry.create(name, learning_rate=0.05)
    tf.train.Checkpoint(optimizer=opt, variables=variables).restore(path).assert_existing_objects_matched()
    train(opt, variables, {saved_at}, {last})
    resumed[name] = [[v.numpy().tolist() for v in variables], int(opt.iterations)]
print(json.dumps(resumed))
"""


@pytest.fixture(scope="module")
def resumed_in_a_new_process(tmp_path_factory):
    """Every built-in trained 25 steps and saved here, then restored and trained 25 more in one
    fresh process (starting TensorFlow is the cost); while that process runs, the optimizers
    saved here go on for 25 more steps as if they had never been saved (saving reads the
    state, it changes nothing, so they are the run that never stopped; one XLA compilation per
    built-in here, not two): name → ((variables, iterations) resumed, variables uninterrupted)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    paths, running = {}, {}
    for name in BUILTIN:
        variables, opt = fresh_variables(), optreg.registry.create(name, learning_rate=0.05)
        train(opt, variables, 0, SAVED_AT)
        paths[name] = tf.train.Checkpoint(optimizer=opt, variables=variables).save(str(folder / name / "ckpt"))
        running[name] = opt, variables
    script = RESUME_SCRIPT.format(repo=str(REPO), paths=json.dumps(paths), saved_at=SAVED_AT, last=LAST)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=out, stderr=err, text=True)
        try:
            uninterrupted = {}
            for name, (opt, variables) in running.items():
                train(opt, variables, SAVED_AT, LAST)
                assert int(opt.iterations) == LAST
                uninterrupted[name] = [v.numpy() for v in variables]
            returncode = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        out.seek(0)
        err.seek(0)
        assert returncode == 0, err.read()
        resumed = json.loads(out.read().strip().splitlines()[-1])
    return {name: (resumed[name], uninterrupted[name]) for name in BUILTIN}


@pytest.mark.parametrize("name", BUILTIN)
def test_resuming_in_a_new_process_equals_never_stopping(name, resumed_in_a_new_process):
    (resumed, iterations), uninterrupted = resumed_in_a_new_process[name]
    assert iterations == LAST
    for a, b in zip(resumed, uninterrupted):
        np.testing.assert_array_equal(np.array(a, np.float32), b)


@pytest.mark.parametrize("name", BUILTIN)
def test_restoring_before_the_first_step_gives_each_variable_its_own_state(name, tmp_path):
    """The checkpoint keeps each slot under the variable it belongs to (TensorFlow's slot
    variables), so a fresh optimizer restored before its first step, its variables bound to the
    checkpoint only afterwards, first stepped with a None gradient and in the other order, gives
    every variable its own saved state."""
    # op by op: where the state is kept does not depend on the compile mode, and each of the
    # step's four variable lists would cost an XLA compilation (compiled steps' checkpoints are
    # test_optimizers' and the resume test's)
    settings = {"learning_rate": 0.05, "skip_nonfinite": True, "jit_compile": False}
    variables, opt = fresh_variables(), optreg.registry.create(name, **settings)
    train(opt, variables, 0, 7)
    opt.apply_gradients([(tf.constant([np.nan, 0.0, 0.0]), variables[0])])
    path = tf.train.Checkpoint(optimizer=opt, variables=variables).save(str(tmp_path / "ckpt"))

    restored_variables = fresh_variables()
    restored = optreg.registry.create(name, **settings)
    checkpoint = tf.train.Checkpoint(optimizer=restored)
    status = checkpoint.restore(path)
    assert (int(restored.iterations), int(restored.skipped_steps)) == (7, 1)
    checkpoint.variables = restored_variables  # bound later: its slots are restored now
    status.assert_consumed()
    for var, mine in zip(variables, restored_variables):
        kept = opt.slots_for(var) if opt.slot_specs else {}  # without slots, restoring builds nothing
        assert sorted(restored.slots_for(mine) if kept else {}) == sorted(kept)
        for slot_name, slot in kept.items():
            np.testing.assert_array_equal(restored.slots_for(mine)[slot_name].numpy(), slot.numpy())
    opt.apply_gradients([(gradients(7)[1], variables[1]), (None, variables[0])])
    restored.apply_gradients([(gradients(7)[1], restored_variables[1]), (None, restored_variables[0])])
    train(opt, variables, 8, 10)
    train(restored, restored_variables, 8, 10)
    for var, mine in zip(variables, restored_variables):
        np.testing.assert_array_equal(mine.numpy(), var.numpy())


def test_a_saved_state_of_another_shape_is_refused_naming_the_variable(tmp_path):
    variables, opt = fresh_variables(), optreg.registry.create("adam")
    train(opt, variables, 0, 3)
    path = tf.train.Checkpoint(optimizer=opt, variables=variables).save(str(tmp_path / "ckpt"))
    other = [tf.Variable(np.zeros((4,), np.float32), name="wider"), tf.Variable(np.zeros((2, 4), np.float32))]
    with pytest.raises(optreg.CheckpointError, match=r"'m' of wider:0 has shape \[3\], but this adam's has \[4\]"):
        tf.train.Checkpoint(optimizer=optreg.registry.create("adam"), variables=other).restore(path)


@pytest.mark.parametrize("name", BUILTIN)
def test_config_round_trip_rebuilds_the_same_optimizer(name):
    """A config through JSON rebuilds the optimizer: same class, config and hyperparameters, and
    5 steps of both bit-identical (op by op: the compile mode travels in the config like any
    option, and compiled steps are the resume test's)."""
    hyperparameters = {"learning_rate": 0.03}
    original = optreg.registry.create(name, clipnorm=2.0, skip_nonfinite=True, jit_compile=False, **hyperparameters)
    config = json.loads(json.dumps(original.get_config()))
    rebuilt = optreg.Optimizer.from_config(config)
    assert type(rebuilt) is type(original)
    assert rebuilt.get_config() == original.get_config()
    assert rebuilt.hyperparameters == original.hyperparameters and rebuilt.jit_compile is False
    a, b = fresh_variables(), fresh_variables()
    train(original, a, 0, 5)
    train(rebuilt, b, 0, 5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_a_spec_only_optimizer_rebuilds_from_its_config_without_the_file(tmp_path):
    text = open(optreg.registry.get("momentum").spec.source, encoding="utf-8").read().replace('"momentum"', '"mine"', 1)
    opt = optreg.SpecOptimizer(optreg.load_spec_text(text), momentum=0.5)
    rebuilt = optreg.Optimizer.from_config(opt.get_config())
    assert rebuilt.optimizer_name == "mine" and rebuilt.hyperparameters["momentum"] == 0.5


def test_python_optimizers_rebuild_through_the_registry():
    config = {
        "optimizer": "sgd",
        "source": "builtin",
        "hyperparameters": {"momentum": 0.9},
        "options": {},
        "name": "x",
        "spec": None,
    }
    rebuilt = optreg.Optimizer.from_config(config)
    assert rebuilt.hyperparameters["momentum"] == 0.9 and rebuilt.name == "x"
    with pytest.raises(optreg.OptionError, match="unknown keys: colour"):
        optreg.Optimizer.from_config({**config, "colour": "red"})


@pytest.mark.parametrize("jit_compile", [False, True], ids=["op-by-op", "xla"])
def test_steps_from_several_threads_are_all_applied_and_build_one_slot_set(jit_compile):
    """Two threads × 200 eager steps on one optimizer: sgd moves by exactly 400 steps' worth
    (an unguarded read-modify-write lost about a fifth of them), and adam has one slot set."""
    import threading

    x = tf.Variable([0.0])
    sgd = optreg.registry.create("sgd", learning_rate=1.0, jit_compile=jit_compile)
    adam_var = tf.Variable([1.0, 2.0])
    adam = optreg.registry.create("adam", jit_compile=jit_compile)
    start = threading.Barrier(2)

    def work():
        start.wait()
        for _ in range(200):
            sgd.apply_gradients([(tf.constant([1.0]), x)])
            adam.apply_gradients([(tf.constant([0.5, -0.5]), adam_var)])

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert x.numpy().tolist() == [-400.0] and int(sgd.iterations) == 400
    assert len(adam._slots) == 1 and int(adam.iterations) == 400


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda config: {}, "optimizer config key 'optimizer' is missing"),
        (lambda config: {**config, "spec": 3}, "optimizer config key 'spec' must be str or None, got int"),
        (
            lambda config: {**config, "hyperparameters": [0.1]},
            "optimizer config key 'hyperparameters' must be Mapping, got list",
        ),
        (lambda config: {**config, "optimizer": 7}, "optimizer config key 'optimizer' must be str, got int"),
        (lambda config: [config], "an optimizer config must be a dict, got list"),
        (
            lambda config: {**config, "optimizer": "sgd"},
            "optimizer config key 'optimizer' says 'sgd', but its spec defines 'adam'",
        ),
        (
            lambda config: {**config, "hyperparameters": {"learning_rate": {"schedule": {}, "x": 1}}},
            "learning_rate: a scheduled hyperparameter's config is {'schedule': ...}",
        ),
    ],
)
def test_a_malformed_config_is_one_option_error_naming_the_key(change, message):
    config = change(optreg.registry.create("adam").get_config())
    with pytest.raises(optreg.OptionError) as caught:
        optreg.Optimizer.from_config(config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_config_schedule_must_be_a_learning_rate_schedule():
    import keras

    @keras.saving.register_keras_serializable("optreg_tests")
    class Halver:
        """A Keras-serializable callable of the step that is no LearningRateSchedule."""

        def __call__(self, step):
            return 0.5

        def get_config(self):
            return {}

        @classmethod
        def from_config(cls, config):
            return cls()

    config = optreg.registry.create("adam").get_config()
    config["hyperparameters"]["learning_rate"] = {"schedule": keras.saving.serialize_keras_object(Halver())}
    with pytest.raises(
        optreg.OptionError, match="learning_rate: a config's schedule must be a .*LearningRateSchedule, got Halver"
    ):
        optreg.Optimizer.from_config(config)
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    rebuilt = optreg.Optimizer.from_config(optreg.registry.create("adam", learning_rate=decay).get_config())
    assert isinstance(rebuilt.scheduled_hyperparameters["learning_rate"], keras.optimizers.schedules.ExponentialDecay)


def test_restoring_slots_saved_in_another_dtype_is_one_checkpoint_error(tmp_path):
    """A checkpoint whose slots were float32 restored into an optimizer keeping them in float64
    (``slot_dtype``) is refused naming the slot, the variable and both dtypes, instead of
    TensorFlow's RestoreV2 error; the same dtype restores exactly."""
    x = tf.Variable([1.0, 2.0], name="w")
    saved = optreg.registry.create("adam")
    saved.apply_gradients([(tf.constant([0.1, 0.2]), x)])
    path = tf.train.Checkpoint(optimizer=saved, x=x).save(str(tmp_path / "ckpt"))
    wider = optreg.registry.create("adam", slot_dtype="float64")
    y = tf.Variable([1.0, 2.0], name="w")
    with pytest.raises(
        optreg.CheckpointError, match=r"the checkpoint's 'm' of w:0 is float32, but this adam's is float64"
    ):
        tf.train.Checkpoint(optimizer=wider, x=y).restore(path)
    same = optreg.registry.create("adam")
    z = tf.Variable([1.0, 2.0], name="w")
    tf.train.Checkpoint(optimizer=same, x=z).restore(path).assert_consumed()
    np.testing.assert_array_equal(same.slots_for(z)["m"].numpy(), saved.slots_for(x)["m"].numpy())
