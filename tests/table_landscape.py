"""The second batch of issue 17's optimizers (pytorch-optimizer's and optax's lists).

Each NumPy reference is written from the paper's algorithm in its own symbols and order of
operations, in float64, not from the spec's rule. Where the spec follows a reference
implementation on a point the paper leaves open or states otherwise (where ε goes, a bias
correction, a window), the docstring says which, and the spec's ``notes`` name it.
"""

from __future__ import annotations

import numpy as np

from tests.optimizer_table import Case, decaying


def numpy_ranger(x, grads, hp):
    """Wright 2019: RAdam (Liu et al. 2020, Algorithm 2) as the fast optimizer of Lookahead (Zhang
    et al. 2019, Algorithm 1). ρ∞ = 2/(1 − β₂) − 1, ρ_t = ρ∞ − 2tβ₂ᵗ/(1 − β₂ᵗ); when ρ_t ≥ 5,
    θ ← θ − α·r_t·m̂_t·l_t with l_t = √(1 − β₂ᵗ)/(√v_t + ε) (ε on √v, as the author's code) and
    r_t = √((ρ_t − 4)(ρ_t − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρ_t)); else θ ← θ − α·m̂_t. Every k steps
    φ ← φ + a(θ − φ), θ ← φ."""
    b1, b2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    k, pull, threshold = hp["sync_period"], hp["slow_step_size"], hp["threshold"]
    m, v, slow, out = np.zeros_like(x), np.zeros_like(x), x.copy(), []
    rho_infinity = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        rho = rho_infinity - 2 * t * b2**t / (1 - b2**t)
        if rho >= threshold:
            r = np.sqrt((rho - 4) * (rho - 2) * rho_infinity / ((rho_infinity - 4) * (rho_infinity - 2) * rho))
            x = x - lr * r * m_hat * np.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
        else:
            x = x - lr * m_hat
        if t % k == 0:
            slow = slow + pull * (x - slow)
            x = slow.copy()
        out.append(x)
    return out


def numpy_adamaxw(x, grads, hp):
    """Kingma & Ba 2015, Algorithm 2 (AdaMax) with ε inside the maximum as optax.adamaxw,
    u_t = max(β₂u, |g| + ε), and decoupled decay (default 1e-4): θ ← θ − α(m_t/((1 − β₁ᵗ)u_t) + λθ)."""
    b1, b2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    decay = hp.get("weight_decay", 1e-4) or 0.0
    m, u, out = np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        x = x - lr * (m / ((1 - b1**t) * u) + decay * x)
        out.append(x)
    return out


def numpy_fromage(x, grads, hp):
    """Bernstein et al. 2020, Algorithm 1, the whole variable as one layer: W ← (W − η·‖W‖/‖g‖·g)
    / √(1 + η²), both norms taken as at least min_norm (optax's clipping)."""
    lr, floor = hp["learning_rate"], hp["min_norm"]
    out = []
    for g in grads:
        ratio = max(np.linalg.norm(x), floor) / max(np.linalg.norm(g), floor)
        x = (x - lr * ratio * g) / np.sqrt(1 + lr * lr)
        out.append(x)
    return out


def numpy_optimistic_gd(x, grads, hp):
    """Daskalakis et al. 2018, optimistic mirror descent with Mokhtari et al.'s weights:
    w_{t+1} = w_t − η((α + β)g_t − βg_{t−1}), taking g_0 = g_1 as optax does."""
    lr, alpha, beta = hp["learning_rate"], hp["alpha"], hp["beta"]
    previous, out = grads[0], []
    for g in grads:
        x = x - lr * ((alpha + beta) * g - beta * previous)
        previous = g
        out.append(x)
    return out


def numpy_qhm(x, grads, hp):
    """Ma & Yarats 2019, Algorithm 1: g_{t+1} = βg_t + (1 − β)∇; θ ← θ − α[(1 − ν)∇ + νg_{t+1}]."""
    lr, beta, nu = hp["learning_rate"], hp["beta"], hp["nu"]
    buffer, out = np.zeros_like(x), []
    for g in grads:
        buffer = beta * buffer + (1 - beta) * g
        x = x - lr * ((1 - nu) * g + nu * buffer)
        out.append(x)
    return out


def numpy_padam(x, grads, hp):
    """Chen et al. 2020, Algorithm 1 (Padam): θ ← θ − α_t·m_t/v̂_t^p, with v̂ = max(v̂, v_t) under
    amsgrad (else v_t) and, as the authors' code, ε added to √v̂ before the power 2p and the step
    bias-corrected: α_t = α·√(1 − β₂ᵗ)/(1 − β₁ᵗ)."""
    b1, b2, eps, lr, p = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"], hp["partial"]
    m, v, v_hat, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_hat = np.maximum(v_hat, v) if hp["amsgrad"] else v
        x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / np.power(np.sqrt(v_hat) + eps, 2 * p)
        out.append(x)
    return out


