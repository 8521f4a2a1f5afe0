"""Optimizers that draw random numbers or need whole-model reductions or the loss (issue 17):
noisy_sgd (a spec drawing noise), and the Python built-ins adahessian and adai.

noisy_sgd's reference draws its noise independently of optreg's code: it derives the key from
the formula of docs/spec-language.md (seed, step · 2³² + index · 2⁸ + call), asks TensorFlow's
stateless Philox generator for that key's raw 32-bit words only (the one thing shared with the
optimizer), and turns them into normal numbers with NumPy's Box–Muller. A wrong key, a wrong
transform, a wrong variance or noise added in the wrong place each move the trajectory.
"""

from __future__ import annotations

import numpy as np

from tests.noise_reference import reference_normal, reference_rademacher
from tests.optimizer_table import Case


def numpy_noisy_sgd(x, grads, hp):
    """Neelakantan et al. 2015, Section 2 (optax.noisy_sgd): gₜ + N(0, η/(1 + t)^γ), t from 0, then
    SGD. The battery steps each shape with an optimizer of its own (see battery.couples_variables),
    so the variable's index is 0."""
    out = []
    for t, g in enumerate(grads):
        scale = np.sqrt(hp["eta"] / (1 + t) ** hp["gamma"])
        noise = scale * reference_normal(int(hp["seed"]), t + 1, 0, 0, np.shape(x))
        x = x - hp["learning_rate"] * (g + noise)
        out.append(x)
    return out


def numpy_adahessian(starts, A, b, steps, hp):
    """Yao et al. 2021, Algorithm 1, on L = ½xᵀAx + bᵀx (x every variable, flattened, in order):
    g = Ax + b, and the Hessian-vector product is exactly Az. The probe z of variable i at step t
    is rademacher_like's (seed, t, index i, call 0); D = |z ⊙ Az| per variable, averaged over a
    kernel's spatial axes (all but the last two, rank ≥ 3); then Adam on D² with
    (v̂)^(k/2) + ε, as the authors' code."""
    b1, b2, eps, k, lr = (hp[n] for n in ("beta_1", "beta_2", "epsilon", "hessian_power", "learning_rate"))
    shapes = [np.shape(x) for x in starts]
    sizes = [int(np.prod(shape)) for shape in shapes]
    xs = [np.array(x, np.float64) for x in starts]
    m, v = [np.zeros_like(x) for x in xs], [np.zeros_like(x) for x in xs]
    out = []
    for t in range(1, steps + 1):
        flat = np.concatenate([x.ravel() for x in xs])
        z = np.concatenate(
            [reference_rademacher(int(hp["seed"]), t, i, 0, shape).ravel() for i, shape in enumerate(shapes)]
        )
        g_all, hz_all = np.split(A @ flat + b, np.cumsum(sizes)[:-1]), np.split(A @ z, np.cumsum(sizes)[:-1])
        zs = np.split(z, np.cumsum(sizes)[:-1])
        for i, shape in enumerate(shapes):
            d = np.abs(zs[i] * hz_all[i]).reshape(shape)
            if len(shape) >= 3:
                d = np.broadcast_to(d.mean(axis=tuple(range(len(shape) - 2)), keepdims=True), shape)
            g = g_all[i].reshape(shape)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * d * d
            xs[i] = xs[i] - lr * (m[i] / (1 - b1**t)) / ((v[i] / (1 - b2**t)) ** (k / 2) + eps)
        out.append([x.copy() for x in xs])
    return out


def numpy_adai(variables, grads, hp):
    """Xie et al. 2022, Algorithm 2 (Adai), over several variables at once: v̂ = v/(1 − β₂ᵗ);
    v̄ the mean of v̂ over every element of every variable; β₁ = clip(1 − β₀·v̂/v̄, 0, 1 − ε) per
    element; m ← β₁m + (1 − β₁)g; x ← x − lr·m/(1 − Πβ₁). ``variables`` is one array or a list;
    ``grads`` the gradients per step (one array or a list per step)."""
    single = not isinstance(variables, list)
    xs = [np.array(variables, np.float64)] if single else [np.array(x, np.float64) for x in variables]
    m, v, prod = [np.zeros_like(x) for x in xs], [np.zeros_like(x) for x in xs], [np.ones_like(x) for x in xs]
    b0, b2, eps, lr = hp["beta_0"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    out = []
    for t, step_grads in enumerate(grads, start=1):
        gs = [step_grads] if single else step_grads
        v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, gs)]
        v_hat = [vi / (1 - b2**t) for vi in v]
        mean = sum(vh.sum() for vh in v_hat) / sum(vh.size for vh in v_hat)
        for i, g in enumerate(gs):
            beta_1 = np.clip(1 - b0 * v_hat[i] / mean, 0.0, 1 - eps) if mean > 0 else np.full_like(g, 1 - eps)
            prod[i] = prod[i] * beta_1
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            xs[i] = xs[i] - lr * m[i] / (1 - prod[i])
        out.append(xs[0].copy() if single else [x.copy() for x in xs])
    return out


CASES = (
    Case(
        "noisy_sgd",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.05, "eta": 0.3, "gamma": 0.9, "seed": 12345},
        ),
        numpy=numpy_noisy_sgd,
        # the noise is kept below the problems' tolerance: its standard deviation is √eta
        descent_settings={"eta": 1e-10},
        quadratic=(0.01, 2000),
        rosenbrock=(0.001, 10000),
    ),
    Case(
        "adahessian",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.05, "beta_1": 0.5, "beta_2": 0.75, "hessian_power": 0.5, "seed": 9},
        ),
        # needs the loss: the gradient-only references cannot drive it (tests/test_optimizers.py, NEEDS_LOSS)
        loss_numpy=numpy_adahessian,
        quadratic=(0.15, 500),
        rosenbrock=(2.0, 3000),
    ),
    Case(
        "adai",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.05, "beta_0": 0.5, "beta_2": 0.9, "epsilon": 0.01},
        ),
        numpy=numpy_adai,
        quadratic=(0.01, 2000),
        rosenbrock=(0.002, 5000),
    ),
)
