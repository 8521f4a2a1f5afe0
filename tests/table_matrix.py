"""Shampoo and SOAP: matrix preconditioners built on a symmetric eigendecomposition (issue 17).

Each NumPy reference is written from the paper's algorithm in float64 with ``numpy.linalg.eigh``
(LAPACK), not from the spec's rule; where the spec follows an implementation's convention the
docstring says so, and the spec's ``notes`` name it. The battery's only matrix is ``[3, 4]``: it
takes the two-sided branch, the scalar, the vector and the ``[2, 3, 4]`` tensor the fallback
(``test_matrix_optimizers.py`` drives the matrix branch to the minimum of a matrix problem).
"""

from __future__ import annotations

import numpy as np

from tests.optimizer_table import Case


def inverse_root(matrix, p):
    """``matrix ** (-1 / p)`` of a symmetric positive definite matrix, from NumPy's eigh."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * values ** (-1.0 / p)) @ vectors.T


def _two_sided(x, dim):
    """Whether a variable takes the matrix branch: rank 2, both sides at most ``dim``."""
    return x.ndim == 2 and max(x.shape) <= dim


def numpy_shampoo(x, grads, hp):
    """Gupta et al. 2018, Algorithm 1 for a matrix: L₀ = εI, R₀ = εI, L ← L + GGᵀ, R ← R + GᵀG,
    W ← W − η L^(-1/4) G R^(-1/4); with momentum μ > 0, G is first replaced by (1 − μ)G + μ·(the
    previous preconditioned step) from the second step on (pytorch-optimizer's Shampoo).
    Anything else: diagonal Adagrad from the same start, v₀ = ε, v ← v + g², step g / √v."""
    lr, mu, eps = hp["learning_rate"], hp["momentum"], hp["epsilon"]
    matrix = _two_sided(x, hp["max_preconditioner_dim"])
    if matrix:
        left, right = eps * np.eye(x.shape[0]), eps * np.eye(x.shape[1])
    v, previous, out = np.full_like(x, eps), None, []
    for g in grads:
        if mu > 0 and previous is not None:
            g = (1 - mu) * g + mu * previous
        if matrix:
            left, right = left + g @ g.T, right + g.T @ g
            step = inverse_root(left, 4) @ g @ inverse_root(right, 4)
        else:
            v = v + g * g
            step = g / np.sqrt(v)
        previous = step
        x = x - lr * step
        out.append(x)
    return out


def numpy_soap(x, grads, hp):
    """Vyas et al. 2024, Algorithm 3 as the authors' soap.py runs it, with an exact eigenbasis at
    each refresh. Call 1 only measures: L = (1 − β_s)GGᵀ, R = (1 − β_s)GᵀG, Q_L, Q_R = their
    eigenvectors. Call k > 1 (t = k − 1): G' = Q_Lᵀ G Q_R; m ← β₁m + (1 − β₁)G;
    v ← β₂v + (1 − β₂)G'²; N = Q_L (Q_Lᵀ m Q_R / (√v + ε)) Q_Rᵀ;
    W ← (W − η √(1 − β₂ᵗ)/(1 − β₁ᵗ) N)(1 − η λ); then L, R move toward GGᵀ, GᵀG at rate 1 − β_s,
    and their eigenvectors are taken again when t is a multiple of the frequency. A variable
    that is not such a matrix takes the same Adam with no rotation. β_s = β₂ unless given."""
    lr, b1, b2, eps = hp["learning_rate"], hp["beta_1"], hp["beta_2"], hp["epsilon"]
    beta_s = b2 if hp["shampoo_beta"] is None else hp["shampoo_beta"]
    decay, frequency = hp.get("weight_decay", 0.01) or 0.0, hp["precondition_frequency"]
    matrix = _two_sided(x, hp["max_precondition_dim"])
    m, v, out = np.zeros_like(x), np.zeros_like(x), []
    if matrix:
        left, right = np.zeros((x.shape[0],) * 2), np.zeros((x.shape[1],) * 2)
    rotate = (lambda a: q_left.T @ a @ q_right) if matrix else (lambda a: a)
    back = (lambda a: q_left @ a @ q_right.T) if matrix else (lambda a: a)
    for k, g in enumerate(grads, start=1):
        t = k - 1
        if k > 1:
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * rotate(g) ** 2
            n = back(rotate(m) / (np.sqrt(v) + eps))
            x = (x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * n) * (1 - lr * decay)
        if matrix:
            left = beta_s * left + (1 - beta_s) * g @ g.T
            right = beta_s * right + (1 - beta_s) * g.T @ g
            if k == 1 or t % frequency == 0:
                q_left, q_right = np.linalg.eigh(left)[1], np.linalg.eigh(right)[1]
        out.append(x)
    return out


CASES = (
    Case(
        "shampoo",
        settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "momentum": 0.5, "epsilon": 1e-3}),
        numpy=numpy_shampoo,
        # the descents' variables are vectors: diagonal Adagrad, whose steps shrink by themselves
        quadratic=(0.5, 500),
        rosenbrock=(1.0, 10000),
        # the first step of the fallback is lr * g / sqrt(epsilon + g^2), about lr * sign(g): no power law
        learning_rate_power=None,
        # the half-precision test's vector takes diagonal Adagrad: Adagrad's rate
        half_precision_learning_rate=0.5,
    ),
    Case(
        "soap",
        settings=(
            {"learning_rate": 0.05},
            {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.75, "shampoo_beta": 0.9, "precondition_frequency": 3,
             "weight_decay": 0.1},
        ),
        numpy=numpy_soap,
        quadratic=(0.01, 2000),
        rosenbrock=(0.01, 5000),
        # Adam's steps settle into the minima only without the default decoupled decay
        descent_settings={"weight_decay": None},
    ),
)
