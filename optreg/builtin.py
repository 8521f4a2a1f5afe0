"""The built-in plugin: optreg's own specs and problems arrive through the same hooks as
everyone else's."""

from __future__ import annotations

from pathlib import Path

from optreg.hookspecs import hookimpl
from optreg.problems.analytic import ANALYTIC_PROBLEMS
from optreg.problems.regression import MLP_REGRESSION
from optreg.spec import Hyperparameter, PythonOptimizer

#: The name the built-in plugin is registered under; its optimizers' source.
PLUGIN_NAME = "builtin"


def builtin_spec_dir() -> Path:
    """Where the built-in specs are: inside the installed package, or the source tree's
    top-level ``specs/`` folder when running from a checkout."""
    package = Path(__file__).resolve().parent
    installed = package / "specs"
    return installed if installed.is_dir() else package.parent / "specs"


@hookimpl
def optreg_spec_paths():
    """The built-in ``specs/`` folder."""
    return [builtin_spec_dir()]


#: Lookahead's own hyperparameters (the inner optimizer's come on top); the class declares the same.
LOOKAHEAD_HYPERPARAMETERS = (
    Hyperparameter("sync_period", 5, "int", 1.0, None, "inner steps between synchronisations (k)"),
    Hyperparameter("slow_step_size", 0.5, "float", 0.0, 1.0, "how far the slow weights move towards the fast ones (alpha)"),
)

#: The built-in optimizers written in Python, registered by import path (no TensorFlow to list them).
PYTHON_OPTIMIZERS = (
    PythonOptimizer(
        name="lookahead",
        summary="Lookahead: any registered optimizer's fast weights, pulled back to slowly moving weights every k steps",
        factory="optreg.lookahead:Lookahead",
        hyperparameters=LOOKAHEAD_HYPERPARAMETERS,
        references=("Zhang, Lucas, Hinton & Ba 2019, Lookahead Optimizer: k steps forward, 1 step back, NeurIPS, arXiv:1907.08610 (Algorithm 1)",),
    ),
)


@hookimpl
def optreg_register_optimizers(register):
    """The built-in Python optimizers (lookahead)."""
    for definition in PYTHON_OPTIMIZERS:
        register(definition)


@hookimpl
def optreg_register_problems(register):
    """The built-in problems."""
    for problem in (*ANALYTIC_PROBLEMS, MLP_REGRESSION):
        register(problem)
