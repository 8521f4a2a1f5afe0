"""Adai (Xie et al. 2022, "Adaptive Inertia"): momentum whose inertia adapts, element by element.

Each step, with t the step and v̄ the mean of v̂ over every element of every variable:

    v ← β₂·v + (1 − β₂)·g²,   v̂ = v / (1 − β₂ᵗ)
    β₁ = clip(1 − β₀ · v̂ / v̄, 0, 1 − ε)                       per element
    m ← β₁·m + (1 − β₁)·g,   P ← P·β₁                          P starts at 1
    x ← x − lr · m / (1 − P)

v̄ is one number for the whole model, so no per-variable rule can express it: this optimizer
overrides :meth:`Optimizer.update_variables` and makes two passes, the second moments and their
sum first, then every variable's inertia and step (as the authors' code does). A step whose v̄ is
zero (every gradient so far zero) takes β₁ = 1 − ε everywhere, where m stays zero.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from optreg.model.definitions import Slot
from optreg.model.python_builtins import ADAI_HYPERPARAMETERS
from optreg.runtime.optimizer import Optimizer

__all__ = ["Adai"]


class Adai(Optimizer):
    """Adai: adaptive inertia from the second moment relative to its mean over the model.

    Args:
        **kwargs: the hyperparameters and the options every optimizer takes.

    Example:
        >>> opt = optreg.registry.create("adai", learning_rate=0.1)  # doctest: +SKIP
        >>> opt.apply_gradients(zip(grads, model.trainable_variables))  # doctest: +SKIP
    """

    optimizer_name = "adai"
    summary = "Adai: adaptive inertia"
    hyperparameter_specs = ADAI_HYPERPARAMETERS
    slot_specs = (
        Slot("m", doc="the momentum, with per-element inertia"),
        Slot("v", doc="running mean of the squared gradient"),
        Slot("beta_1_product", init="ones", doc="the product of every step's beta_1 so far (m's bias correction)"),
    )

    def update_variables(self, grads: list[Any], variables: list[Any], step: tf.Tensor, update_one: Any) -> None:
        """Both passes: the second moments and v̄ over every variable, then each variable's step."""
        # Under a distribution strategy this runs in cross-replica context: each assignment writes
        # every replica's copy, and the sum reads their (identical) values.
        h = self.hyperparameter_state.variables
        correction_2 = 1 - h["beta_2"] ** step
        total = tf.constant(0.0, tf.float64)
        count = 0
        for grad, var in zip(grads, variables):
            v = self.slots_for(var)["v"]
            g = tf.cast(grad, v.dtype)
            v.assign(tf.cast(h["beta_2"], v.dtype) * v + tf.cast(1 - h["beta_2"], v.dtype) * tf.square(g))
            total += tf.cast(tf.reduce_sum(v), tf.float64) / correction_2
            count += int(var.shape.num_elements() or 0)
        mean = total / max(count, 1)
        for grad, var in zip(grads, variables):
            self._step_variable(grad, var, correction_2, mean)

    def _step_variable(self, grad: Any, var: tf.Variable, correction_2: tf.Tensor, mean: tf.Tensor) -> None:
        """One variable's inertia, momentum and step."""
        h = self.hyperparameter_state.variables
        slots = self.slots_for(var)
        dtype = slots["m"].dtype

        def cast(value: tf.Tensor) -> tf.Tensor:
            return tf.cast(value, dtype)

        v_hat = slots["v"] / cast(correction_2)
        ratio = tf.where(mean > 0, v_hat / cast(tf.where(mean > 0, mean, 1.0)), tf.zeros_like(v_hat))
        beta_1 = tf.clip_by_value(1 - cast(h["beta_0"]) * ratio, 0.0, 1 - cast(h["epsilon"]))
        product = slots["beta_1_product"] * beta_1
        m = beta_1 * slots["m"] + (1 - beta_1) * tf.cast(grad, dtype)
        slots["beta_1_product"].assign(product)
        slots["m"].assign(m)
        new = tf.cast(var.read_value(), dtype) - cast(h["learning_rate"]) * m / (1 - product)
        var.assign(tf.cast(new, var.dtype))

    def update_variable(self, grad: tf.Tensor, var: tf.Variable, slots: Any, prepared: Any) -> None:
        """Not used: :meth:`update_variables` updates every variable together."""
        raise NotImplementedError("adai updates all variables together in update_variables")
