"""Optimizers added to the catalogue from pytorch-optimizer's and optax's lists (issue 17).

Each NumPy reference is written from the paper's algorithm (its symbols, its order of
operations, float64), not from the spec's rule; where the spec follows the authors' code or a
library on a point the paper leaves open (where ε goes, how a buffer starts), the docstring says
so, and the spec's ``notes`` name the convention.
"""

from __future__ import annotations

import numpy as np

from tests.optimizer_table import Case, decaying


def _adam_moments(b1, b2):
    """A closure updating Adam's two moments: (m, v, g) → (m, v)."""
    return lambda m, v, g: (b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g)


def numpy_adamod(x, grads, hp):
    """Ding et al. 2019, Algorithm 1, as the authors' code orders it: η_t = α_t / (√v_t + ε) with
    α_t = α·√(1 − β₂ᵗ)/(1 − β₁ᵗ); s_t = β₃s + (1 − β₃)η_t; x ← x − min(η_t, s_t)·m_t."""
    b1, b2, b3, eps, lr = hp["beta_1"], hp["beta_2"], hp["beta_3"], hp["epsilon"], hp["learning_rate"]
    moments = _adam_moments(b1, b2)
    m, v, s, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m, v = moments(m, v, g)
        alpha_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        eta = alpha_t / (np.sqrt(v) + eps)
        s = b3 * s + (1 - b3) * eta
        x = x - np.minimum(eta, s) * m
        out.append(x)
    return out


def numpy_cautious_adamw(x, grads, hp):
    """Liang et al. 2024, Algorithm 1 (C-AdamW): u = Adam's step; φ = 1[m ∘ g > 0];
    x ← x − lr·wd·x − α_t·(φ · d / (Σφ + 1)) ∘ u, d the number of elements (the authors' code's
    normalisation), after the decoupled decay with the spec's default 0.004."""
    b1, b2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    decay = hp.get("weight_decay", 0.004) or 0.0
    moments = _adam_moments(b1, b2)
    m, v, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        x = x - lr * decay * x
        m, v = moments(m, v, g)
        phi = (m * g > 0).astype(x.dtype)
        u = m / (np.sqrt(v) + eps)
        x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * (phi * phi.size / (phi.sum() + 1)) * u
        out.append(x)
    return out


def numpy_mars_adamw(x, grads, hp):
    """Yuan et al. 2024, Algorithm 2 (MARS-AdamW, approximate form): c_t = g_t + γ·β₁/(1 − β₁)·
    (g_t − g_{t−1}), g_0 = 0; c_t ← c_t / ‖c_t‖ when ‖c_t‖ > 1; AdamW's moments of c_t."""
    b1, b2, eps, lr, gamma = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"], hp["gamma"]
    moments = _adam_moments(b1, b2)
    m, v, previous, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        c = g + gamma * b1 / (1 - b1) * (g - previous)
        size = np.sqrt(np.sum(c * c))
        if size > 1:
            c = c / size
        m, v = moments(m, v, c)
        x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        previous = g
        out.append(x)
    return out


def numpy_laprop(x, grads, hp):
    """Ziyin et al. 2020, Algorithm 1: n_t = νn + (1 − ν)g²; m_t = μm + (1 − μ)·g/(√(n_t/c_n) + ε);
    θ ← θ − λ·m_t/c_m, with c_n = 1 − νᵗ and c_m = 1 − μᵗ."""
    mu, nu, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    m, n, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        n = nu * n + (1 - nu) * g * g
        m = mu * m + (1 - mu) * g / (np.sqrt(n / (1 - nu**t)) + eps)
        x = x - lr * m / (1 - mu**t)
        out.append(x)
    return out


def numpy_adaboundw(x, grads, hp):
    """Luo et al. 2019, Algorithm 2 (AdaBound) with AdamW's decoupled decay as the authors'
    AdaBoundW applies it: η = clip(α_t/(√v + ε), η_l(t), η_u(t)); x ← x − η·m − wd·x."""
    b1, b2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    final, gamma, decay = hp["final_lr"], hp["gamma"], hp.get("weight_decay") or 0.0
    moments = _adam_moments(b1, b2)
    m, v, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m, v = moments(m, v, g)
        lower, upper = final * (1 - 1 / (gamma * t + 1)), final * (1 + 1 / (gamma * t))
        eta = np.clip(lr * np.sqrt(1 - b2**t) / (1 - b1**t) / (np.sqrt(v) + eps), lower, upper)
        x = x - eta * m - decay * x
        out.append(x)
    return out


