"""Prodigy (Mishchenko & Defazio 2024): Adam with a step size it estimates itself.

The estimate ``d`` of the distance to the solution starts at ``d0`` and only grows. Each step,
with ``dlr = d · learning_rate`` (times Adam's bias correction when asked for):

    r ← β₃·r + (d/d0)·dlr·Σ⟨g, x₀ − x⟩          summed over every variable
    m ← β₁·m + d(1 − β₁)·g,   v ← β₂·v + d²(1 − β₂)·g²
    s ← β₃·s + (d/d0)·dlr·g                     (d/d0)·d with safeguard_warmup
    d̂ = d_coef · r / Σ‖s‖₁,   d ← max(d, d̂) (at most growth_rate·d)
    x ← x − dlr·m / (√v + d·ε)                  with the new d in the denominator

Both sums run over all the variables, so no per-variable rule can express it: this optimizer
overrides :meth:`Optimizer.update_variables` to make the two passes. A step whose ``Σ‖s‖₁`` is
zero (every gradient so far zero) moves nothing and keeps ``d``, as the reference
implementation returns early. The ``weight_decay`` option decays with ``dlr``
(``x ← x − weight_decay·dlr·x``), or, with ``decouple=False``, is added to the gradient as L2.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from optreg.model.definitions import Slot
from optreg.model.python_builtins import PRODIGY_HYPERPARAMETERS
from optreg.runtime.optimizer import Optimizer


class Prodigy(Optimizer):
    """Prodigy: Adam whose step size is estimated from the distance travelled so far.

    Args:
        **kwargs: the hyperparameters (``learning_rate`` scales the estimate, 1 by default;
            ``d0``, ``bias_correction``, ``safeguard_warmup`` and ``decouple`` are fixed at
            creation) and the options every optimizer takes.

    Example:
        >>> opt = optreg.registry.create("prodigy")  # doctest: +SKIP
        >>> opt.apply_gradients(zip(grads, model.trainable_variables))  # doctest: +SKIP
        >>> float(opt.d)  # the step size it has estimated  # doctest: +SKIP
    """

    optimizer_name = "prodigy"
    summary = "Prodigy: Adam with a step size estimated from the distance travelled"
    hyperparameter_specs = PRODIGY_HYPERPARAMETERS
    slot_specs = (
        Slot("m", doc="running mean of the gradient, scaled by d"),
        Slot("v", doc="running mean of the squared gradient, scaled by d²"),
        Slot("s", doc="running sum of the gradients weighted by the step sizes (the distance's denominator)"),
        Slot("x0", init="var", doc="the variable's value at its first step"),
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        fixed = self.hyperparameters
        d0 = fixed["d0"]
        assert d0 is not None  # d0 is not declared none
        self._d0 = float(d0)
        self._flags = {name: bool(fixed[name]) for name in ("bias_correction", "safeguard_warmup", "decouple")}
        with tf.init_scope():
            #: The current step-size estimate, its running maximum, and the distance numerator r.
            self.d = tf.Variable(self._d0, dtype=tf.float64, trainable=False, name="d")
            self.d_max = tf.Variable(self._d0, dtype=tf.float64, trainable=False, name="d_max")
            self.d_numerator = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="d_numerator")

    @property
    def applies_weight_decay(self) -> bool:
        """True: Prodigy decays with its own step size ``dlr``, not the learning rate alone."""
        return True

    def reset(self) -> None:
        """Start over, the step-size estimate too."""
        super().reset()
        self.d.assign(self._d0)
        self.d_max.assign(self._d0)
        self.d_numerator.assign(0.0)

    def update_variables(self, grads: list[Any], variables: list[Any], step: tf.Tensor, update_one: Any) -> None:
        """Both passes: the sums over every variable, the new d, then every variable's step."""
        # Under a distribution strategy this runs in cross-replica context: the sums read the
        # replicas' (identical) values, and each assignment writes every replica's copy, so
        # update_one (one replica's copies at a time) is not needed.
        held = self.hyperparameter_state.variables
        h = {
            name: held[name]
            for name in ("learning_rate", "beta_1", "beta_2", "beta_3", "epsilon", "d_coef", "growth_rate")
        }
        beta_3 = tf.where(h["beta_3"] > 0, h["beta_3"], tf.sqrt(h["beta_2"]))
        d = self.d.read_value()
        dlr = d * h["learning_rate"] * self._bias_correction(h, step)
        grads = self._coupled_decay(grads, variables)
        weight = (d / self._d0) * (d if self._flags["safeguard_warmup"] else dlr)
        numerator = beta_3 * self.d_numerator
        denominator = tf.constant(0.0, tf.float64)
        for grad, var in zip(grads, variables):
            slots = self.slots_for(var)
            dtype = slots["m"].dtype  # the slots' dtype: float32 moments for half-precision variables
            g, x = tf.cast(grad, dtype), tf.cast(var.read_value(), dtype)
            numerator += (d / self._d0) * dlr * _sum64(g * (slots["x0"] - x))
            slots["m"].assign(_cast(h["beta_1"], dtype) * slots["m"] + _cast(d * (1 - h["beta_1"]), dtype) * g)
            slots["v"].assign(
                _cast(h["beta_2"], dtype) * slots["v"] + _cast(d * d * (1 - h["beta_2"]), dtype) * tf.square(g)
            )
            slots["s"].assign(_cast(beta_3, dtype) * slots["s"] + _cast(weight, dtype) * g)
            denominator += _sum64(tf.abs(slots["s"]))
        self.d_numerator.assign(numerator)
        moves = denominator > 0
        new_d = self._new_d(d, h, numerator, tf.where(moves, denominator, tf.constant(1.0, tf.float64)))
        self.d.assign(tf.where(moves, new_d, d))
        for var in variables:
            self._step_variable(var, dlr, self.d.read_value(), h["epsilon"], moves)

    def _bias_correction(self, h: dict[str, Any], step: tf.Tensor) -> tf.Tensor:
        """Adam's ``√(1 − β₂ᵗ)/(1 − β₁ᵗ)`` with bias_correction, else 1."""
        if not self._flags["bias_correction"]:
            return tf.constant(1.0, tf.float64)
        return tf.sqrt(1 - h["beta_2"] ** step) / (1 - h["beta_1"] ** step)

    def _coupled_decay(self, grads: list[Any], variables: list[Any]) -> list[Any]:
        """With ``decouple=False``, the weight_decay option as L2: ``g + weight_decay·x``."""
        rate = self.step_options.weight_decay
        if not rate or self._flags["decouple"]:
            return grads
        exclusions = self._runtime.weight_decay_exclusions
        return [g + tf.constant(rate, g.dtype) * v if exclusions.applies_to(v) else g for g, v in zip(grads, variables)]

    def _new_d(self, d: tf.Tensor, h: dict[str, Any], numerator: tf.Tensor, denominator: tf.Tensor) -> tf.Tensor:
        """``d̂ = d_coef·r/Σ‖s‖₁``; d grows to d̂ on the first estimate, then follows the running
        maximum of d̂, at most ``growth_rate`` times per step."""
        d_hat = h["d_coef"] * numerator / denominator
        grown = tf.where(tf.equal(d, self._d0), tf.maximum(d, d_hat), d)
        self.d_max.assign(tf.maximum(self.d_max, d_hat))
        limited = tf.minimum(self.d_max, grown * h["growth_rate"])
        return tf.where(h["growth_rate"] > 0, limited, self.d_max.read_value())

    def _step_variable(
        self, var: tf.Variable, dlr: tf.Tensor, d: tf.Tensor, epsilon: tf.Tensor, moves: tf.Tensor
    ) -> None:
        """Decoupled weight decay with ``dlr``, then ``x ← x − dlr·m/(√v + d·ε)``, when the step moves."""
        slots = self.slots_for(var)
        dtype = slots["m"].dtype
        current = var.read_value()
        new = tf.cast(current, dtype)
        rate = self.step_options.weight_decay
        if rate and self._flags["decouple"] and self._runtime.weight_decay_exclusions.applies_to(var):
            new = new - _cast(rate * dlr, dtype) * new
        new = new - _cast(dlr, dtype) * slots["m"] / (tf.sqrt(slots["v"]) + _cast(d * epsilon, dtype))
        var.assign(tf.where(moves, tf.cast(new, var.dtype), current))

    def update_variable(self, grad: tf.Tensor, var: tf.Variable, slots: Any, prepared: Any) -> None:
        """Not used: :meth:`update_variables` updates every variable together."""
        raise NotImplementedError("prodigy updates all variables together in update_variables")


def _cast(value: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """A float64 scalar in the dtype the update is computed in."""
    return tf.cast(value, dtype)


def _sum64(tensor: tf.Tensor) -> tf.Tensor:
    """The sum of a tensor's elements, as a float64 scalar."""
    return tf.cast(tf.reduce_sum(tensor), tf.float64)
