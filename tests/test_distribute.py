"""MirroredStrategy over 2 logical CPUs gives the single-device result on the summed gradient."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from test_optimizers import BUILTIN


def run_distributed(names, options, compiled):
    """Every named optimizer's runs, from one fresh process: name → results."""
    out = subprocess.run(
        [sys.executable, str(REPO / "tests" / "distributed_run.py"), json.dumps(list(names)), json.dumps(options), compiled],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["compiled", "eager"])
def clipped_runs(request):
    """Every built-in under the strategy with clipnorm 5, in one process per mode."""
    return run_distributed(BUILTIN, {"clipnorm": 5.0}, request.param)


@pytest.mark.parametrize("name", BUILTIN)
def test_mirrored_strategy_matches_a_single_device(name, clipped_runs):
    result = clipped_runs[name]
    assert result["iterations"] == result["single_iterations"] == 10
    for copies, reference in zip(result["copies"], result["single"]):
        first, second = (np.array(c) for c in copies)
        np.testing.assert_array_equal(first, second)  # the replicas' copies stay identical
        np.testing.assert_allclose(first, np.array(reference), rtol=1e-6, atol=1e-6)
    for slot_copies in result["slots"]:
        np.testing.assert_array_equal(*(np.array(c) for c in slot_copies))


def test_skip_nonfinite_works_under_the_strategy():
    """The script also feeds a NaN batch and asserts (in that process) that it was skipped."""
    result = run_distributed(["adam"], {"skip_nonfinite": True}, "compiled")["adam"]
    assert result["iterations"] == 10
    np.testing.assert_allclose(np.array(result["copies"][0][0]), np.array(result["single"][0]), rtol=1e-6, atol=1e-6)
