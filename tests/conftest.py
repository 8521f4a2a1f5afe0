"""Shared fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

#: Shapes every numeric check runs on: scalar, vector, matrix, rank 3.
SHAPES = [(), (7,), (3, 4), (2, 3, 4)]


@pytest.fixture
def rng():
    """A seeded NumPy generator, so every run sees the same random tensors."""
    return np.random.default_rng(20261121)


def random_problem(rng, shape, steps, dtype=np.float32):
    """A start value and a list of gradients, as NumPy arrays of one dtype."""
    start = rng.normal(size=shape).astype(dtype)
    grads = [rng.normal(size=shape).astype(dtype) for _ in range(steps)]
    return start, grads
