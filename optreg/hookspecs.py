"""The hooks a plugin can implement, and the markers to implement them with.

optreg uses pluggy under the project name ``optreg``: a plugin is any module or object with
functions decorated by :data:`hookimpl` whose names match the hook specifications below.
Hooks register *descriptions* (spec files, factories named by import path, problem records),
never built optimizers, so discovering plugins never imports TensorFlow.

Each hook call runs under a time limit (10 s, ``OPTREG_HOOK_TIMEOUT`` seconds to change it),
with what it prints sent to stderr; a hook that raises (``SystemExit`` too) or runs out of time
is a failure of its plugin only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pluggy

PROJECT_NAME = "optreg"

#: Marks a function in this module as a hook specification.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's function as the implementation of a hook: ``@optreg.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def optreg_spec_paths() -> Iterable[str]:
    """Name TOML spec files, or folders of them, that define optimizers.

    Returns:
        An iterable of paths (``str`` or :class:`pathlib.Path`). A folder contributes every
        ``*.toml`` file directly inside it, in name order.

    Example:
        >>> from pathlib import Path
        >>> @hookimpl
        ... def optreg_spec_paths():
        ...     return [Path(__file__).parent / "specs"]
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations, never this


@hookspec
def optreg_register_optimizers(register: Callable[..., Any]) -> None:
    """Register optimizers written in Python.

    Args:
        register: call ``register(definition)`` with an :class:`optreg.PythonOptimizer` for each
            optimizer. The definition names the optimizer, its summary and hyperparameters, and
            the ``"module:attribute"`` path of its :class:`optreg.Optimizer` subclass, which is
            imported only when the optimizer is created — so listing stays free of TensorFlow.

    Returns:
        Nothing; the registrations are what counts.

    Example:
        >>> from optreg import PythonOptimizer, Hyperparameter
        >>> @hookimpl
        ... def optreg_register_optimizers(register):
        ...     register(PythonOptimizer(
        ...         name="sam",
        ...         summary="Sharpness-aware minimization",
        ...         factory="optreg_sam.optimizer:SAM",
        ...         hyperparameters=(Hyperparameter("learning_rate", 0.01, min=0.0),),
        ...     ))
    """


@hookspec
def optreg_register_problems(register: Callable[..., Any]) -> None:
    """Register loss problems for ``optreg bench``.

    Args:
        register: call ``register(problem)`` with an :class:`optreg.problems.Problem` for each
            problem the plugin provides. Its ``loss`` maps parameters of shape
            ``[..., dimension]`` to losses of shape ``[...]``, so a sweep evaluates every run
            in one call.

    Returns:
        Nothing; the registrations are what counts.

    Example:
        >>> from optreg.problems import Problem
        >>> @hookimpl
        ... def optreg_register_problems(register):
        ...     register(Problem(name="bowl", summary="x² + y²", start=(1.0, 1.0),
        ...                      minimum=(0.0, 0.0), minimum_loss=0.0,
        ...                      loss=lambda x: x[..., 0] ** 2 + x[..., 1] ** 2))
    """
