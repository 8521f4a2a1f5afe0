"""Optimizers TensorFlow and Keras lack, from the optax and pytorch-optimizer catalogues.

Each NumPy reference below is written from the paper's pseudo-code (or, where the spec says it
follows optax or PyTorch, from that library's documented algorithm), independently of the spec's
rule text, and works in float64.
"""

from __future__ import annotations

import numpy as np

from tests.optimizer_table import Case, decaying


def numpy_signsgd(x, grads, hp):
    """Bernstein et al. 2018, signSGD: x ← x − δ·sign(g)."""
    out = []
    for g in grads:
        x = x - hp["learning_rate"] * np.sign(g)
        out.append(x)
    return out


def numpy_signum(x, grads, hp):
    """Bernstein et al. 2018, Signum: m ← β·m + (1 − β)·g; x ← x − δ·sign(m)."""
    beta, m, out = hp["momentum"], np.zeros_like(x), []
    for g in grads:
        m = beta * m + (1 - beta) * g
        x = x - hp["learning_rate"] * np.sign(m)
        out.append(x)
    return out


def numpy_nesterov(phi, grads, hp):
    """Sutskever et al. 2013, eq. 3-4, literally: v ← μv − ε∇f(θ + μv); θ ← θ + v.

    The gradients are taken at the look-ahead point φ = θ + μv, which is what the optimizer
    holds as its variable; the reference keeps θ and v and reports φ after each step.
    """
    mu, lr = hp["momentum"], hp["learning_rate"]
    theta, v, out = phi.copy(), np.zeros_like(phi), []
    for g in grads:  # g = ∇f(θ + μv)
        v = mu * v - lr * g
        theta = theta + v
        out.append(theta + mu * v)
    return out


def numpy_qhadam(x, grads, hp):
    """Ma & Yarats 2019, QHAdam: bias-corrected moments mixed with the raw gradient by ν₁, ν₂."""
    b1, b2, nu1, nu2 = hp["beta_1"], hp["beta_2"], hp["nu_1"], hp["nu_2"]
    g1, g2, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        g1 = b1 * g1 + (1 - b1) * g
        g2 = b2 * g2 + (1 - b2) * g**2
        g1_hat, g2_hat = g1 / (1 - b1**t), g2 / (1 - b2**t)
        top = (1 - nu1) * g + nu1 * g1_hat
        bottom = np.sqrt((1 - nu2) * g**2 + nu2 * g2_hat) + hp["epsilon"]
        x = x - hp["learning_rate"] * top / bottom
        out.append(x)
    return out


def numpy_adan(x, grads, hp):
    """Xie et al. 2022, Algorithm 1, with β = 1 − the paper's β as the authors' code writes it:
    the paper's (1 − β₂)-weighted difference term is β₂ in that convention (optax's 1 − β₂ with
    ``optax_form``); bias-corrected, with the paper's proximal weight decay; the gradient
    difference is zero at the first step (the authors' code starts the previous gradient at g₁)."""
    b1, b2, b3, lr, wd = hp["beta_1"], hp["beta_2"], hp["beta_3"], hp["learning_rate"], hp["proximal_decay"]
    weight = (1 - b2) if hp["optax_form"] else b2
    previous, out = None, []
    m, v, n = (np.zeros_like(x) for _ in range(3))
    for k, g in enumerate(grads, start=1):
        delta = np.zeros_like(g) if previous is None else g - previous
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * delta
        n = b3 * n + (1 - b3) * (g + weight * delta) ** 2
        eta = lr / (np.sqrt(n / (1 - b3**k)) + hp["epsilon"])
        x = (x - eta * (m / (1 - b1**k) + weight * v / (1 - b2**k))) / (1 + wd * lr)
        previous = g
        out.append(x)
    return out


