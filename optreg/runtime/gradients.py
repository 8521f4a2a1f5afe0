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
without TensorFlow; the hooks themselves import it lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from optreg.model.option_values import GradientOptions

#: A hook takes the gradients and their variables, in matching order, and returns new gradients.
GradientHook = Callable[[Sequence[Any], Sequence[Any]], list]

def gradient_hooks(options: GradientOptions) -> tuple[GradientHook, ...]:
    """The hooks an optimizer runs before each update, in order.

    Args:
        options: the validated gradient options.

    Returns:
        A tuple of hooks; empty when no option is set.

    Example:
        >>> [hook.__name__ for hook in gradient_hooks(GradientOptions(clipnorm=2.0))]
        ['clip_each_norm']
    """
    hooks: list[GradientHook] = []
    if options.clipnorm is not None:
        hooks.append(_clip_each_norm(options.clipnorm))
    if options.global_clipnorm is not None:
        hooks.append(_clip_global_norm(options.global_clipnorm))
    if options.clipvalue is not None:
        hooks.append(_clip_values(options.clipvalue))
    return tuple(hooks)


def _clip_each_norm(limit: float) -> GradientHook:
    """Rescale each gradient tensor to an L2 norm of at most ``limit``."""
    import tensorflow as tf

    def clip_each_norm(grads: Sequence[Any], variables: Sequence[Any]):
        return [tf.clip_by_norm(g, tf.cast(limit, g.dtype)) for g in grads]

    return clip_each_norm


def _clip_global_norm(limit: float) -> GradientHook:
    """Rescale all gradients together to a joint L2 norm of at most ``limit``."""
    import tensorflow as tf

    def clip_global_norm(grads: Sequence[Any], variables: Sequence[Any]):
        clipped, _ = tf.clip_by_global_norm(list(grads), limit)
        return clipped

    return clip_global_norm


def _clip_values(limit: float) -> GradientHook:
    """Limit every gradient element to ``[-limit, limit]``."""
    import tensorflow as tf

    def clip_values(grads: Sequence[Any], variables: Sequence[Any]):
        return [tf.clip_by_value(g, -tf.cast(limit, g.dtype), tf.cast(limit, g.dtype)) for g in grads]

    return clip_values
