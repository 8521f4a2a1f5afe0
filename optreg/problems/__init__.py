"""Loss problems for the bench runner: records that describe a function to minimise.

A problem's ``loss`` takes the parameter vector (a float32 tensor of shape ``[dimension]``)
and returns a scalar tensor. It is only called by code that already runs TensorFlow, so
defining a problem never imports it.
"""

from __future__ import annotations

from typing import Callable

import attrs


@attrs.frozen
class Problem:
    """A loss function with a start point and, where known, its minimum.

    Attributes:
        name: the registered name, e.g. ``"quartic"``.
        summary: one line saying what it is.
        start: the starting parameter values.
        loss: parameters (tensor of shape ``[len(start)]``) → scalar loss tensor.
        minimum: the minimising parameters, where known.
        tolerance: how close to ``minimum`` counts as solved.
        source: the plugin that registered it (set by the registry).

    Example:
        >>> bowl = Problem("bowl", "x²", (1.0,), lambda x: x[0] ** 2, minimum=(0.0,))
        >>> bowl.dimension
        1
    """

    name: str
    summary: str
    start: tuple[float, ...] = attrs.field(converter=lambda values: tuple(float(v) for v in values))
    loss: Callable = attrs.field(repr=False)
    minimum: tuple[float, ...] | None = None
    tolerance: float = 1e-3
    #: The plugin that registered it; set by the registry.
    source: str = ""

    @property
    def dimension(self) -> int:
        """How many parameters the problem has."""
        return len(self.start)
