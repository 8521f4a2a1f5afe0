"""AdaHessian (Yao et al. 2021): Adam whose second moment is of the Hessian's diagonal.

Each step draws a Rademacher probe z per variable (±1 per element, from the ``seed``
hyperparameter, the step and the variable's index, as the rule language's ``rademacher_like``:
see :mod:`optreg.runtime.noise`), takes the Hessian-vector product H z through a second
gradient of the loss, and estimates the diagonal by Hutchinson, D = |z ⊙ Hz| = |Hz|. A
convolution kernel ``[*spatial, in, out]`` (rank 3 or more) averages D over its spatial axes
(every axis but the last two), the paper's spatial averaging; then

    m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·D²
    x ← x − lr · (m / (1 − β₁ᵗ)) / ((v / (1 − β₂ᵗ))^(k/2) + ε)        k = hessian_power

The Hessian needs the loss, so a step is :meth:`AdaHessian.minimize`; ``apply_gradients`` alone
is refused (``needs_loss``). The step's estimate D is no state (only m and v are carried from one
step to the next): ``minimize`` hands it to the update it runs at once, which is therefore built in
the caller's context — op by op when called eagerly, inside the caller's compiled function (the
bench's XLA loop) when traced — rather than as a separately compiled step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, NoReturn

import tensorflow as tf

from optreg.errors import OptregError
from optreg.model.definitions import Slot
from optreg.model.python_builtins import ADAHESSIAN_HYPERPARAMETERS
from optreg.runtime.noise import draw, noise_key
from optreg.runtime.optimizer import Optimizer
from optreg.runtime.variables import tf_variable

__all__ = ["AdaHessian"]

#: What ``apply_gradients`` alone says.
NEEDS_LOSS_MESSAGE = (
    "adahessian needs the loss to take a step (its Hessian-vector products differentiate the loss twice): "
    "call minimize(loss_fn, variables)"
)


class AdaHessian(Optimizer):
    """AdaHessian: Adam on the Hutchinson estimate of the Hessian's diagonal.

    Args:
        **kwargs: the hyperparameters and the options every optimizer takes.

    Example:
        >>> opt = optreg.registry.create("adahessian", learning_rate=0.1)  # doctest: +SKIP
        >>> opt.minimize(lambda: tf.reduce_sum(x ** 2), [x])  # doctest: +SKIP
    """

    optimizer_name = "adahessian"
    summary = "AdaHessian: Adam on the Hessian diagonal's estimate"
    hyperparameter_specs = ADAHESSIAN_HYPERPARAMETERS
    slot_specs = (
        Slot("m", doc="running mean of the gradient"),
        Slot("v", doc="running mean of the squared Hessian diagonal estimate"),
    )
    needs_loss: ClassVar[bool] = True

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        #: This step's Hessian diagonal estimates by variable, while ``minimize`` runs its update.
        self._estimates: dict[Any, tf.Tensor] | None = None

    @property
    def compiles_with_xla(self) -> bool:
        """As :attr:`Optimizer.compiles_with_xla`, except while :meth:`minimize` runs its update,
        which reads the estimates it was just handed and so is built where the caller is."""
        return self.__dict__.get("_estimates") is None and super().compiles_with_xla

    def apply_gradients(self, grads_and_vars: Any, variables: Iterable[Any] | None = None) -> NoReturn:
        """Refused: a step needs the loss. Call :meth:`minimize`.

        Raises:
            OptregError: always.
        """
        raise OptregError(NEEDS_LOSS_MESSAGE)

    @tf.autograph.experimental.do_not_convert
    def minimize(
        self, loss_fn: Callable[[], Any], variables: Sequence[tf.Variable], grads: Sequence[Any] | None = None
    ) -> None:
        """One step on ``loss_fn``: the gradient (``grads`` when given), the Hessian-vector
        products with this step's probes, then the update.

        Args:
            loss_fn: a callable of no arguments returning a scalar loss of ``variables``.
            variables: the variables to update.
            grads: the gradients at the current point, when already computed (the loss is still
                differentiated twice for the Hessian-vector products).

        Example:
            >>> opt.minimize(lambda: tf.reduce_sum(x ** 2), [x])  # doctest: +SKIP
        """
        variables = list(variables)
        self.build(variables)
        step = tf.cast(self.iterations + 1, tf.float64)
        key = noise_key(self.hyperparameter_state.variables["seed"], step)
        probes = [draw("rademacher_like", var, key, self.variable_index(var), 0) for var in variables]
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = loss_fn()
            first = inner.gradient(loss, variables)
        products = outer.gradient(first, variables, output_gradients=probes)
        estimates = {}
        for var, product in zip(variables, products):
            if product is None:
                raise OptregError(f"adahessian: the loss has no second derivative with respect to {var.name}")
            estimates[tf_variable(var).ref()] = _spatially_averaged(tf.abs(product))
        self._estimates = estimates
        try:
            Optimizer.apply_gradients(self, list(grads if grads is not None else first), variables)
        finally:
            self._estimates = None

    def prepare_step(self, step: tf.Tensor) -> dict[str, tf.Tensor]:
        """The step size and the two bias corrections, in float64."""
        h = self.hyperparameter_state.variables
        return {
            "learning_rate": h["learning_rate"],
            "correction_1": 1 - h["beta_1"] ** step,
            "correction_2": 1 - h["beta_2"] ** step,
        }

    def update_variable(self, grad: tf.Tensor, var: tf.Variable, slots: Any, prepared: Any) -> None:
        """Adam's update with this step's Hessian estimate in place of the gradient's square."""
        h = self.hyperparameter_state.variables
        dtype = var.dtype

        def cast(value: tf.Tensor) -> tf.Tensor:
            return tf.cast(value, dtype)

        grad = tf.cast(grad, dtype)
        m = cast(h["beta_1"]) * slots["m"] + cast(1 - h["beta_1"]) * grad
        assert self._estimates is not None  # update_variable runs only inside minimize
        estimate = tf.cast(self._estimates[tf_variable(var).ref()], dtype)
        v = cast(h["beta_2"]) * slots["v"] + cast(1 - h["beta_2"]) * tf.square(estimate)
        slots["m"].assign(m)
        slots["v"].assign(v)
        v_hat = v / cast(prepared["correction_2"])
        denominator = tf.pow(v_hat, cast(h["hessian_power"] / 2)) + cast(h["epsilon"])
        var.assign_sub(cast(prepared["learning_rate"]) * (m / cast(prepared["correction_1"])) / denominator)


def _spatially_averaged(estimate: tf.Tensor) -> tf.Tensor:
    """A kernel's estimate averaged over its spatial axes (all but the last two), kept for
    broadcasting; a scalar, vector or matrix as it is."""
    rank = estimate.shape.rank
    if rank is None or rank < 3:
        return estimate
    averaged = tf.reduce_mean(estimate, axis=list(range(rank - 2)), keepdims=True)
    return tf.broadcast_to(averaged, tf.shape(estimate))
