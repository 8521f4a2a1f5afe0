"""The SAM optimizer class: coupled to the loss, so it is stepped with ``minimize``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

import tensorflow as tf

import optreg
from optreg_sam import HYPERPARAMETERS


class SAM(optreg.Optimizer):
    """Sharpness-aware minimization (Foret et al. 2021) over an SGD-with-momentum base.

    Each step needs the loss itself, not only its gradient: SAM moves to the worst point of a
    ball of radius ``rho`` around the weights (along the normalised gradient), takes the
    gradient there, returns, and applies that gradient with SGD. So its protocol is
    :meth:`minimize`; ``apply_gradients`` alone cannot perform a SAM step and says so.

    Example:
        >>> opt = optreg.registry.create("sam", learning_rate=0.1, rho=0.05)  # doctest: +SKIP
        >>> opt.minimize(lambda: tf.reduce_sum(x ** 2), [x])  # doctest: +SKIP
    """

    optimizer_name = "sam"
    summary = "Sharpness-aware minimization"
    hyperparameter_specs = HYPERPARAMETERS
    slot_specs = (optreg.Slot("velocity", doc="the base SGD's velocity"),)

    def apply_gradients(self, grads_and_vars: Any, variables: Iterable[tf.Variable] | None = None) -> NoReturn:
        """Refused: a SAM step needs the loss. Call ``minimize(loss_fn, variables)``."""
        raise optreg.OptregError("sam needs the loss to take a step: call minimize(loss_fn, variables)")

    @tf.autograph.experimental.do_not_convert
    def minimize(
        self, loss_fn: Callable[[], tf.Tensor], variables: Iterable[tf.Variable],
        grads: Iterable[tf.Tensor] | None = None,
    ) -> None:
        """One SAM step on ``loss_fn``.

        Args:
            loss_fn: a callable of no arguments returning a scalar loss of ``variables``.
            variables: the variables to update.
            grads: the gradients at the current weights, when already computed.
        """
        variables = list(variables)
        if grads is None:
            grads = _gradients(loss_fn, variables)
        grads = list(grads)
        norm = tf.linalg.global_norm(grads)
        scale = tf.cast(self.rho, norm.dtype) / (norm + 1e-12)
        originals = [tf.identity(v) for v in variables]
        for var, grad in zip(variables, grads):
            var.assign_add(grad * tf.cast(scale, grad.dtype))
        sharp_grads = _gradients(loss_fn, variables)
        for var, original in zip(variables, originals):
            var.assign(original)
        optreg.Optimizer.apply_gradients(self, sharp_grads, variables)

    def update_variable(
        self, grad: tf.Tensor, var: tf.Variable, slots: Mapping[str, tf.Variable], prepared: Any
    ) -> None:
        """The base update: SGD with momentum, as keras.optimizers.SGD."""
        velocity = slots["velocity"]
        learning_rate = tf.cast(self.learning_rate, var.dtype)
        momentum = tf.cast(self.momentum, var.dtype)
        velocity.assign(momentum * velocity - learning_rate * tf.cast(grad, var.dtype))
        var.assign_add(velocity)


def _gradients(loss_fn: Callable[[], tf.Tensor], variables: list[tf.Variable]) -> list[tf.Tensor]:
    with tf.GradientTape() as tape:
        loss = loss_fn()
    return tape.gradient(loss, variables)
