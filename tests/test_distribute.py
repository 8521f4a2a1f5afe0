"""MirroredStrategy over 2 logical CPUs gives the single-device result on the summed gradient."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from test_optimizers import BUILTIN


def run_distributed(name, options, compiled):
    out = subprocess.run(
        [sys.executable, str(REPO / "tests" / "distributed_run.py"), name, json.dumps(options), compiled],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("compiled", ["compiled", "eager"])
@pytest.mark.parametrize("name", BUILTIN)
def test_mirrored_strategy_matches_a_single_device(name, compiled):
    result = run_distributed(name, {"clipnorm": 5.0}, compiled)
    assert result["iterations"] == result["single_iterations"] == 10
    for copies, reference in zip(result["copies"], result["single"]):
        first, second = (np.array(c) for c in copies)
        np.testing.assert_array_equal(first, second)  # the replicas' copies stay identical
        np.testing.assert_allclose(first, np.array(reference), rtol=1e-6, atol=1e-6)
    for slot_copies in result["slots"]:
        np.testing.assert_array_equal(*(np.array(c) for c in slot_copies))


def test_skip_nonfinite_works_under_the_strategy():
    """The script also feeds a NaN batch and asserts (in that process) that it was skipped."""
    result = run_distributed("adam", {"skip_nonfinite": True}, "compiled")
    assert result["iterations"] == 10
    np.testing.assert_allclose(np.array(result["copies"][0][0]), np.array(result["single"][0]), rtol=1e-6, atol=1e-6)
