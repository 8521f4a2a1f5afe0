"""The Keras options' public methods, shared by every optreg optimizer (a mixin of
:class:`optreg.Optimizer`): ``exclude_from_weight_decay``, ``finalize_variable_values``,
``scale_loss``, ``update_count``, and the gradient-accumulation branch of a step.

The options themselves are validated in :mod:`optreg.model.options`; :mod:`optreg.runtime.weight_decay`,
:mod:`optreg.runtime.ema` and :mod:`optreg.model.schedules` hold the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from optreg.errors import OptionError
from optreg.runtime import ema

if TYPE_CHECKING:
    from optreg.model.option_values import StepOptions
    from optreg.runtime.hyperparameter_state import HyperparameterState
    from optreg.runtime.slots import RuntimeState


class KerasOptions:
    """Methods for weight decay, EMA, loss scaling and gradient accumulation; they read the
    optimizer's ``step_options``, ``iterations`` and runtime state.

    Example:
        >>> optreg.registry.create("sgd", loss_scale_factor=4.0).scale_loss(2.0)  # doctest: +SKIP
        8.0
    """

    if TYPE_CHECKING:

        @property
        def hyperparameter_state(self) -> HyperparameterState: ...

        step_options: StepOptions
        iterations: tf.Variable
        _runtime: RuntimeState
        _own_hyperparameters: HyperparameterState
        _averages: list[tf.Variable]
        _accumulators: list[tf.Variable]

        def _tf_variables(self, variables: Iterable[Any]) -> list[tf.Variable]: ...
        def _update(self, grads: list[Any], variables: list[Any], calls: tf.Tensor, update_one: Any) -> None: ...

    @property
    def update_count(self) -> tf.Tensor:
        """The updates applied so far: ``iterations`` (the calls) divided by
        ``gradient_accumulation_steps``; what Keras calls ``optimizer.iterations``."""
        return self.iterations // self.step_options.accumulation

    @property
    def scheduled_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters that follow a schedule, with their schedules, by name."""
        return dict(self._own_hyperparameters.schedules)

    def exclude_from_weight_decay(
        self, var_list: Iterable[tf.Variable] | None = None, var_names: Sequence[str] | None = None
    ) -> None:
        """Exclude variables from weight decay, as Keras does; replaces earlier exclusions.

        Args:
            var_list: variables to exclude.
            var_names: regular expressions; a variable whose ``name`` contains a match of any
                is excluded (``["bias"]`` excludes every bias).

        Example:
            >>> opt.exclude_from_weight_decay(var_names=["bias", "norm"])  # doctest: +SKIP
        """
        held = None if var_list is None else self._tf_variables(var_list)
        self._runtime.weight_decay_exclusions.set(held, var_names)
        self._runtime.compiled.clear()

    def finalize_variable_values(self, var_list: Iterable[tf.Variable]) -> None:
        """With ``use_ema``, set every variable to its moving average (else do nothing).

        Raises:
            OptionError: a variable this optimizer has never updated.
        """
        if not self.step_options.use_ema:
            return
        for var in self._tf_variables(var_list):
            position = self._runtime.position.get(var.ref())
            if position is None:
                raise OptionError(f"finalize_variable_values: {var.name} was never updated by this optimizer")
            var.assign(self._averages[position])

    def scale_loss(self, loss: Any) -> Any:
        """``loss * loss_scale_factor`` (the loss itself without a factor), as Keras."""
        factor = self.step_options.loss_scale_factor
        return loss if factor is None else loss * factor

    def _accumulate_or_update(self, grads: list[Any], variables: list[Any], calls: tf.Tensor, update_one: Any) -> None:
        """Add the gradients to the sums; on every N-th call, update with the mean and restart."""
        steps = self.step_options.gradient_accumulation_steps
        sums = [self._accumulators[self._runtime.position[var.ref()]] for var in variables]

        def update() -> tf.Tensor:
            means = [
                (g + tf.cast(total.read_value(), g.dtype)) / tf.constant(steps, g.dtype)
                for g, total in zip(grads, sums)
            ]
            self._update(means, variables, calls, update_one)
            for total in sums:
                total.assign(tf.zeros_like(total))
            return tf.constant(True)

        def accumulate() -> tf.Tensor:
            for g, total in zip(grads, sums):
                total.assign_add(tf.cast(g, total.dtype))
            return tf.constant(True)

        tf.cond(tf.equal((calls + 1) % steps, 0), update, accumulate)

    def _move_averages(self, variables: list[Any], calls: tf.Tensor) -> None:
        """Move every variable's moving average, then overwrite the variables when it is due."""
        options = self.step_options
        averages = [self._averages[self._runtime.position[var.ref()]] for var in variables]
        count = calls // options.accumulation
        ema.update_averages(averages, variables, options.ema_momentum, count)
        if options.ema_overwrite_frequency:
            ema.overwrite_every(options.ema_overwrite_frequency, count, averages, variables)
