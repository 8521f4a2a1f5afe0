"""Optimizers written with the language's per-row, per-column and per-channel reductions and
their slot shapes: SM3 (statistics over a cover of each variable) and Nero (per-neuron norms),
each checked against a NumPy version written from its paper."""

from __future__ import annotations

import numpy as np

from tests.optimizer_table import Case, decaying


def sm3_cover(shape):
    """The axes each family of SM3's cover reduces over: from rank 2, the rows (every index but
    the last, so the maximum is over the last axis) and the output channels (the last index, the
    maximum over every other axis) — a matrix's rows and columns, as the paper's Section 4; a
    vector or scalar has one set per element (no axis reduced)."""
    rank = len(shape)
    return [(rank - 1,), tuple(range(rank - 1))] if rank >= 2 else [()]


def numpy_sm3(x, grads, hp):
    """Anil et al. 2019, SM3-II (Algorithm 2): ν(i) = min over the sets S ∋ i of μ(S) + g(i)²,
    w ← w − η g / √ν, μ(S) ← max over i ∈ S of ν(i); with pytorch-optimizer's two extensions,
    β > 0 (ν = β·min μ + (1 − β) g², and μ never decreases) and momentum on the step."""
    lr, mu, beta, eps = hp["learning_rate"], hp["momentum"], hp["beta"], hp["epsilon"]
    covers = sm3_cover(x.shape)
    accumulators = [np.zeros_like(x).max(axis=axes, keepdims=True) for axes in covers]
    m, out = np.zeros_like(x), []
    for g in grads:
        smallest = np.minimum.reduce([np.broadcast_to(a, x.shape) for a in accumulators])
        nu = (beta * smallest if beta > 0 else smallest) + (1 - beta) * g * g
        for k, axes in enumerate(covers):
            largest = nu.max(axis=axes, keepdims=True)
            accumulators[k] = np.maximum(accumulators[k], largest) if beta > 0 else largest
        step = g / np.sqrt(nu + eps)
        if mu > 0:
            m = mu * m + (1 - mu) * step
            step = m
        x = x - lr * step
        out.append(x)
    return out


def _neuron_norm(w):
    """Each neuron's L2 norm (Keras's output axis is the last), kept for broadcasting; a vector's
    neurons are its elements."""
    if w.ndim < 2:
        return np.abs(w)
    return np.sqrt(np.sum(w * w, axis=tuple(range(w.ndim - 1)), keepdims=True))


def _project(w, eps):
    """Each neuron centred and scaled to unit norm (the paper's constraints)."""
    centred = w - w.mean(axis=tuple(range(w.ndim - 1)), keepdims=True)
    return centred / (_neuron_norm(centred) + eps)


def numpy_nero(x, grads, hp):
    """Liu et al. 2021, Algorithm 1: per neuron, v ← βv + (1 − β)‖g‖², w ← w − η σ g / √(v/(1 − βᵗ)),
    then w re-centred and re-normalised (kernels, with constraints); σ is the mean neuron norm
    when training starts (0.01 if 0), and kernels are projected then. ε as the authors' code."""
    lr, beta, eps = hp["learning_rate"], hp["beta"], hp["epsilon"]
    kernel = hp["constraints"] and x.ndim >= 2
    if kernel:
        x = _project(x, eps)
    scale = _neuron_norm(x).mean()
    scale = 0.01 if scale == 0 else scale
    v, out = np.zeros_like(_neuron_norm(x)), []
    for t, g in enumerate(grads, start=1):
        v = beta * v + (1 - beta) * _neuron_norm(g) ** 2
        denominator = np.sqrt(v / (1 - beta**t)) + eps
        x = x - lr * scale * np.where(denominator > 0, g / np.where(denominator > 0, denominator, 1), 0)
        if kernel:
            x = _project(x, eps)
        out.append(x)
    return out


CASES = (
    Case(
        "sm3",
        settings=(
            {"learning_rate": 0.1},
            {"learning_rate": 0.05, "momentum": 0.5},
            {"learning_rate": 0.05, "beta": 0.75, "momentum": 0.875, "epsilon": 1e-8},
        ),
        numpy=numpy_sm3,
        quadratic=(0.5, 500),
        rosenbrock=(1.0, 10000),  # on a vector SM3 is Adagrad, and needs Adagrad's steps
        half_precision_learning_rate=0.5,
    ),
    Case(
        "nero",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "beta": 0.5},
            {"learning_rate": 0.05, "beta": 0.9, "constraints": False, "epsilon": 1e-4},
        ),
        numpy=numpy_nero,
        quadratic=(decaying(0.1, 0.99), 500),
        # normalised steps do not shrink near the minimum by themselves: a decaying rate
        rosenbrock=(decaying(0.02, 0.9995), 8000),
        # from a zero start the scale is 0.01, so steps are a hundredth of the rate
        half_precision_learning_rate=10.0,
    ),
)
