"""optreg: optimizers for TensorFlow, written once as a TOML spec or a small plugin.

``from optreg import registry`` needs no TensorFlow; :class:`Optimizer` and
:class:`SpecOptimizer` import it on first access.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optreg.catalog.registry import PluginWarning, Registry
from optreg.errors import (
    AmbiguousNameError,
    CheckpointError,
    ExpressionError,
    HyperparameterError,
    OptionError,
    OptregError,
    OutputError,
    PluginError,
    RuleError,
    SpecError,
    SpecErrors,
    UnknownNameError,
)
from optreg.hookspecs import hookimpl
from optreg.model.definitions import InnerOptimizer, OptimizerSpec, PythonOptimizer, Slot
from optreg.model.hyperparameters import Hyperparameter
from optreg.runtime import lookup
from optreg.spec.reader import load_spec, load_spec_text
from optreg.version import __version__ as __version__

#: The default registry, discovered from the plugins on first use.
registry = Registry()


def _from_config(config: Mapping[str, Any]) -> Any:
    """Rebuild an optimizer from its config, registered names looked up in :data:`registry`."""
    from optreg.serialization import optimizer_from_config

    return optimizer_from_config(config, registry)


lookup.install(registry.create, _from_config)

_LAZY = {
    "Optimizer": "optreg.runtime.optimizer",
    "SpecOptimizer": "optreg.runtime.spec_optimizer",
    "Lookahead": "optreg.runtime.lookahead",
}

__all__ = [
    "AmbiguousNameError",
    "CheckpointError",
    "ExpressionError",
    "Hyperparameter",
    "HyperparameterError",
    "OptimizerSpec",
    "OptionError",
    "OptregError",
    "OutputError",
    "PluginError",
    "PluginWarning",
    "InnerOptimizer",
    "PythonOptimizer",
    "Registry",
    "RuleError",
    "Slot",
    "SpecError",
    "SpecErrors",
    "UnknownNameError",
    "hookimpl",
    "load_spec",
    "load_spec_text",
    "registry",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import the TensorFlow-side classes only when they are asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optreg' has no attribute {name!r}")
