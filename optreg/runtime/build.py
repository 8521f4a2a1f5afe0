"""The catalogue's one way into the TensorFlow runtime.

:meth:`optreg.catalog.entries.OptimizerEntry.build` imports this module inside the method that
builds, so listing, showing and validating never import TensorFlow; nothing else in the catalogue
or the plugin host imports the runtime.
"""

from __future__ import annotations

from typing import Any

from optreg.model.definitions import OptimizerSpec
from optreg.runtime.optimizer import Optimizer
from optreg.runtime.spec_optimizer import SpecOptimizer


def spec_optimizer(spec: OptimizerSpec, **kwargs: Any) -> SpecOptimizer:
    """Build the optimizer a spec describes.

    Args:
        spec: the loaded spec.
        **kwargs: hyperparameters and optimizer options.

    Returns:
        A :class:`~optreg.runtime.spec_optimizer.SpecOptimizer`.

    Example:
        >>> from optreg.spec.reader import load_spec_text
        >>> spec = load_spec_text('''
        ... [optimizer]
        ... name = "gd"
        ... summary = "plain steps"
        ... [hyperparameters]
        ... learning_rate = { default = 0.1 }
        ... [update]
        ... rule = ["var = var - learning_rate * grad"]
        ... ''')
        >>> spec_optimizer(spec, learning_rate=0.5).hyperparameters
        {'learning_rate': 0.5}
    """
    return SpecOptimizer(spec, **kwargs)


def is_optimizer_class(found: Any) -> bool:
    """Whether a plugin's factory is a class a Python optimizer may be: an :class:`optreg.Optimizer`
    subclass.

    Example:
        >>> is_optimizer_class(Optimizer), is_optimizer_class(dict)
        (True, False)
    """
    return isinstance(found, type) and issubclass(found, Optimizer)
