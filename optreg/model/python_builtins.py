"""The definitions of optreg's built-in Python optimizers (lookahead, prodigy, adahessian, adai): pure records,
read by the built-in plugin that registers them and by the classes that implement them, so the
two cannot disagree and neither imports the other.
"""

from __future__ import annotations

from optreg.model.definitions import InnerOptimizer, PythonOptimizer
from optreg.model.hyperparameters import Hyperparameter

#: Lookahead's own hyperparameters (the inner optimizer's come on top); the class declares the same.
LOOKAHEAD_HYPERPARAMETERS = (
    Hyperparameter("sync_period", 5, "int", 1.0, None, "inner steps between synchronisations (k)"),
    Hyperparameter(
        "slow_step_size", 0.5, "float", 0.0, 1.0, "how far the slow weights move towards the fast ones (alpha)"
    ),
)

#: Prodigy's hyperparameters; the class declares the same.
PRODIGY_HYPERPARAMETERS = (
    Hyperparameter(
        "learning_rate", 1.0, "float", 0.0, None, "scales the estimated step size d (1 leaves it as estimated)"
    ),
    Hyperparameter("beta_1", 0.9, "float", 0.0, 1.0, "decay rate of the first-moment estimate"),
    Hyperparameter("beta_2", 0.999, "float", 0.0, 1.0, "decay rate of the second-moment estimate"),
    Hyperparameter(
        "beta_3", 0.0, "float", 0.0, 1.0, "decay rate of the distance estimate's sums (0: sqrt(beta_2))"
    ),
    Hyperparameter("epsilon", 1e-8, "float", 0.0, None, "keeps the denominator away from zero (scaled by d)"),
    Hyperparameter("d0", 1e-6, "float", 1e-300, None, "the first step-size estimate", fixed=True),
    Hyperparameter("d_coef", 1.0, "float", 0.0, None, "multiplies every new estimate of d"),
    Hyperparameter(
        "growth_rate",
        0.0,
        "float",
        0.0,
        None,
        "largest factor d may grow by in one step (0 or inf, the reference's default: unlimited)",
        infinite=True,
    ),
    Hyperparameter("bias_correction", False, "bool", None, None, "Adam's bias correction of the step", fixed=True),
    Hyperparameter(
        "safeguard_warmup", False, "bool", None, None, "leave the learning rate out of the distance sums", fixed=True
    ),
    Hyperparameter(
        "decouple", True, "bool", None, None, "the weight_decay option decays decoupled (AdamW) rather than as L2",
        fixed=True,
    ),
)

#: AdaHessian's hyperparameters (the authors' defaults); the class declares the same.
ADAHESSIAN_HYPERPARAMETERS = (
    Hyperparameter("learning_rate", 0.15, "float", 0.0, None, "step size"),
    Hyperparameter("beta_1", 0.9, "float", 0.0, 1.0, "decay rate of the gradient's running mean"),
    Hyperparameter("beta_2", 0.999, "float", 0.0, 1.0, "decay rate of the squared Hessian diagonal's running mean"),
    Hyperparameter("epsilon", 1e-4, "float", 0.0, None, "keeps the denominator away from zero"),
    Hyperparameter(
        "hessian_power", 1.0, "float", 0.0, 1.0, "k: the step divides by the Hessian estimate to this power"
    ),
    Hyperparameter(
        "seed", 0, "int", 0.0, 2147483647.0, "seed of the Rademacher probes (with the step and the variable)"
    ),
)

#: Adai's hyperparameters (the authors' betas and epsilon); the class declares the same.
ADAI_HYPERPARAMETERS = (
    Hyperparameter("learning_rate", 1e-3, "float", 0.0, None, "step size (pytorch-optimizer's default)"),
    Hyperparameter("beta_0", 0.1, "float", 0.0, None, "the inertia's scale: beta_1 = 1 - beta_0 * v_hat / mean(v_hat)"),
    Hyperparameter("beta_2", 0.99, "float", 0.0, 1.0, "decay rate of the squared gradient's running mean"),
    Hyperparameter("epsilon", 1e-3, "float", 0.0, None, "beta_1 is clipped into [0, 1 - epsilon]"),
)

#: The built-in optimizers written in Python, registered by import path (no TensorFlow to list them).
PYTHON_OPTIMIZERS = (
    PythonOptimizer(
        name="lookahead",
        summary=(
            "Lookahead: any registered optimizer's fast weights, pulled back to slowly moving weights every k steps"
        ),
        factory="optreg.runtime.lookahead:Lookahead",
        hyperparameters=LOOKAHEAD_HYPERPARAMETERS,
        inner=InnerOptimizer("inner", "adam"),
        references=(
            "Zhang, Lucas, Hinton & Ba 2019, Lookahead Optimizer: k steps forward, 1 step back, NeurIPS, "
            "arXiv:1907.08610 (Algorithm 1)",
        ),
    ),
    PythonOptimizer(
        name="prodigy",
        summary=(
            "Prodigy: Adam whose step size d is estimated from the distance travelled, summed over every variable"
        ),
        factory="optreg.runtime.prodigy:Prodigy",
        hyperparameters=PRODIGY_HYPERPARAMETERS,
        references=(
            "Mishchenko & Defazio 2024, Prodigy: An Expeditiously Adaptive Parameter-Free Learner, ICML, "
            "arXiv:2306.06101 (Algorithm 3)",
        ),
    ),
    PythonOptimizer(
        name="adahessian",
        summary=(
            "AdaHessian: Adam whose second moment is of the Hessian diagonal, estimated from Rademacher "
            "probes (needs the loss: minimize)"
        ),
        factory="optreg.runtime.adahessian:AdaHessian",
        hyperparameters=ADAHESSIAN_HYPERPARAMETERS,
        references=(
            "Yao, Gholami, Shen, Mustafa, Keutzer & Mahoney 2021, ADAHESSIAN: An Adaptive Second Order "
            "Optimizer for Machine Learning, AAAI, arXiv:2006.00719 (Algorithm 1)",
        ),
    ),
    PythonOptimizer(
        name="adai",
        summary=(
            "Adai: momentum whose inertia adapts per element to v_hat over its mean over every variable"
        ),
        factory="optreg.runtime.adai:Adai",
        hyperparameters=ADAI_HYPERPARAMETERS,
        references=(
            "Xie, Wang, Zhang, Sato & Sugiyama 2022, Adaptive Inertia: Disentangling the Effects of Adaptive "
            "Learning Rate and Momentum, ICML, arXiv:2006.15815 (Algorithm 2)",
        ),
    ),
)