def numpy_diffgrad(x, grads, hp):
    """Dubey et al. 2019: ξ_t = AbsSig(g_{t−1} − g_t) = 1/(1 + e^−|Δg|), g_0 = 0;
    θ ← θ − α_t·ξ_t·m_t/(√v_t + ε), α_t the bias-corrected step size."""
    b1, b2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    moments = _adam_moments(b1, b2)
    m, v, previous, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m, v = moments(m, v, g)
        xi = 1 / (1 + np.exp(-np.abs(previous - g)))
        x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * xi * m / (np.sqrt(v) + eps)
        previous = g
        out.append(x)
    return out


def numpy_swats(x, grads, hp):
    """Keskar & Socher 2017, Algorithm 1, for one variable: Adam steps p_k while λ averages the
    SGD rate γ_k = pᵀp / −pᵀg; once k > 1 and |λ/(1 − β₂ᵏ) − γ_k| < ε, SGD with momentum
    v ← β₁v + g, w ← w − (1 − β₁)Λv at the rate Λ = λ/(1 − β₂ᵏ)."""
    b1, b2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    m, a, velocity, lam, rate, phase, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), 0.0, 0.0, "adam", []
    for k, g in enumerate(grads, start=1):
        if phase == "sgd":
            velocity = b1 * velocity + g
            x = x - (1 - b1) * rate * velocity
        else:
            m = b1 * m + (1 - b1) * g
            a = b2 * a + (1 - b2) * g * g
            p = -lr * np.sqrt(1 - b2**k) / (1 - b1**k) * m / (np.sqrt(a) + eps)
            x = x + p
            if np.sum(p * g) != 0:
                gamma = np.sum(p * p) / -np.sum(p * g)
                lam = b2 * lam + (1 - b2) * gamma
                if k > 1 and abs(lam / (1 - b2**k) - gamma) < eps:
                    phase, rate = "sgd", lam / (1 - b2**k)
        out.append(x)
    return out


def numpy_adamp(x, grads, hp):
    """Heo et al. 2021, Algorithm 2 (AdamP), with the whole variable as the one view: where
    |cos(x, g)| < δ/√dim (rank ≥ 2 only), p ← p − x̂(x̂·p) and the decay is scaled by wd_ratio."""
    b1, b2, eps, lr, delta = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"], hp["delta"]
    decay = hp.get("weight_decay") or 0.0
    moments = _adam_moments(b1, b2)
    m, v, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m, v = moments(m, v, g)
        denominator = np.sqrt(v / (1 - b2**t)) + eps
        p = (b1 * m + (1 - b1) * g) / denominator if hp["nesterov"] else m / denominator
        ratio = 1.0
        if x.ndim > 1:
            cosine = abs(np.sum(x * g)) / max(np.linalg.norm(x) * np.linalg.norm(g), eps)
            if cosine < delta / np.sqrt(x.size):
                unit = x / (np.linalg.norm(x) + eps)
                p = p - unit * np.sum(unit * p)
                ratio = hp["wd_ratio"]
        x = x * (1 - lr * decay * ratio) - lr / (1 - b1**t) * p
        out.append(x)
    return out


def numpy_aggmo(x, grads, hp):
    """Lucas et al. 2019, Algorithm 1: v⁽ⁱ⁾ ← β⁽ⁱ⁾v⁽ⁱ⁾ − ∇f; θ ← θ + (γ/K)·Σᵢ v⁽ⁱ⁾ (K = 3)."""
    betas = [hp["beta_0"], hp["beta_1"], hp["beta_2"]]
    velocities, out = [np.zeros_like(x) for _ in betas], []
    for g in grads:
        velocities = [beta * v - g for beta, v in zip(betas, velocities)]
        x = x + hp["learning_rate"] / len(betas) * sum(velocities)
        out.append(x)
    return out


def numpy_adam_mini(x, grads, hp):
    """Zhang et al. 2024, Algorithm 1 with the whole variable as one block: v ← β₂v + (1 − β₂)·
    mean(g ∘ g), a scalar; x ← x − lr·m̂/(√v̂ + ε)."""
    b1, b2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    decay = hp.get("weight_decay") or 0.0
    m, v, out = np.zeros_like(x), 0.0, []
    for t, g in enumerate(grads, start=1):
        x = x - lr * decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * np.mean(g * g)
        x = x - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(x)
    return out