def numpy_apollo(x, grads, hp):
    """Ma 2020, Algorithm 1: m_{t+1} = β(1 − βᵗ)/(1 − βᵗ⁺¹)·m_t + (1 − β)/(1 − βᵗ⁺¹)·g_{t+1};
    B_{t+1} = B_t − (d_tᵀ(m_{t+1} − m_t) + d_tᵀB_t d_t)/D·diag(d_t²); d_{t+1} = m_{t+1}/rectify(B);
    θ ← θ − η_t·d_{t+1}. As the author's code: D = (‖d_t‖₄ + ε')⁴, ε' = ε/0.01 with the constant
    rebound rectify(B) = max(|B|, 0.01), ε' = ε with the belief rebound max(|B|, ‖g − m_t‖∞) + ε/α_t
    (α_t = (1 − β)/(1 − βᵗ⁺¹)); η_t rises linearly from init_lr over warmup_steps."""
    beta, lr, lr_0, warmup, eps = hp["beta"], hp["learning_rate"], hp["init_lr"], hp["warmup_steps"], hp["epsilon"]
    belief = hp["belief_rebound"]
    m, b, d, out = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), []
    for t, g in enumerate(grads):  # t counts the steps already taken, as the paper's m_t
        m_next = beta * (1 - beta**t) / (1 - beta ** (t + 1)) * m + (1 - beta) / (1 - beta ** (t + 1)) * g
        scale = (np.sum(d**4) ** 0.25 + (eps if belief else eps / 0.01)) ** 4
        b = b - (np.sum(d * (m_next - m)) + np.sum(d * b * d)) / scale * d * d
        if belief:
            alpha = (1 - beta) / (1 - beta ** (t + 1))
            d = m_next / (np.maximum(np.abs(b), np.max(np.abs(g - m))) + eps / alpha)
        else:
            d = m_next / np.maximum(np.abs(b), 0.01)
        rate = (lr - lr_0) * (t + 1) / warmup + lr_0 if t + 1 < warmup else lr
        x = x - rate * d
        m = m_next
        out.append(x)
    return out


def numpy_adasmooth(x, grads, hp):
    """Lu 2022, Algorithm 1, with the efficiency ratio over the whole history (pytorch-optimizer's;
    the paper's window M is then t): e_t = |x_t − x_0| / (Σᵢ|x_i − x_{i−1}| + ε); c_t = (ρ₂ − ρ₁)e_t
    + (1 − ρ₂); E[g²]_t = c_t²g_t² + (1 − c_t²)E[g²]_{t−1}; x ← x − η·g_t/√(E[g²]_t + ε)."""
    rho_1, rho_2, eps, lr = hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["learning_rate"]
    history, average, out = [x.copy()], np.zeros_like(x), []
    for g in grads:
        path = sum((np.abs(b - a) for a, b in zip(history, history[1:])), np.zeros_like(x))
        ratio = np.abs(history[-1] - history[0]) / (path + eps)
        c = (rho_2 - rho_1) * ratio + (1 - rho_2)
        average = c * c * g * g + (1 - c * c) * average
        x = x - lr * g / np.sqrt(average + eps)
        history.append(x)
        out.append(x)
    return out


def numpy_amos(x, grads, hp):
    """Tian & Parikh 2022 as the authors' code (jestimator) writes it, with one v and b for the
    whole variable and pytorch-optimizer's η from the shape (0.5 below rank 2, √(2/fan_in) for a
    matrix, √(1/fan_in) above; fan_in the second-to-last axis in Keras's layout):
    v ← βv + (1 − β)·mean(g²); r = (1 − βᵗ)/(v + ε); γ = ξ²·r·mean(g²)/√(1 + c√ξ·b);
    Δ = −(ξη√r·g + (γ/2 + λ)θ)/(1 + d√(ξη)·b); b ← b + γ(1 + b); θ ← θ + Δ (or its running mean)."""
    xi, beta, eps, l2 = hp["learning_rate"], hp["beta"], hp["epsilon"], hp["extra_l2"]
    c, d, momentum = hp["c_coef"], hp["d_coef"], hp["momentum"]
    eta = 0.5 if x.ndim < 2 else np.sqrt((2.0 if x.ndim == 2 else 1.0) / x.shape[-2])
    v, b, average, out = 0.0, 0.0, np.zeros_like(x), []
    for t, g in enumerate(grads, start=1):
        g2 = np.mean(g * g)
        v = beta * v + (1 - beta) * g2
        r = (1 - beta**t) / (v + eps)
        gamma = xi * xi * r * g2 / np.sqrt(1 + c * np.sqrt(xi) * b)
        delta = -(xi * eta * np.sqrt(r) * g + (gamma / 2 + l2) * x) / (1 + d * np.sqrt(xi * eta) * b)
        b = b + gamma * (1 + b)
        if momentum > 0:
            average = momentum * average + (1 - momentum) * delta
            delta = average
        x = x + delta
        out.append(x)
    return out


