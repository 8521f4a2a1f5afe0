"""Gradient hooks: transformations applied to the gradients before every update.

Before any hook, with ``skip_nonfinite=True`` (optax's ``apply_if_finite``; Keras has no
such option), a step whose gradients hold a NaN or an infinity is skipped whole: no variable,
slot or step counter changes, and ``skipped_steps`` counts it. The default, False, applies every
step as Keras does, so a non-finite gradient reaches the variables.

The hooks then run in this order, each seeing the previous one's output:

1. **clipping**, at most one of
   * ``clipnorm``: each gradient tensor is rescaled so its L2 norm is at most the value;
   * ``global_clipnorm``: all gradients are rescaled together so their joint L2 norm is at
     most the value;
   * ``clipvalue``: each element is limited to ``[-value, value]``.

Setting more than one clipping option is an error, as in Keras. The options are validated
without TensorFlow; the clipping itself is :mod:`optreg.runtime.clipping`'s. When the bench
steps an optimizer with stacked hyperparameters (one value per run, the runs on the variables'
last axis), the same hooks clip each run on its own: its norms, the global one too, are over
its own entries only. One optimizer is the one-run case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from optreg.model.option_values import GradientOptions
from optreg.runtime.clipping import clipping

__all__ = ["GradientHook", "gradient_hooks"]

#: A hook takes the gradients and their variables, in matching order, and which axis of them
#: indexes stacked runs (0: none, an optimizer's own variables; 1: the leading axis; -1: the last,
#: as the bench stacks runs; see :mod:`optreg.runtime.clipping`), and returns new gradients.
GradientHook = Callable[[Sequence[Any], Sequence[Any], int], list[Any]]


def gradient_hooks(options: GradientOptions) -> tuple[GradientHook, ...]:
    """The hooks an optimizer runs before each update, in order.

    Args:
        options: the validated gradient options.

    Returns:
        A tuple of hooks; empty when no option is set.

    Example:
        >>> [hook.__name__ for hook in gradient_hooks(GradientOptions(clipnorm=2.0))]
        ['clip_by_norm']
    """
    chosen = clipping(options)
    if chosen is None:
        return ()
    clip, threshold = chosen

    def hook(grads: Sequence[Any], variables: Sequence[Any], run_axes: int = 0) -> list[Any]:
        return clip(grads, threshold, run_axes)

    hook.__name__ = clip.__name__
    return (hook,)
