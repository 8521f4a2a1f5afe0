"""The inside of one ``apply_gradients`` call, in Keras's order (a mixin of :class:`optreg.Optimizer`).

A call unscales the gradients (``loss_scale_factor``), then either adds them to the gradient
sums (``gradient_accumulation_steps``) or updates: the gradient hooks, the schedules, weight
decay, then :meth:`optreg.Optimizer.update_variables`;
last, the moving averages move (``use_ema``). With ``skip_nonfinite`` a call whose gradients hold
a NaN or an infinity only counts a skip. The whole call may run as one XLA computation, built
once per list of variables, and under a distribution strategy every replica's copy of a
variable gets the same update.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from optreg.runtime.sparse import divided, gradient_values, summed_rows
from optreg.runtime.weight_decay import decay

if TYPE_CHECKING:
    from optreg.model.option_values import GradientOptions, StepOptions
    from optreg.runtime.gradients import GradientHook
    from optreg.runtime.hyperparameter_state import HyperparameterState
    from optreg.runtime.slots import RuntimeState

#: ``update_one(grad, var, prepared)``: updates one variable's replica copies.
UpdateOne = Callable[[tf.Tensor, tf.Variable, Any], None]


class StepPipeline:
    """The private steps of a call: compiled, guarded, distributed, accumulated or updated.

    Example:
        >>> optreg.registry.create("sgd")._step([tf.constant([1.0])], [tf.Variable([2.0])])  # doctest: +SKIP
    """

    if TYPE_CHECKING:

        @property
        def hyperparameter_state(self) -> HyperparameterState: ...

        jit_compile: bool | str
        gradient_options: GradientOptions
        step_options: StepOptions
        iterations: tf.Variable
        skipped_steps: tf.Variable
        _runtime: RuntimeState
        _gradient_hooks: tuple[GradientHook, ...]
        _host_calls: tf.Tensor | None

        @property
        def applies_weight_decay(self) -> bool: ...

        def build(self, variables: Any) -> None: ...
        def slots_for(self, var: tf.Variable) -> Any: ...
        def update_variable(self, grad: tf.Tensor, var: tf.Variable, slots: Any, prepared: Any) -> None: ...
        def update_variables(
            self, grads: list[Any], variables: list[Any], step: tf.Tensor, update_one: Any
        ) -> None: ...
        def _accumulate_or_update(
            self, grads: list[Any], variables: list[Any], calls: tf.Tensor, update_one: Any
        ) -> None: ...
        def _move_averages(self, variables: list[Any], calls: tf.Tensor) -> None: ...

    def _compiled_step(self, variables: list[Any], host_calls: tf.Tensor | None = None) -> Callable[[Any], None]:
        """The whole step for these variables as one XLA-compiled function, built once and
        reused; with ``host_calls`` (see :meth:`optreg.Optimizer.counting_from`), one that takes
        the call count as an argument, called with it."""
        # the state itself, not its id: the key keeps it alive, so a later state cannot take its id
        key = (self.hyperparameter_state, host_calls is None, *(var.ref() for var in variables))
        compiled = self._runtime.compiled.get(key)
        if compiled is None:
            compiled = tf.function(
                lambda grads, calls=None: self._guarded_step(
                    list(grads), variables, functools.partial(self._step, calls=calls)
                ),
                jit_compile=True,
                autograph=False,
            )
            self._runtime.compiled[key] = compiled
        return compiled if host_calls is None else functools.partial(compiled, calls=host_calls)

    def _guarded_step(
        self, grads: list[Any], variables: list[Any], step: Callable[[list[Any], list[Any]], Any]
    ) -> None:
        """Run ``step(grads, variables)``, or count a skip when skip_nonfinite finds a bad gradient."""
        if not self.gradient_options.skip_nonfinite:
            step(grads, variables)
        elif not tf.executing_eagerly():
            skip = lambda: _done(self.skipped_steps.assign_add(1))  # noqa: E731
            tf.cond(all_finite(grads), lambda: _done(step(grads, variables)), skip)
        elif bool(all_finite(grads)):
            step(grads, variables)
        else:
            self.skipped_steps.assign_add(1)

    def _apply_distributed(self, strategy: Any, grads: list[Any], variables: list[Any]) -> None:
        """The cross-replica half of a distributed step: every replica's copy gets the same update.
        The lock is taken here, not around the replicas' own calls: those wait for one another in
        ``merge_call``, and a lock held across it would deadlock them."""
        local_grads = [strategy.experimental_local_results(g)[0] for g in grads]
        # the replicas' rows, put together, repeat the rows several replicas touched
        local_grads = [summed_rows(g) if isinstance(g, tf.IndexedSlices) else g for g in local_grads]

        def update_every_copy(grad: tf.Tensor, var: Any, prepared: Any) -> None:
            update = functools.partial(self._update_replica_copy, var=var, prepared=prepared)
            strategy.extended.update(var, update, args=(grad,), group=False)

        with self._runtime.lock:
            self.build(variables)
            step = functools.partial(self._step, update_one=update_every_copy, calls=self._host_calls)
            self._guarded_step(local_grads, variables, step)

    def _update_replica_copy(self, _copy: Any, grad: tf.Tensor, *, var: Any, prepared: Any) -> None:
        """Update one replica's copy of a variable: inside ``extended.update`` the distributed
        variable and its slots read and write that replica's copies."""
        self.update_variable(grad, var, self.slots_for(var), prepared)

    def _step(
        self,
        grads: list[Any],
        variables: list[Any],
        update_one: UpdateOne | None = None,
        calls: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """One call's work, in Keras's order: unscale the gradients, accumulate them or update
        the variables, move the averages; returns the new call count.

        ``update_one(grad, var, prepared)`` updates one variable (by default, in place);
        ``calls``, the calls made before this one (int64) when the host counts them
        (:meth:`optreg.Optimizer.counting_from`), is read instead of :attr:`iterations`.
        """
        options = self.step_options
        if calls is None:
            calls = self.iterations.read_value()
            self.iterations.assign_add(1)
        else:
            self.iterations.assign(calls + 1)
        if options.loss_scale_factor is not None:
            grads = [divided(g, options.loss_scale_factor) for g in grads]
        if options.gradient_accumulation_steps:
            self._accumulate_or_update(grads, variables, calls, update_one)
        else:
            self._update(grads, variables, calls, update_one)
        if options.use_ema:
            self._move_averages(variables, calls)
        return self.iterations.read_value()

    def _update(self, grads: list[Any], variables: list[Any], calls: tf.Tensor, update_one: UpdateOne | None) -> None:
        """The gradient hooks, the schedules, weight decay, then one update of every variable."""
        state = self.hyperparameter_state
        # stacked runs (the bench's) lie on one axis of the variables: each is clipped on its own
        run_axes = state.run_axes
        for hook in self._gradient_hooks:
            grads = hook(grads, variables, run_axes)
        state.apply_schedules(calls)
        if self.step_options.weight_decay is not None and not self.applies_weight_decay:
            exclusions = self._runtime.weight_decay_exclusions
            decay(variables, self.step_options.weight_decay, state.variables["learning_rate"], exclusions)
        accumulation = self.step_options.accumulation
        step = tf.cast((calls if accumulation == 1 else calls // accumulation) + 1, tf.float64)
        self.update_variables(grads, variables, step, update_one)


def _done(_: Any) -> tf.Tensor:
    """What both branches of the skip_nonfinite ``tf.cond`` return (their effects are what count)."""
    return tf.constant(True)


def all_finite(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """A boolean scalar: every element of every tensor (of a sparse gradient, its rows) is finite
    (neither NaN nor infinite).

    Example:
        >>> bool(all_finite([tf.constant([1.0, float("nan")])]))
        False
    """
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(gradient_values(t))) for t in tensors]))
