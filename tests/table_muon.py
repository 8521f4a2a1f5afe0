"""Muon: Newton-Schulz-orthogonalised momentum for matrices and AdamW for every other variable,
checked step for step against ``keras.optimizers.Muon`` (``test_muon.py`` adds models with both
branches, name-based exclusions and the options Keras's Muon has)."""

from __future__ import annotations

from tests.optimizer_table import Case


def keras_muon(hp):
    """``keras.optimizers.Muon`` for the battery's plain ``tf.Variable`` s: Keras's Muon reads
    ``variable.path``, which only Keras variables have, so this subclass falls back to the name
    (the battery's variables hold no "embedding"); the update itself is Keras's."""
    import keras

    class Muon(keras.optimizers.Muon):
        def _should_use_adamw(self, variable):
            if not hasattr(variable, "path"):
                return len(variable.shape) != 2
            return super()._should_use_adamw(variable)

    return Muon(**hp)

# As for Adam, betas that float32 holds exactly make Keras's Adam branch agree step for step.
CASES = (
    Case(
        "muon",
        settings=(
            {"learning_rate": 0.01, "adam_beta_1": 0.875, "adam_beta_2": 1 - 2**-10},
            {
                "learning_rate": 0.05,
                "adam_beta_1": 0.5,
                "adam_beta_2": 0.75,
                "momentum": 0.5,
                "nesterov": False,
                "ns_steps": 3,
                "adam_lr_ratio": 0.5,
                "adam_weight_decay": 0.02,
            },
        ),
        keras=keras_muon,
        # the battery's problems are vectors, so it runs the AdamW branch there; test_muon.py
        # drives the Newton-Schulz branch to the minimum of a matrix problem
        quadratic=(0.1, 500),
        rosenbrock=(0.01, 5000),
        # each Newton-Schulz iteration multiplies three matrices, and float32 rounding of the
        # products differs between Keras's op order and the fused XLA step
        keras_rtol=1e-5,
        xla_tolerance=1e-5,
        # the matrix branch normalises the momentum, so its step does not scale with the rate
        # the way Adam's does for a fresh optimizer on matrices
        learning_rate_power=None,
    ),
)
