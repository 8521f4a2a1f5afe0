"""Exponential moving averages of the variables (``use_ema``), as Keras keeps them.

After every call of ``apply_gradients`` (every call, also those that only accumulate a
gradient), each variable's average becomes ``m·average + (1 − m)·var`` with
``m = ema_momentum``, except on the first update count, where ``m = 0`` so the average starts
at the variable. The count is Keras's ``iterations``: calls before this one, divided by
``gradient_accumulation_steps``. With ``ema_overwrite_frequency = k``, every variable is
overwritten by its average whenever ``count + 1`` is a multiple of ``k``;
``finalize_variable_values`` does it on demand. The averages are variables of the optimizer,
in each variable's dtype, so checkpoints hold them.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def update_averages(
    averages: Sequence[tf.Variable], variables: Sequence[tf.Variable], momentum: float, count: tf.Tensor
) -> None:
    """Move each average towards its variable's current value.

    Args:
        averages: one average per variable.
        variables: the variables, just updated.
        momentum: ``ema_momentum``.
        count: Keras's ``iterations`` before this call (int64 scalar tensor).
    """
    started = tf.not_equal(count, 0)
    for average, var in zip(averages, variables):
        weight = tf.cast(started, var.dtype) * tf.constant(momentum, var.dtype)
        average.assign(weight * average + (1 - weight) * var.read_value())


def overwrite_every(
    frequency: int, count: tf.Tensor, averages: Sequence[tf.Variable], variables: Sequence[tf.Variable]
) -> None:
    """Copy the averages into the variables when ``count + 1`` is a multiple of ``frequency``."""
    due = tf.equal((count + 1) % frequency, 0)
    tf.cond(due, lambda: _copied(averages, variables), lambda: tf.constant(False))


def _copied(averages: Sequence[tf.Variable], variables: Sequence[tf.Variable]) -> tf.Tensor:
    """Assign every average to its variable (a ``tf.cond`` branch)."""
    for average, var in zip(averages, variables):
        var.assign(average.read_value())
    return tf.constant(True)