CASES = (
    Case("ranger",
         settings=({"learning_rate": 0.05},
                   {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.9, "sync_period": 4, "slow_step_size": 0.8}),
         numpy=numpy_ranger, quadratic=(0.03, 2000),
         # its first steps (rho_t < 5) are momentum SGD in gradient units: Rosenbrock's gradient of
         # about 230 at the start throws a rate of 0.01 out of the valley
         rosenbrock=(0.005, 10000), half_precision_learning_rate=0.1),
    Case("adamaxw",
         settings=({"learning_rate": 0.05},
                   {"learning_rate": 0.1, "beta_2": 0.9, "epsilon": 0.01, "weight_decay": 0.1}),
         numpy=numpy_adamaxw, quadratic=(0.1, 500), rosenbrock=(0.03, 5000)),
    Case("fromage", settings=({"learning_rate": 0.05}, {"learning_rate": 0.2, "min_norm": 0.5}),
         numpy=numpy_fromage, quadratic=(0.1, 500), xla_tolerance=1e-5,
         # its steps are a fixed fraction of the variable's norm: a decaying rate settles
         rosenbrock=(decaying(0.05, 0.999), 5000),
         # (1 - lr * g) / sqrt(1 + lr ** 2): the shrink is of second order in the rate
         learning_rate_power=None,
         # a first step of learning_rate * min_norm (5e-8 at the default 1e-6) is below float16's
         # resolution at 0, so the half-precision test starts it with a larger floor
         half_precision_settings={"min_norm": 0.01}),
    Case("optimistic_gd", settings=({"learning_rate": 0.01}, {"learning_rate": 0.05, "alpha": 0.5, "beta": 2.0}),
         numpy=numpy_optimistic_gd, quadratic=(0.005, 2000),
         # stable for rate * curvature < 2/3 (Rosenbrock's is about 1000 at the minimum)
         rosenbrock=(0.0006, 20000)),
    Case("qhm", settings=({"learning_rate": 0.01}, {"learning_rate": 0.05, "beta": 0.5, "nu": 0.3}),
         numpy=numpy_qhm, quadratic=(0.03, 2000), rosenbrock=(0.003, 5000),
         # the default beta 0.999 averages a thousand gradients, longer than either descent
         descent_settings={"beta": 0.9}),
    Case("padam",
         settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "partial": 0.125, "amsgrad": True, "beta_2": 0.9}),
         numpy=numpy_padam, quadratic=(0.1, 500), rosenbrock=(0.1, 2000)),
    Case("apollo",
         settings=({"learning_rate": 0.01, "warmup_steps": 10},
                   {"learning_rate": 0.1, "warmup_steps": 0, "belief_rebound": True, "beta": 0.5}),
         numpy=numpy_apollo, xla_tolerance=1e-5,
         # its step m / max(|B|, 0.01) is 100 times the gradient until B has learnt the curvature
         quadratic=(3e-4, 1000), rosenbrock=(3e-4, 3000),
         # its step size rises from init_lr = 1e-5 whatever the learning rate
         learning_rate_power=None),
    Case("adasmooth",
         settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "beta_1": 0.3, "beta_2": 0.9, "epsilon": 1e-3}),
         numpy=numpy_adasmooth, quadratic=(0.1, 500),
         # RMSprop-like steps of about the rate's size hover in the valley unless the rate decays
         rosenbrock=(decaying(0.003, 0.9998), 10000)),
    Case("amos",
         settings=({"learning_rate": 0.05}, {"learning_rate": 0.1, "beta": 0.9, "momentum": 0.5, "extra_l2": 0.01}),
         numpy=numpy_amos, quadratic=(0.1, 1000), xla_tolerance=1e-5,
         # its decay gamma grows as the rate squared, its step as the rate
         learning_rate_power=None,
         # its adaptive weight decay pulls toward 0 until b has grown; Rosenbrock's minimum is at (1, 1)
         rosenbrock=(0.3, 10000)),
)
