"""The built-in plugin: optreg's own specs and problems arrive through the same hooks as
everyone else's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from optreg.hookspecs import hookimpl
from optreg.model.definitions import PythonOptimizer
from optreg.model.python_builtins import PYTHON_OPTIMIZERS
from optreg.problems import Problem
from optreg.problems.analytic import ANALYTIC_PROBLEMS
from optreg.problems.regression import MLP_REGRESSION
from optreg.problems.workloads import WORKLOAD_PROBLEMS

#: The name the built-in plugin is registered under; its optimizers' source.
PLUGIN_NAME = "builtin"


def builtin_spec_dir() -> Path:
    """Where the built-in specs are: inside the installed package, or the source tree's
    top-level ``specs/`` folder when running from a checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "specs"
    return installed if installed.is_dir() else package.parent / "specs"


@hookimpl
def optreg_spec_paths() -> list[Path]:
    """The built-in ``specs/`` folder."""
    return [builtin_spec_dir()]


@hookimpl
def optreg_register_optimizers(register: Callable[[PythonOptimizer], None]) -> None:
    """The built-in Python optimizers (lookahead, prodigy, adahessian, adai)."""
    for definition in PYTHON_OPTIMIZERS:
        register(definition)


@hookimpl
def optreg_register_problems(register: Callable[[Problem], None]) -> None:
    """The built-in problems."""
    for problem in (*ANALYTIC_PROBLEMS, MLP_REGRESSION, *WORKLOAD_PROBLEMS):
        register(problem)
