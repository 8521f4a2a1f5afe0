"""MirroredStrategy over 2 logical CPUs gives the single-device result on the summed gradient."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from tests.helpers import REPO
from tests.test_optimizers import BUILTIN


def start_distributed(names, options, compiled, reference=True):
    """Start one fresh process for every named optimizer's runs (without the single-device
    reference unless ``reference``); finish it with ``results``. Its output goes to files, not
    pipes, so a process that has much to say never waits on us."""
    out, err = (tempfile.TemporaryFile("w+", encoding="utf-8") for _ in range(2))
    script = str(REPO / "tests" / "distributed_run.py")
    command = [sys.executable, script, json.dumps(list(names)), json.dumps(options), compiled]
    command += [] if reference else ["no-reference"]
    return subprocess.Popen(command, stdout=out, stderr=err, text=True), out, err


def results(started):
    """Wait for a started process: name → results (its stderr in the failure if it failed)."""
    process, out, err = started
    with out, err:
        returncode = process.wait()
        out.seek(0)
        err.seek(0)
        assert returncode == 0, err.read()
        return json.loads(out.read().strip().splitlines()[-1])


def run_distributed(names, options, compiled):
    """Every named optimizer's runs, from one fresh process: name → results."""
    return results(start_distributed(names, options, compiled))


MODES = ["compiled", "eager"]


@pytest.fixture(scope="module")
def clipped_runs_by_mode():
    """Every built-in under the strategy with clipnorm 5, in one process per mode, the two
    processes run side by side (their TensorFlow start-ups overlap): mode → name → results.
    The single-device reference is the same computation in both (the same code, data and
    process set-up), so only the first mode's process makes it, and both modes compare with it."""
    started = {mode: start_distributed(BUILTIN, {"clipnorm": 5.0}, mode, reference=mode == MODES[0]) for mode in MODES}
    try:
        by_mode = {mode: results(started[mode]) for mode in MODES}
        reference = by_mode[MODES[0]]
        for mode in MODES[1:]:
            for name, result in by_mode[mode].items():
                result.update({key: reference[name][key] for key in ("single", "single_iterations")})
        return by_mode
    finally:
        for process, _, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module", params=MODES)
def clipped_runs(request, clipped_runs_by_mode):
    """Every built-in's runs in one mode."""
    return clipped_runs_by_mode[request.param]


#: Looser tolerances against the single device: AccSGD's long step takes the gradient at
#: kappa / c (about 1400) times the rate, which magnifies the last bit of the all-reduced gradient.
#: Shampoo's inverse fourth roots magnify it too (2.4e-6 on the [4, 2] kernel). SOAP's kernel
#: statistics are rank-deficient in the first steps (a [4, 2] gradient gives a rank-2 L): the
#: rotated gradient's coordinates along L's null space are float32 rounding, which Adam's
#: normalisation at epsilon = 1e-8 turns into steps of the learning rate's size
#: (test_matrix_optimizers.py), so the two runs differ by 0.05 of weights of size 0.7: only
#: the copies' identity is a real check for it.
#: Optimistic GD steps along 2·g_t − g_{t−1}: the all-reduced gradient's last bit counts three
#: times per step (1.4e-6 on a weight of 0.09, against the single-device run op by op).
#: RMSprop divides by the root of its running mean square, which magnifies the summed gradient's
#: rounding: on an AMD EPYC the two runs differed by 5.3e-6 on weights of about 0.3, and each
#: float32 run sits that far from the same steps taken in float64 (single device 6.3e-6,
#: mirrored 2.2e-6: hundreds of float32 ulps, on either side).
SINGLE_DEVICE_TOLERANCE = {"accsgd": 3e-5, "shampoo": 1e-5, "soap": 0.1, "optimistic_gd": 3e-6, "rmsprop": 1e-5}


@pytest.mark.parametrize("name", BUILTIN)
def test_mirrored_strategy_matches_a_single_device(name, clipped_runs):
    result = clipped_runs[name]
    assert result["iterations"] == result["single_iterations"] == 10
    tolerance = SINGLE_DEVICE_TOLERANCE.get(name, 1e-6)
    for copies, reference in zip(result["copies"], result["single"]):
        first, second = (np.array(c) for c in copies)
        np.testing.assert_array_equal(first, second)  # the replicas' copies stay identical
        np.testing.assert_allclose(first, np.array(reference), rtol=tolerance, atol=tolerance)
    for slot_copies in result["slots"]:
        np.testing.assert_array_equal(*(np.array(c) for c in slot_copies))


def test_skip_nonfinite_works_under_the_strategy():
    """The script also feeds a NaN batch and asserts (in that process) that it was skipped."""
    result = run_distributed(["adam"], {"skip_nonfinite": True}, "compiled")["adam"]
    assert result["iterations"] == 10
    np.testing.assert_allclose(np.array(result["copies"][0][0]), np.array(result["single"][0]), rtol=1e-6, atol=1e-6)


#: Spec optimizers whose slots start away from zero (an accumulator's start, the weights, 1).
NONZERO_STARTS = {
    "adagrad": {"learning_rate": 0.1},
    "ftrl": {"learning_rate": 0.1},
    "yogi": {"learning_rate": 0.05},
    "nadam": {"learning_rate": 0.01},
    "schedule_free_adamw": {"learning_rate": 0.01},
    "madgrad": {"learning_rate": 0.01},
}


def test_the_keras_adapter_fits_under_the_strategy_as_on_one_device():
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "keras_fit_distributed_run.py"),
            json.dumps(list(NONZERO_STARTS)),
            json.dumps(NONZERO_STARTS),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for name, result in results.items():
        mirrored, single = result["mirrored"], result["single"]
        np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-5, err_msg=name)
        for slot, values in single["slots"].items():
            for ours, reference in zip(mirrored["slots"][slot], values):
                np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5, err_msg=f"{name} {slot}")
