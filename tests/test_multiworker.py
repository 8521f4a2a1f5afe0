"""MultiWorkerMirroredStrategy across two worker processes on 127.0.0.1: optreg's own optimizers
and the Keras adapter give the single-device result on the summed gradient, the workers stay
identical, and a checkpoint the cluster writes restores on one device, and under
MirroredStrategy over 2 logical CPUs, and trains on as if never interrupted. optreg refuses
ParameterServerStrategy (an in-process cluster shows it), under which Keras 3's model.fit does
not run either.

One pair of worker processes (tests/multiworker_run.py) trains every optimizer in one go:
starting TensorFlow is the expensive part.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import optreg
import optreg.keras
from tests.helpers import REPO
from tests.multiworker_run import (
    CHECKPOINT_STEP,
    KERAS_OPTIMIZER,
    KERAS_SETTINGS,
    STEPS,
    free_ports,
    keras_model,
    loss,
    single_device_start,
)

#: The optimizers the cluster trains, with their settings: momentum, Adam's moments, an
#: accumulator that starts away from zero, a sign update, and one whose update reduces over
#: the whole variable (LAMB's trust ratio).
SETTINGS = {
    "sgd": {"learning_rate": 0.05, "momentum": 0.9},
    "adam": {"learning_rate": 0.05},
    "adagrad": {"learning_rate": 0.1},
    "lamb": {"learning_rate": 0.05},
    # a kernel keeps factored slots (r, c), the bias the full one (v): slots are per variable;
    # in lion's place (another one-slot elementwise rule, as sgd's momentum is) to keep the cost
    "adafactor": {"learning_rate": 0.05},
}
WORKERS = 2
#: Seconds the whole cluster run may take before its processes are killed.
TIMEOUT = 120
#: The distributed run against the single-device one, as for MirroredStrategy.
TOLERANCE = 1e-6


def worker_environment():
    """The test's environment, with this checkout first on the path and TensorFlow quiet."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_cluster(settings, folder):
    """Start every worker, wait for all within one TIMEOUT (killing them all on any failure:
    a worker whose peer died would wait for it) and return their JSON results in task order."""
    ports = free_ports(WORKERS)
    command = [sys.executable, str(REPO / "tests" / "multiworker_run.py")]
    arguments = [json.dumps(ports), json.dumps(settings), str(folder)]
    workers = [
        subprocess.Popen(
            [*command, str(task), *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_environment(),
        )
        for task in range(WORKERS)
    ]
    deadline = time.monotonic() + TIMEOUT
    try:
        outputs = [worker.communicate(timeout=max(0.0, deadline - time.monotonic())) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for task, (worker, (_, err)) in enumerate(zip(workers, outputs)):
        assert worker.returncode == 0, f"worker {task} exited with {worker.returncode}:\n{err[-4000:]}"
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The checkpoint folder and both workers' results, from one run of the cluster."""
    folder = tmp_path_factory.mktemp("multiworker")
    return folder, run_cluster(SETTINGS, folder)


def single_device(name, steps, restore_from=None):
    """One optimizer on one device on the full batch: variables, slots and iterations after
    ``steps`` steps, optionally from a checkpoint the cluster wrote (then ``steps`` more).

    Op by op, as the workers' steps are (a step under a strategy runs its update in
    ``merge_call``, never XLA-compiled): XLA would only add a compilation per run, and the XLA
    step's agreement with the op-by-op one is checked for every optimizer by test_optimizers.py's
    test_the_xla_step_and_the_op_by_op_step_agree."""
    x, y, start = single_device_start()
    variables = [tf.Variable(v) for v in start]
    opt = optreg.registry.create(name, jit_compile=False, **SETTINGS[name])
    if restore_from is not None:
        checkpoint = tf.train.Checkpoint(optimizer=opt, variables=variables)
        checkpoint.read(str(restore_from)).assert_existing_objects_matched()
    for _ in range(steps):
        with tf.GradientTape() as tape:
            value = loss(variables, x, y)
        opt.apply_gradients(zip(tape.gradient(value, variables), variables))
    slots = [{slot: value.numpy() for slot, value in opt.slots_for(v).items()} for v in variables]
    return {"variables": [v.numpy() for v in variables], "slots": slots, "iterations": int(opt.iterations.numpy())}


@functools.cache
def uninterrupted(name):
    """The uninterrupted single-device run of STEPS steps every comparison is against: one
    deterministic computation per optimizer, so computed once and shared (never mutated)."""
    return single_device(name, STEPS)


def assert_matches(result, reference, label):
    """A result (JSON lists or arrays) equals a single-device one within TOLERANCE."""
    assert result["iterations"] == reference["iterations"] == STEPS, label
    for ours, theirs in zip(result["variables"], reference["variables"]):
        np.testing.assert_allclose(np.array(ours), theirs, rtol=TOLERANCE, atol=TOLERANCE, err_msg=label)
    # each variable's own slots, by name: optimizers may keep different slots per variable
    assert len(result["slots"]) == len(reference["slots"]) == len(reference["variables"]), label
    for index, (ours, theirs) in enumerate(zip(result["slots"], reference["slots"])):
        assert set(ours) == set(theirs), f"{label} variable {index}"
        for slot, value in theirs.items():
            np.testing.assert_allclose(
                np.array(ours[slot]), value, rtol=TOLERANCE, atol=TOLERANCE, err_msg=f"{label} variable {index} {slot}"
            )


def test_every_worker_took_part(cluster):
    _, results = cluster
    assert [result["task"] for result in results] == list(range(WORKERS))
    assert all(set(result["optimizers"]) == set(SETTINGS) for result in results)


@pytest.mark.parametrize("name", SETTINGS)
def test_the_workers_hold_identical_variables_and_slots(name, cluster):
    _, (chief, other) = cluster
    assert chief["optimizers"][name] == other["optimizers"][name]


@pytest.mark.parametrize("name", SETTINGS)
def test_multiworker_matches_a_single_device_on_the_summed_gradient(name, cluster):
    _, (chief, _) = cluster
    assert_matches(chief["optimizers"][name], uninterrupted(name), name)


@pytest.mark.parametrize("name", SETTINGS)
def test_a_checkpoint_the_cluster_wrote_resumes_on_one_device(name, cluster):
    folder, _ = cluster
    resumed = single_device(name, STEPS - CHECKPOINT_STEP, restore_from=folder / name / "ckpt")
    assert_matches(resumed, uninterrupted(name), name)


@pytest.fixture(scope="module")
def resumed_under_mirrored(cluster):
    """Every checkpoint the cluster wrote, resumed under MirroredStrategy over 2 logical CPUs
    in one fresh process (another replica count than the cluster's 2 processes of 1)."""
    folder, _ = cluster
    out = subprocess.run(
        [sys.executable, str(REPO / "tests" / "mirrored_resume_run.py"), json.dumps(SETTINGS), str(folder)],
        capture_output=True, text=True, timeout=TIMEOUT, env=worker_environment(),
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", SETTINGS)
def test_a_checkpoint_the_cluster_wrote_resumes_under_mirrored_strategy(name, resumed_under_mirrored):
    assert_matches(resumed_under_mirrored[name], uninterrupted(name), name)


def test_only_the_chief_wrote_into_the_checkpoint_folder(cluster):
    folder, _ = cluster
    assert sorted(path.name for path in folder.iterdir()) == sorted(SETTINGS)


def test_the_keras_adapter_in_a_custom_loop_matches_a_single_device(cluster):
    _, results = cluster
    x, y, start = single_device_start()
    model = keras_model(start)
    opt = optreg.keras.optimizer(KERAS_OPTIMIZER, **KERAS_SETTINGS)
    for _ in range(STEPS):
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(tf.square(model(x, training=True) - y))
        opt.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))
    assert results[0]["keras"] == results[1]["keras"]
    for ours, theirs in zip(results[0]["keras"], model.get_weights()):
        np.testing.assert_allclose(np.array(ours), theirs, rtol=TOLERANCE, atol=TOLERANCE)


@pytest.fixture(scope="module")
def parameter_server_cases():
    """What tests/parameter_server_run.py saw under its in-process cluster, by case."""
    out = subprocess.run(
        [sys.executable, str(REPO / "tests" / "parameter_server_run.py")],
        capture_output=True, text=True, timeout=TIMEOUT, env=worker_environment(),
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_parameter_server_strategy_is_refused_with_one_clear_error(parameter_server_cases):
    """An in-process cluster (one worker, one parameter server) in a fresh process: sgd created
    under the strategy, or created outside and applied in scheduled steps, raises OptionError
    instead of assigning ``var = f(var)`` from reads other steps may have made stale."""
    cases = parameter_server_cases
    for case in ("created", "applied"):
        assert cases[case].get("type") == "OptionError", (case, cases[case])
        assert "ParameterServerStrategy is not supported" in cases[case]["message"], case
        assert "MultiWorkerMirroredStrategy" in cases[case]["message"], case


def test_keras_fit_does_not_run_under_parameter_server_strategy_for_any_optimizer(parameter_server_cases):
    """What docs/keras-and-distribution.md says instead of "use the Keras adapter inside model.fit": Keras 3's
    model.fit refuses a dataset with Keras's own SGD, and refuses the per-worker dataset the error
    asks for as well; the adapter is refused before that, by optreg, with its own message."""
    keras_fit = parameter_server_cases["keras_fit"]
    assert keras_fit.get("type") == "ValueError", keras_fit
    assert "ClusterCoordinator.create_per_worker_dataset" in keras_fit["message"]
    adapter_fit = parameter_server_cases["adapter_fit"]
    assert adapter_fit.get("type") == "OptionError", adapter_fit
    assert "not supported by optreg's Keras adapter" in adapter_fit["message"]
    per_worker = parameter_server_cases["keras_fit_per_worker"]
    assert per_worker.get("type") == "ValueError" and "Unrecognized data type" in per_worker["message"], per_worker


def test_the_results_compare_each_variables_own_slots(cluster):
    """Adafactor's kernel and bias keep different slots, and each run reports each variable's
    own: the comparisons above would miss a slot taken from the first variable alone."""
    _, (chief, _) = cluster
    kept = [sorted(slots) for slots in chief["optimizers"]["adafactor"]["slots"]]
    assert kept == [sorted(slots) for slots in uninterrupted("adafactor")["slots"]]
    assert len({tuple(names) for names in kept}) > 1, kept