def numpy_nadamw(x, grads, hp):
    """optax.nadamw (Dozat 2016's Nesterov-Adam with constant β₁, and AdamW's decay, default
    1e-4): m̄ = β₁m_t/(1 − β₁ᵗ⁺¹) + (1 − β₁)g_t/(1 − β₁ᵗ); x ← x − lr·(m̄/(√v̂ + ε) + wd·x)."""
    b1, b2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    decay = hp.get("weight_decay", 1e-4) or 0.0
    moments = _adam_moments(b1, b2)
    m, v, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m, v = moments(m, v, g)
        nesterov = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        x = x - lr * (nesterov / (np.sqrt(v / (1 - b2**t)) + eps) + decay * x)
        out.append(x)
    return out


def numpy_accsgd(x, grads, hp):
    """Kidambi et al. 2018, Algorithm 1 (ASGD) in the authors' parameters: α = 1 − ξc²/κ, β = 1 − α,
    ζ = c/(c + β); w̄ ← α·w̄ + β·(w − (κδ/c)·g); w ← ζ(w − δg) + (1 − ζ)w̄, with w̄₀ = w₀."""
    lr, kappa, xi, c = hp["learning_rate"], hp["kappa"], hp["xi"], hp["constant"]
    alpha = 1 - xi * c * c / kappa
    beta = 1 - alpha
    zeta = c / (c + beta)
    w_bar, out = x.copy(), []
    for g in grads:
        w_bar = alpha * w_bar + beta * (x - kappa * lr / c * g)
        x = zeta * (x - lr * g) + (1 - zeta) * w_bar
        out.append(x)
    return out


def numpy_pid(x, grads, hp):
    """An et al. 2018, the PID update as its code applies it: I ← μI + g; D ← μD + (1 − μ)(g_t − g_{t−1})
    (zero at the first step); θ ← θ − r·(g + K_i·I + K_d·D)."""
    mu, ki, kd, lr = hp["momentum"], hp["integral"], hp["derivative"], hp["learning_rate"]
    integral, derivative, previous, out = np.zeros_like(x), np.zeros_like(x), None, []
    for g in grads:
        integral = mu * integral + g
        change = np.zeros_like(g) if previous is None else g - previous
        derivative = mu * derivative + (1 - mu) * change
        x = x - lr * (g + ki * integral + kd * derivative)
        previous = g
        out.append(x)
    return out


def numpy_adanorm(x, grads, hp):
    """Dubey et al. 2023, Algorithm 1 (AdamNorm): e_t = γe + (1 − γ)‖g_t‖; s_t = (e_t/‖g_t‖)g_t if
    e_t > ‖g_t‖ else g_t; m from s_t, v from g_t; Adam's bias-corrected step."""
    b1, b2, eps, lr, gamma = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"], hp["gamma"]
    m, v, e, out = np.zeros_like(x), np.zeros_like(x), 0.0, []
    for t, g in enumerate(grads, start=1):
        size = np.sqrt(np.sum(g * g))
        e = gamma * e + (1 - gamma) * size
        s = g * e / size if e > size else g
        m = b1 * m + (1 - b1) * s
        v = b2 * v + (1 - b2) * g * g
        x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        out.append(x)
    return out


def numpy_tiger(x, grads, hp):
    """Su 2023: m ← βm + (1 − β)g; θ ← θ − η(sign(m) + λθ), λ the default decay 0.01."""
    beta, lr, decay = hp["beta"], hp["learning_rate"], hp.get("weight_decay", 0.01) or 0.0
    m, out = np.zeros_like(x), []
    for g in grads:
        m = beta * m + (1 - beta) * g
        x = x - lr * (np.sign(m) + decay * x)
        out.append(x)
    return out


def numpy_kate(x, grads, hp):
    """Choudhury et al. 2024, Algorithm 1 (KATE): b_t² = b_{t−1}² + g² (+ ε, pytorch-optimizer's
    stabiliser); m_t² = m_{t−1}² + ηg² + g²/b_t²; w ← w − β·m_t·g/b_t² (β the learning rate)."""
    b, m, out = np.zeros_like(x), np.zeros_like(x), []
    for g in grads:
        b = np.sqrt(b * b + g * g + hp["epsilon"])
        m = np.sqrt(m * m + hp["delta"] * g * g + g * g / (b * b))
        x = x - hp["learning_rate"] * m * g / (b * b)
        out.append(x)
    return out


