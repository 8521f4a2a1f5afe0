"""optreg-sam: sharpness-aware minimization as an optreg plugin.

Registering it imports nothing heavy: the optimizer class lives in :mod:`optreg_sam.optimizer`
and is imported only when ``sam`` is created.
"""

from __future__ import annotations

from collections.abc import Callable

import optreg

#: What sam accepts; the optimizer class declares the same.
HYPERPARAMETERS = (
    optreg.Hyperparameter("learning_rate", 0.01, min=0.0, doc="step size of the base SGD update"),
    optreg.Hyperparameter("rho", 0.05, min=0.0, doc="radius of the neighbourhood whose worst point is sought"),
    optreg.Hyperparameter("momentum", 0.0, min=0.0, max=1.0, doc="momentum of the base SGD update"),
)


@optreg.hookimpl
def optreg_register_optimizers(register: Callable[[optreg.PythonOptimizer], None]) -> None:
    """Register sam by its import path."""
    register(
        optreg.PythonOptimizer(
            name="sam",
            summary="Sharpness-aware minimization: SGD steps taken with the gradient at the nearby worst point",
            factory="optreg_sam.optimizer:SAM",
            hyperparameters=HYPERPARAMETERS,
            references=(
                "Foret et al. 2021, Sharpness-Aware Minimization for Efficiently Improving Generalization, "
                "arXiv:2010.01412",
            ),
        )
    )
