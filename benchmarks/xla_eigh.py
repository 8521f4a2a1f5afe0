"""How far XLA's eigendecomposition is from LAPACK's: the inverse fourth root of a positive definite matrix.

For each dtype and size, a symmetric positive definite matrix ``A Aᵀ + 1e-3 I`` (``A`` an
n × (n + 3) standard normal matrix, seed 0) is raised to the power -1/4 through
optreg's ``inverse_root`` (``tf.linalg.eigh``), once op by op and once inside an XLA-compiled
``tf.function``, and each is compared with the same root from ``numpy.linalg.eigh`` in float64:
the largest absolute difference relative to the root's largest element. These are the figures
behind optreg's rule that a spec calling ``inverse_root`` or ``eigvecs`` runs without XLA
(docs/spec-language.md, "Matrix preconditioners").

Usage: ``python benchmarks/xla_eigh.py``
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = (4, 16, 64)


def reference(matrix: np.ndarray) -> np.ndarray:
    """matrix ** (-1/4) from NumPy's (LAPACK's) eigh, in float64."""
    values, vectors = np.linalg.eigh(matrix.astype(np.float64))
    return (vectors * values**-0.25) @ vectors.T


def main() -> None:
    """Print one row per dtype and size: the op-by-op and the XLA error."""
    import tensorflow as tf

    from optreg.runtime.linalg import inverse_root

    rng = np.random.default_rng(0)
    print("| dtype | n | op by op | XLA |\n|---|---|---|---|")
    for dtype in (np.float32, np.float64):
        for n in SIZES:
            a = rng.normal(size=(n, n + 3))
            matrix = (a @ a.T + 1e-3 * np.eye(n)).astype(dtype)
            exact = reference(matrix)
            errors = []
            for jit in (False, True):
                root = tf.function(lambda x: inverse_root(x, tf.constant(4.0, x.dtype)), jit_compile=jit)
                found = root(tf.constant(matrix)).numpy().astype(np.float64)
                errors.append(np.abs(found - exact).max() / np.abs(exact).max())
            print(f"| {np.dtype(dtype).name} | {n} | {errors[0]:.1e} | {errors[1]:.1e} |")


if __name__ == "__main__":
    main()