CASES = (
    Case("adamod", settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "beta_3": 0.9, "beta_2": 0.99}),
         numpy=numpy_adamod, quadratic=(0.1, 500), rosenbrock=(0.03, 5000),
         half_precision_learning_rate=1.0),  # the smoothed step sizes start near 0.001 of Adam's
    Case("cautious_adamw",
         settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "beta_1": 0.5, "weight_decay": 0.1}),
         numpy=numpy_cautious_adamw, quadratic=(0.1, 500), rosenbrock=(0.03, 5000), xla_tolerance=1e-5),
    Case("mars_adamw", settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "gamma": 0.5, "beta_1": 0.9}),
         numpy=numpy_mars_adamw, quadratic=(0.1, 500), rosenbrock=(0.01, 1000), xla_tolerance=1e-5),
    Case("laprop",
         settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3}),
         numpy=numpy_laprop, quadratic=(0.1, 500), rosenbrock=(0.1, 2000)),
    Case("adaboundw",
         settings=({"learning_rate": 0.05},
                   {"learning_rate": 0.1, "final_lr": 0.05, "gamma": 0.1, "weight_decay": 0.01}),
         numpy=numpy_adaboundw, quadratic=(0.1, 500), rosenbrock=(0.1, 2000),
         # the bounds close on SGD at final_lr, and SGD at the default 0.1 diverges in Rosenbrock's
         # valley (stable below 2/1000): a final rate of 1e-3, reached slowly (gamma 1e-5)
         descent_settings={"final_lr": 0.001, "gamma": 1e-5}),
    Case("diffgrad", settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.9}),
         numpy=numpy_diffgrad, quadratic=(0.1, 500), rosenbrock=(0.1, 2000)),
    Case("swats", settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "epsilon": 0.05, "beta_2": 0.9}),
         numpy=numpy_swats, quadratic=(0.1, 500), rosenbrock=(0.1, 2000), xla_tolerance=1e-5),
    Case("adamp",
         settings=({"learning_rate": 0.05},
                   {"learning_rate": 0.1, "delta": 10.0, "weight_decay": 0.1, "nesterov": True}),
         numpy=numpy_adamp, quadratic=(0.1, 500), rosenbrock=(0.1, 2000), xla_tolerance=1e-5),
    Case("aggmo", settings=({"learning_rate": 0.01}, {"learning_rate": 0.05, "beta_0": 0.5, "beta_2": 0.9}),
         numpy=numpy_aggmo, quadratic=(0.01, 500), rosenbrock=(0.001, 2000)),
    Case("adam_mini", settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "beta_2": 0.9, "weight_decay": 0.1}),
         numpy=numpy_adam_mini, quadratic=(0.1, 500), rosenbrock=(0.1, 2000), xla_tolerance=1e-5),
    Case("nadamw", settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "beta_1": 0.5, "weight_decay": 0.01}),
         numpy=numpy_nadamw, quadratic=(0.1, 500), rosenbrock=(0.03, 2000)),
    Case("accsgd",
         settings=({"learning_rate": 0.01}, {"learning_rate": 0.05, "kappa": 100.0, "xi": 5.0, "constant": 0.5}),
         numpy=numpy_accsgd, quadratic=(0.003, 1000), rosenbrock=(0.001, 2000)),
    Case("pid",
         settings=({"learning_rate": 0.01},
                   {"learning_rate": 0.02, "momentum": 0.5, "integral": 2.0, "derivative": 3.0}),
         numpy=numpy_pid, quadratic=(0.001, 500), rosenbrock=(0.0001, 2000),
         xla_tolerance=1e-5),  # its gains (1 + I / (1 - momentum) = 51 times the rate) amplify rounding
    Case("adanorm", settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "gamma": 0.5, "beta_2": 0.9}),
         numpy=numpy_adanorm, quadratic=(0.1, 500), xla_tolerance=1e-5,
         # the norm correction keeps steps at the running norm as gradients shrink, so a constant
         # rate hovers near 2e-4 above Rosenbrock's minimum; a decaying one settles
         rosenbrock=(decaying(0.01, 0.999), 2000)),
    Case("tiger", settings=({"learning_rate": 0.01}, {"learning_rate": 0.1, "beta": 0.5, "weight_decay": 0.0}),
         numpy=numpy_tiger, quadratic=(0.0001, 12000), rosenbrock=(decaying(0.01, 0.9995), 20000),
         # the sign of a slow momentum (beta 0.965) overshoots by about rate / (1 - beta): a rate
         # that decays lets 300 half-precision steps settle within 0.1
         half_precision_learning_rate=decaying(0.05, 0.985)),
    Case("kate", settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "delta": 0.5, "epsilon": 1e-3}),
         # its steps shrink as 1 / (the number of steps): large rates (the step is m * g / b ** 2,
         # in the variable's units per gradient unit, so the rate carries the problem's scale)
         numpy=numpy_kate, quadratic=(10.0, 2000), rosenbrock=(20.0, 10000), half_precision_learning_rate=3.0),
)