def numpy_adopt(x, grads, hp):
    """Taniguchi et al. 2024, ADOPT with clipping: v₀ = g₀² (no move at the first step); then
    m ← β₁m + (1 − β₁)·clip(g / max(√v, ε), ±(t − 1)^¼), x ← x − α·m, v ← β₂v + (1 − β₂)g²."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    m, v, out = np.zeros_like(x), None, []
    for t, g in enumerate(grads, start=1):
        if v is None:
            v = g**2
        else:
            limit = (t - 1) ** 0.25
            m = b1 * m + (1 - b1) * np.clip(g / np.maximum(np.sqrt(v), eps), -limit, limit)
            x = x - hp["learning_rate"] * m
            v = b2 * v + (1 - b2) * g**2
        out.append(x)
    return out


def _ademamix_alpha(t, hp):
    """The paper's α scheduler: min(t·α / T_α, α), or α without warm-up."""
    warmup = hp["alpha_warmup"]
    return hp["alpha"] if warmup == 0 else min(t * hp["alpha"] / warmup, hp["alpha"])


def _ademamix_beta_3(t, hp):
    """The paper's β₃ scheduler: linear in half-life from β_start = β₁ to β₃ over T_β₃ steps."""
    warmup, start, end = hp["beta_3_warmup"], hp["beta_1"], hp["beta_3"]
    if warmup == 0:
        return end
    frac = min(t / warmup, 1.0)
    exponent = np.log(start) * np.log(end) / ((1 - frac) * np.log(end) + frac * np.log(start))
    return min(np.exp(exponent), end)


def numpy_ademamix(x, grads, hp):
    """Pagliardini et al. 2024, AdEMAMix: Adam's bias-corrected fast EMA plus α × a slow EMA."""
    b1, b2 = hp["beta_1"], hp["beta_2"]
    m1, m2, nu, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        b3 = _ademamix_beta_3(t, hp)
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3 * m2 + (1 - b3) * g
        nu = b2 * nu + (1 - b2) * g**2
        m1_hat, nu_hat = m1 / (1 - b1**t), nu / (1 - b2**t)
        update = (m1_hat + _ademamix_alpha(t, hp) * m2) / (np.sqrt(nu_hat) + hp["epsilon"])
        # the decoupled weight_decay option: optax's AdamW-style decay, lr·wd·x with the old x
        x = x - hp["learning_rate"] * (update + hp.get("weight_decay", 0.0) * x)
        out.append(x)
    return out


def numpy_madgrad(x, grads, hp):
    """Defazio & Jelassi 2021, Algorithm 1: λ_k = γ√(k+1); s += λg; ν += λg²;
    z = x₀ − s / (∛ν + ε); x ← (1 − c)x + c·z with c = 1 − momentum."""
    x0, c = x.copy(), 1 - hp["momentum"]
    s, nu, out = np.zeros_like(x), np.zeros_like(x), []
    for k, g in enumerate(grads):
        lam = hp["learning_rate"] * np.sqrt(k + 1)
        s = s + lam * g
        nu = nu + lam * g**2
        z = x0 - s / (np.cbrt(nu) + hp["epsilon"])
        x = (1 - c) * x + c * z
        out.append(x)
    return out


def numpy_rprop(x, grads, hp):
    """iRprop− (Igel & Hüsken 2000), as torch.optim.Rprop: per-element step sizes Δ start at the
    learning rate; same sign → Δ·η⁺, flipped sign → Δ·η⁻ and no move (the stored gradient is
    zeroed), clamped to [Δmin, Δmax]; x ← x − sign(g)·Δ."""
    size, previous, out = np.full_like(x, hp["learning_rate"]), np.zeros_like(x), []
    for g in grads:
        g = g.copy()
        for index in np.ndindex(g.shape):
            agreement = g[index] * previous[index]
            if agreement > 0:
                size[index] = min(size[index] * hp["eta_plus"], hp["max_step"])
            elif agreement < 0:
                size[index] = max(size[index] * hp["eta_minus"], hp["min_step"])
                g[index] = 0.0
            else:
                size[index] = min(max(size[index], hp["min_step"]), hp["max_step"])
        x = x - np.sign(g) * size
        previous = g
        out.append(x)
    return out


def _sgd_stepper(hp):
    """Keras's SGD as a step function: velocity ← μ·velocity − lr·g; x ← x + velocity (or Nesterov's)."""
    mu, lr, state = hp.get("momentum", 0.0), hp["learning_rate"], {}

    def step(x, g):
        velocity = mu * state.get("velocity", np.zeros_like(x)) - lr * g
        state["velocity"] = velocity
        return x + (mu * velocity - lr * g if hp.get("nesterov") else velocity)

    return step


def _adam_stepper(hp):
    """Kingma & Ba's Adam as a step function (the inner optimizer's own step count)."""
    b1, b2, eps = hp.get("beta_1", 0.9), hp.get("beta_2", 0.999), hp.get("epsilon", 1e-7)
    state = {"t": 0}

    def step(x, g):
        state["t"] += 1
        t = state["t"]
        m = b1 * state.get("m", np.zeros_like(x)) + (1 - b1) * g
        v = b2 * state.get("v", np.zeros_like(x)) + (1 - b2) * g * g
        state["m"], state["v"] = m, v
        return x - hp["learning_rate"] * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)

    return step


def numpy_prodigy(x, grads, hp):
    """Mishchenko & Defazio 2024, Algorithm 3 (Prodigy's Adam) as its reference implementation
    orders it: the distance sums r and s with the current d, the new d from max(d, d_coef·r/‖s‖₁),
    then the step with the old d·lr and the new d in the denominator; no step while ‖s‖₁ = 0."""
    lr, b1, b2, eps, d0 = hp["learning_rate"], hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["d0"]
    b3 = hp["beta_3"] or np.sqrt(b2)
    decay = hp.get("weight_decay") or 0.0
    d = d_max = d0
    r, x0, out = 0.0, x.copy(), []
    m, v, s = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    for t, g in enumerate(grads, start=1):
        correction = np.sqrt(1 - b2**t) / (1 - b1**t) if hp["bias_correction"] else 1.0
        dlr = d * lr * correction
        if decay and not hp["decouple"]:
            g = g + decay * x
        r = b3 * r + (d / d0) * dlr * np.sum(g * (x0 - x))
        m = b1 * m + d * (1 - b1) * g
        v = b2 * v + d * d * (1 - b2) * g * g
        s = b3 * s + (d / d0) * (d if hp["safeguard_warmup"] else dlr) * g
        if np.sum(np.abs(s)) > 0:
            d_hat = hp["d_coef"] * r / np.sum(np.abs(s))
            if d == d0:
                d = max(d, d_hat)
            d_max = max(d_max, d_hat)
            d = min(d_max, d * hp["growth_rate"]) if hp["growth_rate"] > 0 else d_max
            if decay and hp["decouple"]:
                x = x - decay * dlr * x
            x = x - dlr * m / (np.sqrt(v) + d * eps)
        out.append(x)
    return out


def numpy_lookahead(x, grads, hp):
    """Zhang et al. 2019, Algorithm 1: φ slow, θ fast; θ takes every inner step; every k steps
    φ ← φ + α(θ − φ) and θ ← φ. The inner optimizer keeps its state across synchronisations."""
    inner = {"sgd": _sgd_stepper, "adam": _adam_stepper}[hp.get("inner", "adam")](hp)
    slow, k, alpha, out = x.copy(), hp["sync_period"], hp["slow_step_size"], []
    for t, g in enumerate(grads, start=1):
        x = inner(x, g)
        if t % k == 0:
            slow = slow + alpha * (x - slow)
            x = slow.copy()
        out.append(x)
    return out


CASES = (
    Case(
        "signsgd",
        settings=({"learning_rate": 0.01}, {"learning_rate": 0.3}),
        numpy=numpy_signsgd,
        quadratic=(0.0001, 12000),
        # Fixed-size sign steps move along the diagonals only; in Rosenbrock's curved valley they
        # fall into a cycle whose loss grows with the step (about 27 × learning_rate), so a
        # constant rate would need about a million steps. The paper's guarantees assume a
        # decaying step size: with the rate decaying by 0.05 % a step it solves the valley.
        rosenbrock=(decaying(0.01, 0.9995), 20000),
    ),
    Case(
        "signum",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "momentum": 0.5},
            {"learning_rate": 0.1, "momentum": 0.0},
        ),
        numpy=numpy_signum,
        quadratic=(0.0001, 12000),
        rosenbrock=(0.0003, 10000),
    ),
    Case(
        "nesterov",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "momentum": 0.5},
            {"learning_rate": 0.05, "momentum": 0.0},
        ),
        numpy=numpy_nesterov,
        quadratic=(0.01, 500),
        rosenbrock=(0.001, 2000),
    ),
    Case(
        "qhadam",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "nu_1": 0.3, "nu_2": 0.6, "beta_1": 0.9, "beta_2": 0.99},
            {"learning_rate": 0.05, "nu_1": 1.0, "nu_2": 1.0, "epsilon": 1e-3},
        ),
        numpy=numpy_qhadam,
        quadratic=(0.1, 500),
        rosenbrock=(0.003, 10000),
    ),
    Case(
        "adan",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "beta_1": 0.9, "beta_2": 0.5, "beta_3": 0.95, "proximal_decay": 0.1},
            {"learning_rate": 0.05, "epsilon": 1e-3, "optax_form": True},
        ),
        numpy=numpy_adan,
        quadratic=(0.3, 500),
        rosenbrock=(0.03, 1000),  # with the authors' beta_2 weighting (optax's settled at 0.3 in 500)
    ),
    Case(
        "adopt",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3},
        ),
        numpy=numpy_adopt,
        quadratic=(0.1, 500),
        rosenbrock=(1.0, 2000),
    ),
    Case(
        "ademamix",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.05, "alpha": 8.0, "alpha_warmup": 20, "beta_3_warmup": 30, "beta_3": 0.999},
            {"learning_rate": 0.1, "beta_1": 0.8, "beta_2": 0.99, "weight_decay": 0.1, "alpha_warmup": 60},
        ),
        numpy=numpy_ademamix,
        quadratic=(1.0, 500),
        rosenbrock=(0.1, 10000),
    ),
    Case(
        "madgrad",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "momentum": 0.0, "epsilon": 1e-3},
            {"learning_rate": 0.03, "momentum": 0.5},
        ),
        numpy=numpy_madgrad,
        learning_rate_power=2 / 3,
        quadratic=(0.1, 500),
        rosenbrock=(0.03, 500),
    ),
    Case(
        "rprop",
        settings=(
            {"learning_rate": 0.01},
            {"learning_rate": 0.1, "eta_minus": 0.3, "eta_plus": 1.5, "max_step": 0.5},
            {"learning_rate": 1e-5, "eta_minus": 0.1, "min_step": 1e-4},
        ),
        numpy=numpy_rprop,
        quadratic=(0.1, 500),
        rosenbrock=(0.03, 2000),
    ),
    Case(
        "prodigy",
        settings=(
            {},
            {
                "learning_rate": 0.5,
                "beta_1": 0.5,
                "beta_2": 0.75,
                "d_coef": 2.0,
                "growth_rate": 1.02,
                "bias_correction": True,
            },
            {"beta_3": 0.9, "safeguard_warmup": True, "d0": 1e-3, "weight_decay": 0.01},
            {"weight_decay": 0.1, "decouple": False, "epsilon": 1e-6},
        ),
        numpy=numpy_prodigy,
        # the default rate, 1: the step size is its own estimate
        quadratic=(1.0, 2000),
        rosenbrock=(1.0, 5000),
        # d grows from the distance travelled, which depends on the rate: no power law
        learning_rate_power=None,
        xla_tolerance=1e-5,  # its sums over the variables are added in another order by XLA
    ),
    Case(
        "lookahead",
        settings=(
            {"inner": "sgd", "learning_rate": 0.1},
            {"inner": "sgd", "learning_rate": 0.05, "momentum": 0.9, "sync_period": 3, "slow_step_size": 0.8},
            {"inner": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "sync_period": 1},
            {"learning_rate": 0.01, "sync_period": 7, "slow_step_size": 0.3},  # the default inner, adam
        ),
        numpy=numpy_lookahead,
        quadratic=(0.1, 500),
        rosenbrock=(0.1, 2000),
    ),
)
